"""Typed errors of the data layer (and so of the queue, which re-exports them)."""

from __future__ import annotations

from appliance.errors import ApplianceError, InvalidInput

__all__ = [
    "ConstraintViolation",
    "DatabaseUnavailable",
    "DuplicateIdempotencyKey",
    "InvalidRequest",
    "InvalidState",
    "MigrationError",
    "NotFound",
    "QueueError",
]


class QueueError(ApplianceError):
    """Something the store was asked cannot be done."""


class NotFound(QueueError):
    """No message (or other record) with the given id exists."""


class InvalidState(QueueError):
    """The record is not in a state that allows the operation (e.g. cancel once sending)."""


class DuplicateIdempotencyKey(QueueError):
    """The idempotency key was already used for a different request body."""


class InvalidRequest(QueueError, InvalidInput):
    """An argument is out of range or malformed (unknown priority, empty recipient list...);
    ``field`` names it, ``detail`` says why (see :class:`~appliance.errors.InvalidInput`)."""


class MigrationError(QueueError):
    """The database schema could not be brought to the version this code needs."""


class ConstraintViolation(QueueError):
    """A write broke a uniqueness or reference rule (e.g. a user name taken meanwhile).

    ``constraint`` names the rule when the engine says which (PostgreSQL does)."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class DatabaseUnavailable(QueueError):
    """The database cannot be reached or answered with a server-side failure.

    Nothing was committed by the statement that raised it; the caller may try again.
    ``engine`` is ``sqlite`` or ``postgresql``; ``reason`` is the driver's one-line message."""

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"the {engine} database is unavailable: {reason}")
        self.engine = engine
        self.reason = reason
