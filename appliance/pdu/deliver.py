"""SMS-DELIVER (23.040 §9.2.2.1): what a modem hands us for a received message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from appliance.pdu.address import encode_address, encode_alphanumeric, encode_smsc, is_phone_number
from appliance.pdu.errors import PduError
from appliance.pdu.planner import ShiftTables, make_plan
from appliance.pdu.timestamp import encode_scts
from appliance.pdu.udh import UserDataHeader, build_udh
from appliance.pdu.userdata import dcs_for, encode_user_data

__all__ = ["Deliver", "encode_deliver"]


@dataclass(frozen=True)
class Deliver:
    """A decoded SMS-DELIVER. ``text`` of 8-bit data maps each octet to one latin-1 char;
    ``data`` holds the raw payload after the UDH."""

    smsc: str | None
    sender: str
    sender_toa: int
    text: str
    timestamp: datetime  # service-centre time stamp, timezone-aware
    concat: tuple[int, int, int] | None  # (ref, total, seq)
    encoding: str  # "gsm7", "ucs2" or "8bit"
    flash: bool  # message class 0
    pid: int
    dcs: int
    more_messages: bool  # TP-MMS clear: the SC has more messages waiting
    status_report_indication: bool
    data: bytes
    udh: UserDataHeader | None
    # Shift IE language ids naming no 23.038 table: the text was decoded with the default
    # table in their place, and may read wrong.
    unknown_language_ids: tuple[int, ...] = ()


def encode_deliver(
    sender: str,
    text: str,
    *,
    timestamp: datetime | None = None,
    concat_ref: int = 0,
    concat_ref_bits: int = 8,
    smsc: str | None = None,
    flash: bool = False,
    smart_encoding: bool = False,
    national_languages: Iterable[str] = (),
    shift_tables: ShiftTables | None = None,
) -> list[str]:
    """Encode ``text`` from ``sender`` as SMS-DELIVER hex PDUs (SMSC field included), one per
    part. ``sender`` is a number (``+…`` or digits) or an alphanumeric name (TOA D0); the
    text is planned as :func:`~appliance.pdu.plan` plans it."""
    if not isinstance(sender, str) or not sender.strip():
        raise PduError("sender is empty")
    oa = encode_address(sender, "sender") if is_phone_number(sender) else encode_alphanumeric(sender)
    if not 0 <= concat_ref < (1 << (16 if concat_ref_bits == 16 else 8)):
        raise PduError(f"concat_ref {concat_ref} does not fit in {concat_ref_bits} bits")
    plan, payloads = make_plan(
        text, concat_ref_bits=concat_ref_bits, smart_encoding=smart_encoding,
        national_languages=national_languages, shift_tables=shift_tables,
    )
    total = len(payloads)
    fo = 0x04  # MTI 00 (DELIVER), TP-MMS set: no more messages waiting
    if total > 1 or plan.tables.national:
        fo |= 0x40
    head = (
        encode_smsc(smsc)
        + bytes((fo,))
        + oa
        + bytes((0x00, dcs_for(plan.encoding, flash)))
        + encode_scts(timestamp)
    )
    out = []
    for seq, payload in enumerate(payloads, 1):
        udh = build_udh(
            concat=(concat_ref, total, seq) if total > 1 else None,
            concat_ref_bits=concat_ref_bits,
            single_shift=plan.single_shift,
            locking_shift=plan.locking_shift,
        )
        out.append((head + encode_user_data(plan.encoding, payload, udh)).hex().upper())
    return out
