"""SMS-SUBMIT (23.040 §9.2.2.2): encoding what goes after AT+CMGS, and the decoded form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.pdu.address import encode_address, encode_smsc
from appliance.pdu.errors import PduError
from appliance.pdu.planner import ShiftTables, make_plan
from appliance.pdu.udh import UserDataHeader, build_udh
from appliance.pdu.gsm7 import pack_septets
from appliance.pdu.userdata import dcs_for

__all__ = [
    "Submit",
    "SubmitPdu",
    "decode_relative_validity",
    "encode_relative_validity",
    "encode_submit",
]

_MAX_VP_MINUTES = 63 * 7 * 24 * 60


@dataclass(frozen=True)
class SubmitPdu:
    """One part ready for ``AT+CMGS=<tpdu_length>``; ``hex`` includes the SMSC field."""

    hex: str
    tpdu_length: int
    part: int  # 1-based
    total: int
    ref: int | None  # concatenation reference; None for a single-part message
    text: str
    encoding: str


@dataclass(frozen=True)
class Submit:
    """A decoded SMS-SUBMIT."""

    smsc: str | None
    to: str
    text: str
    concat: tuple[int, int, int] | None  # (ref, total, seq)
    validity: timedelta | None  # relative (or enhanced relative) validity period
    validity_until: datetime | None  # absolute validity period
    request_status_report: bool
    reject_duplicates: bool
    flash: bool
    reference: int  # TP-MR
    encoding: str
    pid: int
    dcs: int
    data: bytes
    udh: UserDataHeader | None
    unknown_language_ids: tuple[int, ...] = ()  # as in Deliver


def encode_relative_validity(validity: timedelta | int) -> int:
    """TP-VP (relative) for a duration, rounded up to the next representable value and
    capped at 63 weeks. ``validity`` is a timedelta or whole seconds."""
    if isinstance(validity, bool) or not isinstance(validity, (timedelta, int)):
        raise PduError(f"validity must be a timedelta or seconds, not {validity!r}")
    seconds = validity.total_seconds() if isinstance(validity, timedelta) else validity
    if seconds < 0:
        raise PduError(f"validity period cannot be negative ({validity!r})")
    minutes = -int(-seconds // 60)  # ceil
    if minutes > _MAX_VP_MINUTES:
        return 255
    if minutes <= 720:  # 0–143: (V+1) × 5 minutes
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 1440:  # 144–167: 12 h + (V−143) × 30 minutes
        return 143 + -(-(minutes - 720) // 30)
    if minutes <= 30 * 1440:  # 168–196: (V−166) days
        return 166 + -(-minutes // 1440)
    return min(255, 192 + -(-minutes // 10080))  # 197–255: (V−192) weeks


def decode_relative_validity(value: int) -> timedelta:
    """The duration a relative TP-VP octet stands for."""
    if value <= 143:
        return timedelta(minutes=(value + 1) * 5)
    if value <= 167:
        return timedelta(hours=12, minutes=(value - 143) * 30)
    if value <= 196:
        return timedelta(days=value - 166)
    return timedelta(weeks=value - 192)


def encode_submit(
    to: str,
    text: str,
    *,
    concat_ref: int = 0,
    concat_ref_bits: int = 8,
    request_status_report: bool = True,
    validity: timedelta | int | None = None,
    flash: bool = False,
    smsc: str | None = None,
    smart_encoding: bool = True,
    national_languages: Iterable[str] = (),
    shift_tables: ShiftTables | None = None,
) -> list[SubmitPdu]:
    """Encode ``text`` to ``to`` as one SMS-SUBMIT per part.

    ``to`` is ``+digits`` (TOA 91) or digits (TOA 81). ``concat_ref`` (0–255, or 0–65535 with
    ``concat_ref_bits=16``) ties the parts together. ``validity`` sets a relative validity
    period. TP-MR is written as 00: the modem assigns the real one. The text is cut as
    :func:`~appliance.pdu.plan` with the same ``smart_encoding``, ``national_languages`` and
    ``shift_tables`` cuts it, national shift IEs (0x24/0x25) in every part's UDH; pass a
    stored plan's ``tables`` as ``shift_tables`` to send exactly that plan's parts. PduError
    on bad input.
    """
    da = encode_address(to)
    smsc_field = encode_smsc(smsc)
    plan, payloads = make_plan(
        text,
        concat_ref_bits=concat_ref_bits,
        smart_encoding=smart_encoding,
        national_languages=national_languages,
        shift_tables=shift_tables,
    )
    if isinstance(concat_ref, bool) or not isinstance(concat_ref, int):
        raise PduError(f"concat_ref must be an integer, not {concat_ref!r}")
    if not 0 <= concat_ref < (1 << concat_ref_bits):
        raise PduError(
            f"concat_ref {concat_ref} does not fit in {concat_ref_bits} bits"
        )
    fo = 0x01
    vp = b""
    if validity is not None:
        fo |= 0x10  # VPF 10: relative
        vp = bytes((encode_relative_validity(validity),))
    if request_status_report:
        fo |= 0x20
    total = len(payloads)
    multipart = total > 1
    # UDH = UDHL, shift IEs, then the concatenation IE whose last octet is the part number.
    udh_head = build_udh(single_shift=plan.single_shift, locking_shift=plan.locking_shift)
    if multipart:
        concat_ie = build_udh(
            concat=(concat_ref, total, 0), concat_ref_bits=concat_ref_bits
        )[1:-1]
        body = udh_head[1:] + concat_ie
        udh_head = bytes((len(body) + 1,)) + body
    if udh_head:
        fo |= 0x40  # UDHI
    head = bytes((fo, 0x00)) + da + bytes((0x00, dcs_for(plan.encoding, flash))) + vp
    smsc_hex = smsc_field.hex().upper()
    gsm7 = plan.encoding == "gsm7"
    udh_octets = len(udh_head) + multipart  # the part number octet comes per part
    header_septets = (udh_octets * 8 + 6) // 7
    fill = header_septets * 7 - udh_octets * 8
    ref = concat_ref if multipart else None
    out = []
    for seq, payload in enumerate(payloads, 1):
        udh = udh_head + bytes((seq,)) if multipart else udh_head
        if gsm7:
            ud = bytes((header_septets + len(payload),)) + udh + pack_septets(payload, fill)
        else:
            ud = bytes((udh_octets + len(payload),)) + udh + payload
        tpdu = head + ud
        out.append(
            SubmitPdu(
                smsc_hex + tpdu.hex().upper(),
                len(tpdu),
                seq,
                total,
                ref,
                plan.parts[seq - 1],
                plan.encoding,
            )
        )
    return out
