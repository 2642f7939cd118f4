"""Typed errors of the PDU package: :class:`PduError` and the subclasses that carry data."""

from __future__ import annotations

from appliance.errors import ApplianceError

__all__ = ["PduError", "TooManyParts", "UnencodableText", "UnknownLanguage"]


class PduError(ApplianceError):
    """A PDU or a text cannot be encoded or decoded; the message says what is wrong."""


class UnknownLanguage(PduError):
    """``name`` is not a national language of 23.038, or has no table of ``kind``
    (``"locking"`` or ``"single"``; None: no table at all)."""

    def __init__(self, name: str, kind: str | None = None) -> None:
        self.name = name
        self.kind = kind
        if kind is None:
            message = f"no GSM 7-bit national language named {name!r}"
        else:
            message = f"23.038 defines no {kind}-shift table for {name!r}"
        super().__init__(message)


class UnencodableText(PduError):
    """The text holds ``characters`` that the chosen GSM 7-bit tables cannot carry."""

    def __init__(self, characters: str, tables: str = "the GSM 7-bit alphabet") -> None:
        self.characters = characters
        self.tables = tables
        super().__init__(f"characters not in {tables}: {characters!r}")


class TooManyParts(PduError):
    """The text needs ``needed`` parts (at least, when ``exact`` is False); an SMS may have
    at most ``limit``."""

    def __init__(self, needed: int, limit: int = 255, *, exact: bool = True) -> None:
        self.needed = needed
        self.limit = limit
        self.exact = exact
        at_least = "" if exact else "at least "
        super().__init__(f"text needs {at_least}{needed} parts; an SMS can have at most {limit}")
