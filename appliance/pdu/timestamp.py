"""Service-centre time stamps (TP-SCTS, 23.040 §9.2.3.11): 7 octets of swapped BCD."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

from appliance.pdu.errors import PduError

__all__ = ["decode_scts", "encode_scts"]

_MAX_OFFSET_QUARTERS = 79  # 7 bits of BCD tens in the TZ octet caps it at 79 quarter hours


def _swapped(octet: int) -> int:
    # Nibble-swapped BCD; invalid nibbles (A–F) are read as their value so decoding never
    # fails — the caller clamps the result into range.
    return (octet & 0x0F) * 10 + (octet >> 4)


def _bcd(value: int) -> int:
    return (value % 10) << 4 | (value // 10)


def decode_scts(data: bytes, pos: int = 0) -> datetime:
    """Decode 7 octets at ``pos`` into an aware datetime, leniently.

    Out-of-range fields (invalid BCD happens in the wild) are clamped instead of rejected.
    The time-zone sign is bit 3 of the last octet, applied independently of its BCD.
    """
    if pos + 7 > len(data):
        raise PduError("PDU ends inside a 7-octet time stamp")
    year, month, day, hour, minute, second = (_swapped(b) for b in data[pos : pos + 6])
    tz_octet = data[pos + 6]
    quarters = min(_swapped(tz_octet & 0xF7), _MAX_OFFSET_QUARTERS)
    if tz_octet & 0x08:
        quarters = -quarters
    year = 2000 + min(year, 99)
    month = min(max(month, 1), 12)
    day = min(max(day, 1), calendar.monthrange(year, month)[1])
    tz = timezone(timedelta(minutes=15 * quarters))
    return datetime(year, month, day, min(hour, 23), min(minute, 59), min(second, 59), tzinfo=tz)


def encode_scts(when: datetime | None) -> bytes:
    """Encode an aware datetime (naive means UTC; None means now) as TP-SCTS."""
    if when is None:
        when = datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    offset = when.utcoffset() or timedelta(0)
    quarters, rest = divmod(int(offset.total_seconds()), 900)
    if rest:
        raise PduError(f"time-zone offset {offset} is not a whole number of quarter hours")
    if not 2000 <= when.year <= 2099:
        raise PduError(f"year {when.year} cannot be sent in a time stamp (2000–2099)")
    sign = 0x08 if quarters < 0 else 0
    quarters = abs(quarters)
    if quarters > _MAX_OFFSET_QUARTERS:
        raise PduError(f"time-zone offset {offset} is too large for a time stamp")
    fields = (when.year - 2000, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_bcd(v) for v in fields) + bytes((_bcd(quarters) | sign,))
