"""The one error type of the PDU package."""

from __future__ import annotations

from appliance.errors import ApplianceError

__all__ = ["PduError"]


class PduError(ApplianceError):
    """A PDU or a text cannot be encoded or decoded; the message says what is wrong."""
