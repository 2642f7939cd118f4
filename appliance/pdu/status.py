"""SMS-STATUS-REPORT (23.040 §9.2.2.3): delivery outcome of a message we submitted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance.pdu.address import encode_address, encode_smsc
from appliance.pdu.errors import PduError
from appliance.pdu.timestamp import encode_scts

__all__ = ["StatusReport", "encode_status_report", "status_outcome"]


def status_outcome(status: int) -> str:
    """"delivered", "pending" or "failed" for a raw TP-ST value (23.040 §9.2.3.15).

    00–1F: transaction completed; 20–3F: temporary error, the SC keeps trying; 40–5F:
    permanent error; 60–7F: temporary error, the SC gave up; 80–FF reserved (read as failed).
    """
    if status < 0x20:
        return "delivered"
    if status < 0x40:
        return "pending"
    return "failed"


@dataclass(frozen=True)
class StatusReport:
    """A decoded SMS-STATUS-REPORT; match it to a part on (modem, reference, recipient).

    ``pid``, ``dcs`` and the user data are optional (TP-PI); ``missing_fields`` names those
    TP-PI announced but the PDU ended before (see :mod:`appliance.pdu.decode`)."""

    smsc: str | None
    reference: int  # TP-MR of the submitted message
    recipient: str
    status: int  # raw TP-ST
    outcome: str  # "delivered" / "pending" / "failed"
    timestamp: datetime  # when the SC received the message
    discharge_time: datetime  # when the SC delivered it, or tried last
    status_report_qualifier: bool  # set: report on an SMS-COMMAND, clear: on an SMS-SUBMIT
    encoding: str
    text: str
    concat: tuple[int, int, int] | None
    pid: int | None = None
    dcs: int | None = None
    missing_fields: tuple[str, ...] = ()
    unknown_language_ids: tuple[int, ...] = ()  # as in Deliver


def encode_status_report(
    reference: int,
    recipient: str,
    *,
    status: int = 0,
    timestamp: datetime | None = None,
    discharge_time: datetime | None = None,
    smsc: str | None = None,
) -> str:
    """Encode an SMS-STATUS-REPORT as hex (SMSC field included), for the simulator and tests."""
    if not 0 <= reference <= 255:
        raise PduError(f"message reference {reference} is not 0–255")
    if not 0 <= status <= 255:
        raise PduError(f"status {status} is not 0–255")
    scts = encode_scts(timestamp)
    dt = encode_scts(discharge_time) if discharge_time is not None else scts
    tpdu = (
        bytes((0x06, reference))  # MTI 10, TP-MMS set
        + encode_address(recipient, "recipient")
        + scts
        + dt
        + bytes((status,))
    )
    return (encode_smsc(smsc) + tpdu).hex().upper()
