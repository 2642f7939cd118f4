"""Address fields (23.040 §9.1.2.5): phone numbers, type of address, alphanumeric senders."""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.pdu.errors import PduError
from appliance.pdu.gsm7 import DEFAULT, decode_septets, pack_septets, unpack_septets

__all__ = [
    "Address",
    "TOA_ALPHANUMERIC",
    "TOA_INTERNATIONAL",
    "TOA_UNKNOWN",
    "decode_address",
    "decode_smsc",
    "encode_address",
    "encode_alphanumeric",
    "encode_smsc",
    "is_phone_number",
]

TOA_INTERNATIONAL = 0x91
TOA_UNKNOWN = 0x81
TOA_ALPHANUMERIC = 0xD0

_TO_HEX = str.maketrans("*#", "AB")
_NIBBLE_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))
_PLAIN_NUMBER = re.compile(r"\+?[0-9]+")
_DIGITS = re.compile(r"[0-9*#]+")
_NIBBLE_DIGITS = "0123456789*#abc"
_SEPARATORS = str.maketrans("", "", " -.()\t")
_MAX_DIGITS = 20  # address value: at most 10 octets


@dataclass(frozen=True)
class Address:
    """A decoded address: ``number`` is ``+digits`` for international, the text if alphanumeric."""

    number: str
    toa: int

    @property
    def alphanumeric(self) -> bool:
        return (self.toa >> 4) & 0x07 == 5


def _digits(number: str, what: str) -> tuple[str, int]:
    if not isinstance(number, str):
        raise PduError(f"{what} must be a string, not {type(number).__name__}")
    if _PLAIN_NUMBER.fullmatch(number):
        cleaned = number
    else:
        cleaned = number.strip().translate(_SEPARATORS)
    toa = TOA_UNKNOWN
    if cleaned.startswith("+"):
        toa, cleaned = TOA_INTERNATIONAL, cleaned[1:]
    if not cleaned:
        raise PduError(f"{what} is empty: {number!r}")
    if not _DIGITS.fullmatch(cleaned):
        raise PduError(f"{what} {number!r} is not a phone number (digits, optional leading +)")
    if len(cleaned) > _MAX_DIGITS:
        raise PduError(f"{what} {number!r} has {len(cleaned)} digits; at most {_MAX_DIGITS}")
    return cleaned, toa


def is_phone_number(value: str) -> bool:
    """True if ``value`` reads as a phone number (as opposed to an alphanumeric sender)."""
    try:
        _digits(value, "number")
    except PduError:
        return False
    return True


def _swap_bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits.translate(_TO_HEX)).translate(_NIBBLE_SWAP)


def _unswap_bcd(data: bytes, count: int | None = None) -> str:
    out = []
    for octet in data:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble == 0x0F:
                break
            out.append(_NIBBLE_DIGITS[nibble])
        else:
            continue
        break
    text = "".join(out)
    return text if count is None else text[:count]


def encode_address(number: str, what: str = "destination number") -> bytes:
    """TP-DA/TP-OA for a phone number: digit count, TOA (91 with '+', else 81), swapped BCD."""
    digits, toa = _digits(number, what)
    return bytes((len(digits), toa)) + _swap_bcd(digits)


def encode_alphanumeric(text: str) -> bytes:
    """TP-OA for an alphanumeric sender: TOA D0, GSM-7 packed, length in semi-octets."""
    if not text:
        raise PduError("alphanumeric sender is empty")
    septets = DEFAULT.encode(text)
    if len(septets) > 11:
        raise PduError(f"alphanumeric sender {text!r} is longer than 11 GSM characters")
    packed = pack_septets(septets)
    semi_octets = (len(septets) * 7 + 3) // 4
    return bytes((semi_octets, TOA_ALPHANUMERIC)) + packed


def encode_smsc(number: str | None) -> bytes:
    """The SMSC field in front of a TPDU: ``00`` (use the SIM's centre) or length, TOA, BCD."""
    if number is None or number == "":
        return b"\x00"
    digits, toa = _digits(number, "SMSC number")
    body = bytes((toa,)) + _swap_bcd(digits)
    return bytes((len(body),)) + body


def _format(digits: str, toa: int) -> str:
    return "+" + digits if (toa >> 4) & 0x07 == 1 and digits else digits


def decode_address(data: bytes, pos: int, what: str = "address") -> tuple[Address, int]:
    """Decode an address field at ``pos``; returns the address and the position after it."""
    if pos + 2 > len(data):
        raise PduError(f"PDU ends inside the {what}")
    length, toa = data[pos], data[pos + 1]
    octets = (length + 1) // 2
    end = pos + 2 + octets
    if end > len(data):
        raise PduError(f"{what} says {length} semi-octets but the PDU ends first")
    value = data[pos + 2 : end]
    if (toa >> 4) & 0x07 == 5:
        count = length * 4 // 7
        text = decode_septets(unpack_septets(value, count))
        return Address(text, toa), end
    return Address(_format(_unswap_bcd(value, length), toa), toa), end


def decode_smsc(data: bytes) -> tuple[str | None, int]:
    """Decode the leading SMSC field; returns the number (None when absent) and its size."""
    if not data:
        raise PduError("PDU is empty")
    length = data[0]
    if length == 0:
        return None, 1
    if 1 + length > len(data):
        raise PduError(f"SMSC field says {length} octets but the PDU is shorter")
    if length > 12:
        raise PduError(f"SMSC field length {length} is more than 12 octets")
    toa = data[1]
    digits = _unswap_bcd(data[2 : 1 + length])
    return (_format(digits, toa) or None), 1 + length
