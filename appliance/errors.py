"""The root of the appliance's typed errors.

Each package derives its own (``PduError``, ``ModemError``, ``QueueError``, ...) from
:class:`ApplianceError`, so a caller can catch everything the appliance raises on purpose
without catching programming errors. Errors about one input carry it as data
(:class:`InvalidInput`): the API and the pages read ``field`` instead of parsing messages.
"""

from __future__ import annotations

__all__ = ["ApplianceError", "InvalidInput"]


class ApplianceError(Exception):
    """Base class of every error the appliance raises deliberately."""


class InvalidInput(ApplianceError):
    """An input that cannot be used: ``field`` names it (a dotted path inside the request,
    e.g. ``to``, ``fields.class``; ``None`` when no single field is at fault) and ``detail``
    says what is wrong. The message reads ``"field: detail"`` (or just ``detail``)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {detail}" if field else detail)
        self.field = field
        self.detail = detail
