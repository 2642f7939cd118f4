"""UCS-2 / UTF-16 user data: 16-bit units, surrogate pairs counted as two."""

from __future__ import annotations

from appliance.pdu.errors import PduError

__all__ = ["is_high_surrogate", "ucs2_decode", "ucs2_encode", "utf16_units"]


def ucs2_encode(text: str) -> bytes:
    """UTF-16 big-endian (characters beyond U+FFFF become surrogate pairs)."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise PduError("text contains a lone UTF-16 surrogate, which cannot be sent") from None


def ucs2_decode(data: bytes) -> str:
    """Decode UTF-16 big-endian leniently: a broken surrogate becomes U+FFFD."""
    if len(data) % 2:
        raise PduError(f"UCS-2 user data has an odd number of octets ({len(data)})")
    return data.decode("utf-16-be", errors="replace")


def utf16_units(text: str) -> int:
    """How many 16-bit units ``text`` takes in UCS-2/UTF-16."""
    return len(ucs2_encode(text)) >> 1


def is_high_surrogate(unit: int) -> bool:
    return 0xD800 <= unit <= 0xDBFF
