"""Decoding any PDU a modem hands us: SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT.

Anything malformed raises :class:`PduError`, with one rule for the optional tail of a status
report (23.040 §9.2.2.3): the fields TP-PI announces — TP-PID, TP-DCS, TP-UD — are decoded
when the PDU holds them whole; one that is missing, or cut short, at the end of the PDU is
taken as absent and named in ``StatusReport.missing_fields`` (``"pid"``, ``"dcs"``,
``"user_data"``; a field after a missing one is missing too). The report's own fields —
reference, recipient, times, status — come before TP-PI and are never guessed: a PDU that
ends among them is refused. Service centres are seen padding or cutting this tail, and a
delivery outcome is worth more than the optional text after it. A TP-PI with its extension
bit set (FF is a common filler) announces nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

from appliance.pdu.address import decode_address, decode_smsc
from appliance.pdu.deliver import Deliver
from appliance.pdu.errors import PduError
from appliance.pdu.status import StatusReport, status_outcome
from appliance.pdu.submit import Submit, decode_relative_validity
from appliance.pdu.timestamp import decode_scts
from appliance.pdu.userdata import UserData, decode_user_data, parse_dcs, user_data_octets

__all__ = ["decode"]

_WHITESPACE = re.compile(r"\s+")


def _octets(pdu: str | bytes) -> bytes:
    if isinstance(pdu, (bytes, bytearray, memoryview)):
        return bytes(pdu)
    if not isinstance(pdu, str):
        raise PduError(f"PDU must be hex text or bytes, not {type(pdu).__name__}")
    text = _WHITESPACE.sub("", pdu)
    if len(text) % 2:
        raise PduError(f"PDU hex has an odd number of digits ({len(text)})")
    if not text.isascii():
        raise PduError("PDU contains characters that are not hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise PduError("PDU contains characters that are not hex digits") from None


def _byte(data: bytes, pos: int, what: str) -> int:
    if pos >= len(data):
        raise PduError(f"PDU ends before the {what}")
    return data[pos]


def decode(pdu: str | bytes, *, has_smsc: bool = True) -> Deliver | StatusReport | Submit:
    """Decode a PDU (hex as read from +CMGR/+CMGL/+CMT/+CDS, or octets).

    ``has_smsc`` says whether the PDU starts with the SMSC field (modems include it unless
    AT+CSDH says otherwise). Anything malformed raises PduError, nothing else.
    """
    data = _octets(pdu)
    smsc: str | None = None
    pos = 0
    if has_smsc:
        smsc, pos = decode_smsc(data)
    fo = _byte(data, pos, "first octet")
    mti = fo & 0x03
    if mti == 0x00:
        return _deliver(data, pos, smsc)
    if mti == 0x01:
        return _submit(data, pos, smsc)
    if mti == 0x02:
        return _status_report(data, pos, smsc)
    raise PduError(f"message type indicator 3 is reserved (first octet {fo:02X})")


def _concat(ud: UserData) -> tuple[int, int, int] | None:
    return ud.udh.concat if ud.udh is not None else None


def _unknown_languages(ud: UserData) -> tuple[int, ...]:
    return ud.udh.unknown_language_ids if ud.udh is not None else ()


def _deliver(data: bytes, pos: int, smsc: str | None) -> Deliver:
    fo = data[pos]
    oa, pos = decode_address(data, pos + 1, "sender address")
    pid = _byte(data, pos, "protocol identifier")
    dcs = _byte(data, pos + 1, "data coding scheme")
    encoding, message_class = parse_dcs(dcs)
    timestamp = decode_scts(data, pos + 2)
    ud = decode_user_data(data, pos + 9, encoding, bool(fo & 0x40))
    return Deliver(
        smsc=smsc,
        sender=oa.number,
        sender_toa=oa.toa,
        text=ud.text,
        timestamp=timestamp,
        concat=_concat(ud),
        encoding=ud.encoding,
        flash=message_class == 0,
        pid=pid,
        dcs=dcs,
        more_messages=not fo & 0x04,
        status_report_indication=bool(fo & 0x20),
        data=ud.data,
        udh=ud.udh,
        unknown_language_ids=_unknown_languages(ud),
    )


def _submit(data: bytes, pos: int, smsc: str | None) -> Submit:
    fo = data[pos]
    mr = _byte(data, pos + 1, "message reference")
    da, pos = decode_address(data, pos + 2, "destination address")
    pid = _byte(data, pos, "protocol identifier")
    dcs = _byte(data, pos + 1, "data coding scheme")
    encoding, message_class = parse_dcs(dcs)
    pos += 2
    vpf = (fo >> 3) & 0x03
    validity = validity_until = None
    if vpf == 0b10:  # relative
        validity = decode_relative_validity(_byte(data, pos, "validity period"))
        pos += 1
    elif vpf == 0b11:  # absolute
        validity_until = decode_scts(data, pos)
        pos += 7
    elif vpf == 0b01:  # enhanced (23.040 §9.2.3.12.3)
        if pos + 7 > len(data):
            raise PduError("PDU ends inside the enhanced validity period")
        fmt = data[pos] & 0x07
        if fmt == 0b001:
            validity = decode_relative_validity(data[pos + 1])
        elif fmt == 0b010:
            validity = timedelta(seconds=data[pos + 1])
        pos += 7
    ud = decode_user_data(data, pos, encoding, bool(fo & 0x40))
    return Submit(
        smsc=smsc,
        to=da.number,
        text=ud.text,
        concat=_concat(ud),
        validity=validity,
        validity_until=validity_until,
        request_status_report=bool(fo & 0x20),
        reject_duplicates=bool(fo & 0x04),
        flash=message_class == 0,
        reference=mr,
        encoding=ud.encoding,
        pid=pid,
        dcs=dcs,
        data=ud.data,
        udh=ud.udh,
        unknown_language_ids=_unknown_languages(ud),
    )


def _status_report(data: bytes, pos: int, smsc: str | None) -> StatusReport:
    fo = data[pos]
    mr = _byte(data, pos + 1, "message reference")
    ra, pos = decode_address(data, pos + 2, "recipient address")
    timestamp = decode_scts(data, pos)
    discharge = decode_scts(data, pos + 7)
    st = _byte(data, pos + 14, "status")
    pos += 15
    encoding, text, concat, unknown = "gsm7", "", None, ()
    pid = dcs = None
    missing: list[str] = []
    if pos < len(data):
        pi = data[pos]
        pos += 1
        if pi & 0x80:
            pi = 0
        if pi & 0x01:
            if pos < len(data):
                pid = data[pos]
                pos += 1
            else:
                missing.append("pid")
        if pi & 0x02:
            if pos < len(data) and not missing:
                dcs = data[pos]
                pos += 1
            else:
                missing.append("dcs")
        if pi & 0x04:
            encoding, _ = parse_dcs(dcs or 0)
            if (
                not missing
                and pos < len(data)
                and len(data) - pos - 1 >= user_data_octets(encoding, data[pos])
            ):
                ud = decode_user_data(data, pos, encoding, bool(fo & 0x40))
                encoding, text, concat = ud.encoding, ud.text, _concat(ud)
                unknown = _unknown_languages(ud)
            else:
                missing.append("user_data")
    return StatusReport(
        smsc=smsc,
        reference=mr,
        recipient=ra.number,
        status=st,
        outcome=status_outcome(st),
        timestamp=timestamp,
        discharge_time=discharge,
        status_report_qualifier=bool(fo & 0x20),
        encoding=encoding,
        text=text,
        concat=concat,
        pid=pid,
        dcs=dcs,
        missing_fields=tuple(missing),
        unknown_language_ids=unknown,
    )
