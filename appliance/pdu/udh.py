"""User-data header (23.040 §9.2.3.24): concatenation and national-language shift IEs."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.pdu.errors import PduError, UnknownLanguage
from appliance.pdu.national import LANGUAGE_IDS, LANGUAGES, LOCKING_SHIFT_TABLES

__all__ = [
    "IEI_CONCAT_8",
    "IEI_CONCAT_16",
    "IEI_LOCKING_SHIFT",
    "IEI_SINGLE_SHIFT",
    "UserDataHeader",
    "build_udh",
    "parse_udh",
    "udh_size",
]

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
IEI_SINGLE_SHIFT = 0x24
IEI_LOCKING_SHIFT = 0x25


@dataclass(frozen=True)
class UserDataHeader:
    """A parsed UDH: every element as (IEI, data), plus the ones this package understands.

    ``unknown_language_ids`` lists the identifiers of shift IEs (0x24/0x25) naming a table
    23.038 does not define (a reserved id, or a locking shift to Spanish): the default table
    is used in their place."""

    elements: tuple[tuple[int, bytes], ...]
    concat: tuple[int, int, int] | None  # (ref, total, seq)
    concat_ref_bits: int | None
    single_shift: str | None  # national table name, or None for the default extension
    locking_shift: str | None  # national table name, or None for the default alphabet
    unknown_language_ids: tuple[int, ...] = ()


def build_udh(
    *,
    concat: tuple[int, int, int] | None = None,
    concat_ref_bits: int = 8,
    single_shift: str | None = None,
    locking_shift: str | None = None,
) -> bytes:
    """The UDH (UDHL included) for the given elements; ``b""`` when there are none.

    The shift elements name a national language (see ``NATIONAL_LANGUAGES``).
    """
    body = bytearray()
    if concat is not None:
        ref, total, seq = concat
        if concat_ref_bits == 8:
            body += bytes((IEI_CONCAT_8, 3, ref, total, seq))
        else:
            body += bytes((IEI_CONCAT_16, 4, ref >> 8, ref & 0xFF, total, seq))
    if single_shift is not None:
        if single_shift not in LANGUAGE_IDS:
            raise UnknownLanguage(single_shift)
        body += bytes((IEI_SINGLE_SHIFT, 1, LANGUAGE_IDS[single_shift]))
    if locking_shift is not None:
        if locking_shift not in LOCKING_SHIFT_TABLES:
            raise UnknownLanguage(locking_shift, "locking" if locking_shift in LANGUAGE_IDS else None)
        body += bytes((IEI_LOCKING_SHIFT, 1, LANGUAGE_IDS[locking_shift]))
    if not body:
        return b""
    return bytes((len(body),)) + bytes(body)


def udh_size(*, concat: bool, concat_ref_bits: int, shifts: int) -> int:
    """Octets a UDH with these elements takes, UDHL included (0 when there is none)."""
    size = (5 if concat_ref_bits == 8 else 6) if concat else 0
    size += 3 * shifts
    return size + 1 if size else 0


def parse_udh(ud: bytes) -> tuple[UserDataHeader, int]:
    """Parse the UDH at the start of ``ud``; returns it and its size in octets (UDHL + 1).

    Per 23.040 a concatenation IE whose sequence is 0 or beyond its total is ignored; a shift
    IE naming no table is listed in ``unknown_language_ids`` and the default table stands in
    for it. A header that overruns its length is a PduError.
    """
    if not ud:
        raise PduError("UDHI is set but the user data is empty")
    udhl = ud[0]
    end = 1 + udhl
    if end > len(ud):
        raise PduError(f"UDH length {udhl} runs past the user data ({len(ud)} octets)")
    elements: list[tuple[int, bytes]] = []
    concat = None
    bits = None
    single = locking = None
    unknown: list[int] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise PduError("UDH ends inside an information element header")
        iei, length = ud[pos], ud[pos + 1]
        data = ud[pos + 2 : pos + 2 + length]
        if pos + 2 + length > end:
            raise PduError(f"UDH element {iei:02X} runs past the header")
        elements.append((iei, bytes(data)))
        if iei == IEI_CONCAT_8 and length == 3:
            ref, total, seq = data
            if total and 1 <= seq <= total:
                concat, bits = (ref, total, seq), 8
        elif iei == IEI_CONCAT_16 and length == 4:
            ref, total, seq = (data[0] << 8) | data[1], data[2], data[3]
            if total and 1 <= seq <= total:
                concat, bits = (ref, total, seq), 16
        elif iei == IEI_SINGLE_SHIFT and length == 1:
            single = LANGUAGES.get(data[0])
            if single is None:
                unknown.append(data[0])
        elif iei == IEI_LOCKING_SHIFT and length == 1:
            locking = LANGUAGES.get(data[0])
            if locking not in LOCKING_SHIFT_TABLES:
                locking = None
                unknown.append(data[0])
        pos += 2 + length
    header = UserDataHeader(tuple(elements), concat, bits, single, locking, tuple(unknown))
    return header, end
