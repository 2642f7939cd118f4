"""Value objects the modem layer hands to the rest of the appliance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """Who a modem and its SIM are. Any field the modem does not tell is ``None``."""

    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    imei: str | None = None
    imsi: str | None = None
    iccid: str | None = None
    own_number: str | None = None


@dataclass(frozen=True, slots=True)
class SignalQuality:
    """``AT+CSQ`` read as a person wants it: ``rssi`` 0–31 (99 unknown), dBm, 0–5 bars."""

    rssi: int
    ber: int
    dbm: int | None
    bars: int


@dataclass(frozen=True, slots=True)
class Registration:
    """Network registration (the best of CREG / CGREG / CEREG).

    ``status`` is one of ``"home"``, ``"roaming"``, ``"searching"``, ``"denied"``,
    ``"not_registered"``, ``"unknown"``; ``technology`` e.g. ``"GSM"``, ``"LTE"``.
    """

    status: str
    technology: str | None = None
    lac: str | None = None
    cell_id: str | None = None

    @property
    def registered(self) -> bool:
        return self.status in ("home", "roaming")

    @property
    def roaming(self) -> bool:
        return self.status == "roaming"


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An SMS-DELIVER the modem received.

    ``message`` is the decoded :class:`appliance.pdu.Deliver`; ``storage``/``index`` say where
    it sits on the modem (``None`` for a directly routed ``+CMT``). The handler that receives
    it must have stored it durably when it returns: the driver deletes it from the modem then.
    """

    modem: str
    pdu_hex: str
    message: Any
    storage: str | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReportEvent:
    """An SMS-STATUS-REPORT (``+CDS`` or read from storage after ``+CDSI``)."""

    modem: str
    pdu_hex: str
    report: Any
    storage: str | None = None
    index: int | None = None
