"""Errors of the contact book. They derive from the queue's typed errors so the API maps
them like the rest: not found → 404, a conflict → 409, a bad request → 422."""

from __future__ import annotations

from appliance.errors import InvalidInput
from appliance.queue.errors import InvalidRequest, InvalidState, NotFound

__all__ = ["ContactExists", "ContactNotFound", "CsvError", "FilterError", "GroupNotFound", "ImportPathError"]


class ContactNotFound(NotFound):
    """No contact with that id or number."""


class GroupNotFound(NotFound):
    """No group with that name or id."""


class ContactExists(InvalidState, InvalidInput):
    """A contact (or group) with that number (or name) already exists; ``field`` is the
    input that collides (``number`` or ``name``)."""


class CsvError(InvalidRequest):
    """The CSV file cannot be imported at all (nothing was written)."""


class FilterError(InvalidRequest):
    """A group filter that cannot be read."""


class ImportPathError(InvalidRequest):
    """A file named for import by path that may not or cannot be read (``path: ...``)."""
