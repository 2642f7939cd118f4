"""Data coding scheme (23.038 §4) and user data (TP-UDL + TP-UD, 23.040 §9.2.3.16/24)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.pdu.errors import PduError
from appliance.pdu.gsm7 import charset, pack_septets, unpack_septets
from appliance.pdu.ucs2 import ucs2_decode
from appliance.pdu.udh import UserDataHeader, parse_udh

__all__ = [
    "UserData",
    "dcs_for",
    "decode_user_data",
    "encode_user_data",
    "parse_dcs",
    "user_data_octets",
]

_ALPHABETS = ("gsm7", "8bit", "ucs2", "gsm7")  # DCS bits 3–2; 11 is reserved → default
_DCS_ALPHABET = {"gsm7": 0x00, "8bit": 0x04, "ucs2": 0x08}


def dcs_for(encoding: str, flash: bool = False) -> int:
    """TP-DCS for an encoding; ``flash`` sets message class 0."""
    return _DCS_ALPHABET[encoding] | (0x10 if flash else 0x00)


def parse_dcs(dcs: int) -> tuple[str, int | None]:
    """(encoding, message class or None) for a TP-DCS octet; PduError if compressed."""
    group = dcs >> 4
    if group < 0x8:  # general data coding / automatic deletion groups
        if dcs & 0x20:
            raise PduError(f"compressed user data (DCS {dcs:02X}) is not supported")
        return _ALPHABETS[(dcs >> 2) & 0x03], (dcs & 0x03) if dcs & 0x10 else None
    if group in (0xC, 0xD):  # message waiting indication, discard/store: GSM-7
        return "gsm7", None
    if group == 0xE:  # message waiting indication, store: UCS-2
        return "ucs2", None
    if group == 0xF:  # data coding / message class
        return ("8bit" if dcs & 0x04 else "gsm7"), dcs & 0x03
    return "gsm7", None  # reserved groups 1000–1011: read as the default alphabet


def encode_user_data(encoding: str, payload: bytes, udh: bytes = b"") -> bytes:
    """TP-UDL followed by TP-UD; ``payload`` is septets (one per byte) for GSM-7."""
    if encoding == "gsm7":
        header_septets = (len(udh) * 8 + 6) // 7
        fill = header_septets * 7 - len(udh) * 8
        udl = header_septets + len(payload)
        return bytes((udl,)) + udh + pack_septets(payload, fill)
    return bytes((len(udh) + len(payload),)) + udh + payload


def user_data_octets(encoding: str, udl: int) -> int:
    """Octets of TP-UD that a TP-UDL of ``udl`` announces (septets for GSM-7)."""
    return (udl * 7 + 7) // 8 if encoding == "gsm7" else udl


@dataclass(frozen=True)
class UserData:
    encoding: str
    text: str
    data: bytes  # the payload after the UDH: septets for GSM-7, raw octets otherwise
    udh: UserDataHeader | None


def decode_user_data(pdu: bytes, pos: int, encoding: str, udhi: bool) -> UserData:
    """Decode TP-UDL + TP-UD starting at ``pos``; the UDL decides the length, never a
    terminator. Octets beyond what the UDL covers are ignored."""
    if pos >= len(pdu):
        raise PduError("PDU ends before the user data length")
    udl = pdu[pos]
    ud = pdu[pos + 1 :]
    udh: UserDataHeader | None = None
    if encoding == "gsm7":
        if udl > 160:
            raise PduError(f"user data length {udl} septets is more than 160")
        need = user_data_octets("gsm7", udl)
        if len(ud) < need:
            raise PduError(f"user data length says {udl} septets but only {len(ud)} octets follow")
        septets = unpack_septets(ud, udl)
        cs = None
        if udhi:
            udh, size = parse_udh(ud[:need])
            header_septets = (size * 8 + 6) // 7
            if header_septets > udl:
                raise PduError(f"UDH of {size} octets is longer than the user data ({udl} septets)")
            septets = septets[header_septets:]
            if udh.locking_shift or udh.single_shift:
                cs = charset(udh.locking_shift or "default", udh.single_shift or "default")
        text = charset().decode(septets) if cs is None else cs.decode(septets)
        return UserData("gsm7", text, septets, udh)
    if udl > 140:
        raise PduError(f"user data length {udl} octets is more than 140")
    if len(ud) < udl:
        raise PduError(f"user data length says {udl} octets but only {len(ud)} follow")
    payload = ud[:udl]
    if udhi:
        udh, size = parse_udh(payload)
        payload = payload[size:]
    if encoding == "ucs2":
        text = ucs2_decode(payload)
    else:  # 8-bit data: no character set; latin-1 maps each octet to one character
        text = payload.decode("latin-1")
    return UserData(encoding, text, bytes(payload), udh)
