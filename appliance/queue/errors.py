"""Typed errors of the queue."""

from __future__ import annotations

from appliance.errors import ApplianceError


class QueueError(ApplianceError):
    """Something the queue was asked cannot be done."""


class NotFound(QueueError):
    """No message (or other record) with the given id exists."""


class InvalidState(QueueError):
    """The message is not in a state that allows the operation (e.g. cancel once sending)."""


class DuplicateIdempotencyKey(QueueError):
    """The idempotency key was already used for a different request body."""


class InvalidRequest(QueueError):
    """An argument is out of range or malformed (unknown priority, empty recipient list...)."""


class MigrationError(QueueError):
    """The database schema could not be brought to the version this code needs."""
