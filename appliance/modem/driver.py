"""The modem driver: what the appliance asks of one GSM modem, in AT commands.

:class:`Modem` sits on an :class:`~appliance.modem.transport.ATTransport` and knows the
dialects of the modems met in the field (SIMCom, Huawei, Quectel): initialisation with
fallbacks, SIM PIN (never retried when wrong), identity, signal, registration, operator,
SMSC, storage, sending one PDU, reading and deleting stored messages, status reports and
USSD. It has no threads of its own: URCs arrive on the transport's dispatcher thread.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from appliance.modem.logs import modem_logger
from appliance.modem.answers import decode_ussd, parse_cusd, parse_registration
from appliance.modem.codes import describe
from appliance.modem.errors import (
    CommandError,
    ModemDisconnected,
    ModemError,
    ModemTimeout,
    SendOutcomeUnknown,
    SendRejected,
    SimPinError,
    UssdError,
)
from appliance.modem.transport import ATTransport, Urc, parse_error
from appliance.modem.types import (
    InboundSms,
    ModemIdentity,
    Registration,
    SignalQuality,
    StatusReportEvent,
)
from appliance.pdu import Deliver, PduError, StatusReport, SubmitPdu, decode, gsm7_pack

__all__ = ["Diagnostics", "Modem", "StorageUse", "StoredPdu", "decode_ussd", "signal_from_rssi",
           "storage_full_indication"]

_log = logging.getLogger(__name__)

# AT+CNMI choices, best first: +CMTI for SMS, status reports stored (+CDSI) or routed (+CDS).
CNMI_CHOICES: tuple[tuple[int, int, int, int, int], ...] = (
    (2, 1, 0, 2, 0),
    (2, 1, 0, 1, 0),
    (1, 1, 0, 2, 0),
    (1, 1, 0, 1, 0),
    (2, 1, 0, 0, 0),
    (1, 1, 0, 0, 0),
)
_STORAGES = ("SM", "ME", "MT")
_REG_STATUS = {0: "not_registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown",
               5: "roaming", 6: "home", 7: "roaming", 8: "not_registered", 9: "home",
               10: "roaming"}
_REG_RANK = {"home": 5, "roaming": 4, "searching": 3, "denied": 2, "not_registered": 1,
             "unknown": 0}
_ACT = {0: "GSM", 1: "GSM", 2: "UMTS", 3: "EDGE", 4: "HSDPA", 5: "HSUPA", 6: "HSPA",
        7: "LTE", 8: "EC-GSM-IoT", 9: "NB-IoT", 10: "LTE", 11: "NR", 12: "NR", 13: "EN-DC"}
_BOOT_URCS = frozenset({"RDY", "^SYSSTART", "+CFUN", "+CPIN", "+QUSIM", "SMS READY",
                        "CALL READY", "^SIMST"})
_STORAGE_FULL_URCS = frozenset({"^SMMEMFULL", "+QIND", "+CIEV"})


def storage_full_indication(name: str, args: str) -> bool:
    """Whether a URC says the SMS storage is full: Huawei's ``^SMMEMFULL: "SM"``, Quectel's
    ``+QIND: "smsfull","SM"``, the 27.007 indicator event by name ``+CIEV: "SMSFULL",1``."""
    name = name.upper()
    if name == "^SMMEMFULL":
        return True
    fields = _fields(args)
    if not fields or fields[0].lower() != "smsfull":
        return False
    return name == "+QIND" or (name == "+CIEV" and len(fields) > 1 and fields[1] == "1")


_USSD_STATUS = {0: "the network answered without text", 1: "the network answered without text",
                2: "the network ended the USSD session", 3: "another client answered",
                4: "the network does not support this USSD code", 5: "the network timed out"}
_HEX_LINE = re.compile(r"[0-9A-Fa-f]+")
_INLINE_PDU = re.compile(r"(\S.*?)\s+([0-9A-Fa-f]{16,})")  # "+CMGR: 1,,147 0791…"
_MAX_ODD_REMEMBERED = 64


@dataclass(frozen=True, slots=True)
class StoredPdu:
    """A message as stored on the modem: where, its ``stat`` (0 unread … 3 sent) and PDU."""

    storage: str
    index: int
    stat: int
    pdu_hex: str


@dataclass(frozen=True, slots=True)
class StorageUse:
    """One ``AT+CPMS`` memory: ``role`` is ``"read"``, ``"write"`` or ``"receive"``."""

    role: str
    memory: str
    used: int
    total: int


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What ``appliance diag`` shows: everything a technician checks first."""

    port: str
    sim_state: str
    identity: ModemIdentity
    signal: SignalQuality | None
    registration: Registration | None
    operator: str | None
    smsc: str | None
    storage: tuple[StorageUse, ...]
    cnmi: str | None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        if self.registration is not None:
            doc["registration"]["registered"] = self.registration.registered
            doc["registration"]["roaming"] = self.registration.roaming
        return doc

    def rows(self) -> list[tuple[str, str]]:
        """The report as (label, value) pairs, in the order a technician reads them."""
        ident, sig, reg = self.identity, self.signal, self.registration
        signal = "unknown"
        if sig is not None and sig.dbm is not None:
            signal = f"{sig.dbm} dBm, {sig.bars}/5 bars (rssi {sig.rssi})"
        registration = "unknown"
        if reg is not None:
            registration = reg.status + (f" ({reg.technology})" if reg.technology else "")
            if reg.lac or reg.cell_id:
                registration += f", LAC {reg.lac or '?'} cell {reg.cell_id or '?'}"
        storage = ", ".join(f"{s.role} {s.memory} {s.used}/{s.total}" for s in self.storage)
        return [
            ("port", self.port),
            ("SIM", self.sim_state),
            ("signal", signal),
            ("registration", registration),
            ("operator", self.operator or "—"),
            ("SMSC", self.smsc or "—"),
            ("storage", storage or "—"),
            ("manufacturer", ident.manufacturer or "—"),
            ("model", ident.model or "—"),
            ("firmware", ident.firmware or "—"),
            ("IMEI", ident.imei or "—"),
            ("IMSI", ident.imsi or "—"),
            ("ICCID", ident.iccid or "—"),
            ("own number", ident.own_number or "—"),
            ("CNMI", self.cnmi or "—"),
        ]


def signal_from_rssi(rssi: int, ber: int = 99) -> SignalQuality:
    """``AT+CSQ`` values as dBm (−113 + 2·rssi) and 0–5 bars; rssi 99 is unknown."""
    if not 0 <= rssi <= 31:
        return SignalQuality(rssi=rssi, ber=ber, dbm=None, bars=0)
    bars = 0 if rssi < 2 else 1 if rssi < 10 else 2 if rssi < 15 else 3 if rssi < 20 else (
        4 if rssi < 25 else 5)
    return SignalQuality(rssi=rssi, ber=ber, dbm=-113 + 2 * rssi, bars=bars)


def _fields(text: str) -> list[str]:
    """Comma-separated AT fields, quotes honoured and removed."""
    out, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class Modem:
    """One GSM modem behind an :class:`ATTransport` (see the module docstring).

    ``on_sms`` and ``on_status_report`` are called on the transport's dispatcher thread (or
    the caller's, from :meth:`process_stored`); when they return normally the message is
    deleted from the modem (or acknowledged with ``AT+CNMA``); when they raise it stays.
    ``urc_listeners`` receive every URC too (a console prints them).
    """

    def __init__(
        self,
        transport: ATTransport,
        *,
        name: str | None = None,
        pin: str | None = None,
        on_sms: Callable[[InboundSms], None] | None = None,
        on_status_report: Callable[[StatusReportEvent], None] | None = None,
        command_timeout: float = 5.0,
        prompt_timeout: float = 5.0,
        send_timeout: float = 60.0,
    ) -> None:
        self.transport = transport
        self.name = name or transport.name
        self.on_sms = on_sms
        self.on_status_report = on_status_report
        self.command_timeout = command_timeout
        self.prompt_timeout = prompt_timeout
        self.send_timeout = send_timeout
        self.urc_listeners: list[Callable[[Urc], None]] = []
        self.last_signal: SignalQuality | None = None
        self.cnmi: tuple[int, int, int, int, int] | None = None
        self.storage_memory: str | None = None
        self._pin = pin or None
        self._pin_refused = False
        self._cnma = False
        self._read_memory: str | None = None
        self._manufacturer: str | None = None
        self._storage_lock = threading.RLock()
        self._ussd_lock = threading.Lock()
        self._ussd_replies: queue.Queue[Urc] = queue.Queue()
        self._rebooted = threading.Event()
        self._odd_seen: set[str] = set()
        self._log = modem_logger(_log, self.name)
        transport.on_urc = self._on_urc

    @classmethod
    def open(
        cls,
        port: str,
        *,
        name: str | None = None,
        baudrate: int = 115200,
        rtscts: bool = False,
        resync_timeout: float = 3.0,
        **kwargs: Any,
    ) -> Modem:
        """Open ``port`` exclusively and wrap it (nothing is sent yet)."""
        transport = ATTransport(port, name=name or port, baudrate=baudrate, rtscts=rtscts,
                                resync_timeout=resync_timeout)
        transport.open()
        return cls(transport, name=name or port, **kwargs)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Modem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> str:
        return self.transport.port

    @property
    def rebooted(self) -> bool:
        """True once the modem announced a (re)boot since :meth:`initialize`."""
        return self._rebooted.is_set()

    # ------------------------------------------------------------------ commands

    def command(self, command: str, *, timeout: float | None = None) -> list[str]:
        """Run one AT command; its information lines (CommandError on an error code)."""
        return self.transport.command(command, timeout=timeout or self.command_timeout)

    def _try(self, command: str, *, timeout: float | None = None) -> list[str] | None:
        """Like :meth:`command`, but None when the modem answers with an error."""
        try:
            return self.command(command, timeout=timeout)
        except CommandError:
            return None

    def _odd(self, key: str, message: str, *args: Any) -> None:
        """Log an answer the driver could not (fully) read: one warning per distinct
        answer, so a modem that prints it at every poll does not flood the log."""
        if key in self._odd_seen:
            self._log.debug(message, *args)
            return
        if len(self._odd_seen) >= _MAX_ODD_REMEMBERED:
            self._odd_seen.clear()
        self._odd_seen.add(key)
        self._log.warning(message, *args)

    def _value(self, command: str, prefix: str | None = None) -> str | None:
        lines = self._try(command)
        if not lines:
            return None
        for line in lines:
            if prefix and line.upper().startswith(prefix.upper() + ":"):
                return line[len(prefix) + 1 :].strip()
        return lines[0].strip() if prefix is None or not lines[0].startswith(("+", "^")) else None

    # ------------------------------------------------------------------ initialisation

    def prepare(self, *, timeout: float | None = None) -> None:
        """Get the modem's attention: resync, echo off, numeric error codes."""
        if not self.transport.resync(timeout):
            raise ModemTimeout(
                f"nothing answers AT on {self.port} (wrong port, or the modem is off? "
                "try 'appliance modems scan')", modem=self.name)
        self.command("ATE0")
        self._try("AT+CMEE=1")

    def initialize(self, *, read_stored: bool = True) -> None:
        """Prepare the modem for SMS: PIN, PDU mode, storage, indications; then hand over
        (and delete) whatever arrived while nobody listened."""
        self._rebooted.clear()
        self.prepare()
        self.unlock_sim()
        self._retry_sim_busy(lambda: self.command("AT+CMGF=0"))
        self._select_storage()
        self._select_cnmi()
        csms = self._value("AT+CSMS?", "+CSMS")
        self._cnma = bool(csms) and _fields(csms)[0] == "1"  # type: ignore[arg-type]
        self._try("AT+CREG=2")
        self._log.info("initialised on %s (storage %s, CNMI %s)", self.port,
                       self.storage_memory, self.cnmi)
        if read_stored:
            self.process_stored()

    def _retry_sim_busy(self, action: Callable[[], Any], attempts: int = 10) -> Any:
        for attempt in range(attempts):
            try:
                return action()
            except CommandError as exc:
                busy = (exc.kind, exc.code) in (("cms", 314), ("cme", 14), ("cms", 310))
                if not busy or attempt == attempts - 1:
                    raise
                time.sleep(0.2)
        return None

    def _select_storage(self) -> None:
        for memory in _STORAGES:
            if self._try(f'AT+CPMS="{memory}","{memory}","{memory}"') is not None:
                self.storage_memory = self._read_memory = memory
                return
        self.storage_memory = self._read_memory = None
        self._log.warning("no SMS storage could be selected; using the modem's default")

    def _select_cnmi(self) -> None:
        for choice in CNMI_CHOICES:
            if self._try("AT+CNMI=" + ",".join(map(str, choice))) is not None:
                self.cnmi = choice
                return
        raise CommandError(f"{self.port} accepts no AT+CNMI setting for new-message "
                           "indications", modem=self.name, temporary=False)

    # ------------------------------------------------------------------ SIM

    def sim_state(self) -> str:
        """``"READY"``, ``"SIM PIN"``, ``"SIM PUK"``, ``"NOT INSERTED"``… (``AT+CPIN?``)."""
        try:
            value = self._value("AT+CPIN?", "+CPIN")
            if value is None:
                self.command("AT+CPIN?")  # raises the modem's error
            return (value or "UNKNOWN").strip('"').upper()
        except CommandError as exc:
            if exc.code in (10, 310):
                return "NOT INSERTED"
            if exc.code in (13, 313, 15, 315):
                return "SIM FAILURE"
            if exc.code in (14, 314):
                return "SIM BUSY"
            raise

    def unlock_sim(self, *, ready_timeout: float = 10.0) -> None:
        """Enter the configured PIN if the SIM asks for one. A refused PIN is never tried
        again (three wrong tries lock the SIM): :class:`SimPinError`."""
        state = self.sim_state()
        deadline = time.monotonic() + ready_timeout
        while state == "SIM BUSY" and time.monotonic() < deadline:
            time.sleep(0.2)
            state = self.sim_state()
        if state == "READY":
            return
        if state == "SIM PIN":
            if self._pin_refused:
                raise SimPinError("the SIM PIN was refused before; not trying it again "
                                  "(three wrong PINs lock the SIM)", modem=self.name,
                                  temporary=False)
            if not self._pin:
                raise SimPinError("the SIM needs a PIN: set 'pin' for this modem in the "
                                  "configuration (or pass --pin)", modem=self.name,
                                  temporary=False)
            try:
                self.command(f'AT+CPIN="{self._pin}"')
            except CommandError as exc:
                self._pin_refused = True
                raise SimPinError("the SIM refused the configured PIN; not retrying "
                                  "(three wrong PINs lock the SIM; check 'pin' in the "
                                  "configuration)", modem=self.name, code=exc.code,
                                  kind=exc.kind, temporary=False) from None
            while time.monotonic() < deadline:
                if self.sim_state() == "READY":
                    self._log.info("SIM unlocked")
                    return
                time.sleep(0.1)
            raise SimPinError("the SIM accepted the PIN but did not become ready",
                              modem=self.name)
        if "PUK" in state:
            raise SimPinError("the SIM is locked and needs its PUK (too many wrong PINs); "
                              "unlock it in a phone", modem=self.name, temporary=False)
        if state == "NOT INSERTED":
            raise ModemError(f"no SIM card in the modem on {self.port}", modem=self.name,
                             temporary=False)
        raise SimPinError(f"the SIM is not ready ({state})", modem=self.name)

    # ------------------------------------------------------------------ identity and status

    def identity(self) -> ModemIdentity:
        """Manufacturer, model, firmware, IMEI, IMSI, ICCID and own number (if told)."""
        manufacturer = self._value("AT+CGMI", "+CGMI")
        manufacturer = re.sub(r"^Manufacturer:\s*", "", manufacturer or "", flags=re.I) or None
        self._manufacturer = manufacturer
        model = self._value("AT+CGMM", "+CGMM")
        model = re.sub(r"^Model:\s*", "", model or "", flags=re.I) or None
        firmware = self._value("AT+CGMR", "+CGMR")
        firmware = re.sub(r"^Revision:\s*", "", firmware or "", flags=re.I) or None
        imei = self._digits(self._try("AT+CGSN"), 14, 17)
        imsi = self._digits(self._try("AT+CIMI"), 6, 15)
        return ModemIdentity(
            manufacturer=manufacturer, model=model, firmware=firmware, imei=imei, imsi=imsi,
            iccid=self.iccid(), own_number=self.own_number(),
        )

    @staticmethod
    def _digits(lines: list[str] | None, low: int, high: int) -> str | None:
        for line in lines or []:
            m = re.search(r"\b(\d{%d,%d})\b" % (low, high), line)
            if m:
                return m.group(1)
        return None

    def iccid(self) -> str | None:
        """The SIM's ICCID, asking the way the modem's vendor understands first."""
        vendor = (self._manufacturer or "").lower()
        order = ["AT+CCID", "AT+ICCID", "AT+QCCID", "AT^ICCID?"]
        if "huawei" in vendor:
            order.insert(0, order.pop(3))
        elif "quectel" in vendor:
            order.insert(0, order.pop(2))
        for command in order:
            lines = self._try(command)
            for line in lines or []:
                m = re.search(r"\b([0-9]{18,20}[0-9Ff]?)\b", line)
                if m:
                    return m.group(1).upper().rstrip("F")
        return None

    def own_number(self) -> str | None:
        """The SIM's own number from ``AT+CNUM`` (often not stored on the SIM)."""
        for line in self._try("AT+CNUM") or []:
            if line.upper().startswith("+CNUM:"):
                fields = _fields(line[6:])
                if len(fields) > 1 and fields[1]:
                    return fields[1]
        return None

    def signal(self) -> SignalQuality:
        """``AT+CSQ`` as dBm and bars."""
        value = self._value("AT+CSQ", "+CSQ")
        if value is None:
            raise CommandError(f"{self.port} gave no +CSQ answer", modem=self.name)
        fields = _fields(value)
        rssi = _int(fields[0]) if fields else None
        ber = _int(fields[1]) if len(fields) > 1 else 99
        quality = signal_from_rssi(99 if rssi is None else rssi, 99 if ber is None else ber)
        self.last_signal = quality
        return quality

    def registration(self) -> Registration:
        """The best of CREG / CGREG / CEREG (home beats roaming beats searching…)."""
        best: Registration | None = None
        for name in ("+CREG", "+CGREG", "+CEREG"):
            reg = self._registration_of(name)
            if reg is None:
                continue
            if best is None or _REG_RANK[reg.status] > _REG_RANK[best.status] or (
                reg.status == best.status and best.technology is None and reg.technology
            ):
                best = reg
        if best is None:
            return Registration(status="unknown")
        if best.technology is None and best.registered:
            act = self._operator_act()
            if act is not None:
                best = Registration(best.status, _ACT.get(act), best.lac, best.cell_id)
        return best

    def _registration_of(self, name: str) -> Registration | None:
        """``AT+CxREG?`` read; ``None`` when the modem has no such command or no answer."""
        lines = self._try(f"AT{name}?") or []
        answers = [line for line in lines if line.upper().startswith(name + ":")]
        if not answers:
            return None
        readings = [parse_registration(name, line[len(name) + 1 :]) for line in answers]
        # The answer to the read carries <n>; a URC in the answer's place does not.
        reading = next((r for r in readings if r is not None and r.solicited),
                       next((r for r in readings if r is not None), None))
        if reading is None or not reading.clean:
            self._odd(f"{name}:{answers[0]}", "could not fully read the answer to AT%s?: %r",
                      name, answers[0][:80])
        if reading is None:
            return None
        status = _REG_STATUS.get(reading.stat, "unknown")
        technology = _ACT.get(reading.act) if reading.act is not None else (
            "LTE" if name == "+CEREG" and status in ("home", "roaming") else None)
        return Registration(status=status, technology=technology, lac=reading.lac,
                            cell_id=reading.cell_id)

    def _operator_fields(self) -> list[str]:
        value = self._value("AT+COPS?", "+COPS")
        return _fields(value) if value else []

    def _operator_act(self) -> int | None:
        fields = self._operator_fields()
        return _int(fields[3]) if len(fields) > 3 else None

    def operator(self) -> str | None:
        """The network's name from ``AT+COPS?`` (None when not registered)."""
        fields = self._operator_fields()
        return fields[2] if len(fields) > 2 and fields[2] else None

    def smsc(self) -> str | None:
        """The SMS centre number the SIM uses (``AT+CSCA?``)."""
        value = self._value("AT+CSCA?", "+CSCA")
        if not value:
            return None
        number = _fields(value)[0]
        return number or None

    def storage(self) -> tuple[StorageUse, ...]:
        """Use of the read, write and receive memories (``AT+CPMS?``)."""
        lines = self._try("AT+CPMS?")
        if lines is None:
            return ()
        value = next((line[6:].strip() for line in lines if line.upper().startswith("+CPMS:")),
                     "")
        fields = _fields(value)
        out = []
        for role, i in zip(("read", "write", "receive"), range(0, len(fields) - 2, 3)):
            used, total = _int(fields[i + 1]), _int(fields[i + 2])
            if used is not None and total is not None:
                out.append(StorageUse(role, fields[i], used, total))
        if not out:
            self._odd(f"+CPMS:{value}", "could not read the answer to AT+CPMS?: %r",
                      value[:80])
        return tuple(out)

    def sms_ready(self) -> bool:
        """Whether this port does SMS (``AT+CMGF=0`` and ``AT+CPMS?`` succeed; a locked SIM
        counts as ready — it is the right port, it only needs the PIN)."""
        if self._try("AT+CMGF=0") is None:
            return False
        try:
            self.command("AT+CPMS?")
        except CommandError as exc:
            return (exc.kind, exc.code) in (("cms", 311), ("cms", 316), ("cms", 314),
                                            ("cme", 11), ("cme", 12))
        return True

    def diagnostics(self) -> Diagnostics:
        """Everything ``appliance diag`` prints (SIM must be unlocked for most of it)."""
        sim = self.sim_state()
        identity = self.identity()
        ready = sim == "READY"
        cnmi = self._value("AT+CNMI?", "+CNMI")
        return Diagnostics(
            port=self.port,
            sim_state=sim,
            identity=identity,
            signal=self.signal(),
            registration=self.registration(),
            operator=self.operator() if ready else None,
            smsc=self.smsc() if ready else None,
            storage=self.storage() if ready else (),
            cnmi=cnmi,
        )

    # ------------------------------------------------------------------ sending

    def send_pdu(self, pdu: SubmitPdu, *, timeout: float | None = None) -> int:
        """Send one SMS-SUBMIT part; return its TP-MR.

        :class:`SendRejected` — a ``+CMS ERROR`` (``pdu_sent`` True after Ctrl-Z: the network
        definitely refused); :class:`SendOutcomeUnknown` — no answer after Ctrl-Z;
        :class:`ModemTimeout` (no prompt) and other errors before the PDU was written have
        ``pdu_sent`` False.
        """
        try:
            response = self.transport.send_prompted(
                f"AT+CMGS={pdu.tpdu_length}", pdu.hex,
                prompt_timeout=self.prompt_timeout, timeout=timeout or self.send_timeout)
        except ModemTimeout:
            raise ModemTimeout(f"no '> ' prompt for AT+CMGS within {self.prompt_timeout:g} s "
                               "(nothing was sent)", modem=self.name, pdu_sent=False) from None
        if response.prompt:
            raise SendOutcomeUnknown("send ended at a prompt", modem=self.name)
        if response.ok:
            value = response.first("+CMGS")
            mr = _int(_fields(value)[0]) if value else None
            if mr is None:
                raise SendOutcomeUnknown("the modem said OK without a +CMGS reference: the "
                                         "message probably left but cannot be tracked",
                                         modem=self.name)
            self._log.info("sent part %d/%d: TP-MR %d", pdu.part, pdu.total, mr)
            return mr
        sent = response.payload_sent
        kind, code = parse_error(response.final)
        if kind and code is not None:
            info = describe(kind, code)
            where = "the network refused the message" if sent else "refused before sending"
            raise SendRejected(f"{where}: +{kind.upper()} ERROR {code} ({info.meaning})",
                               modem=self.name, code=code, kind=kind,
                               temporary=info.temporary, pdu_sent=sent)
        raise SendRejected(f"the modem answered {response.final} to the send",
                           modem=self.name, temporary=True, pdu_sent=sent)

    # ------------------------------------------------------------------ stored messages

    def list_stored(self, stat: int = 4) -> list[StoredPdu]:
        """Messages in the current read memory (``AT+CMGL=stat``; 4 = all).

        Each ``+CMGL:`` header is followed by its PDU; a line between them that is not hex
        (seen on real modems) is skipped, not taken for the PDU.
        """
        with self._storage_lock:
            memory = self._read_memory or "?"
            lines = self.command(f"AT+CMGL={stat}", timeout=max(self.command_timeout, 15))
            out: list[StoredPdu] = []
            header: list[str] | None = None
            skipped = 0
            for line in lines:
                if line.upper().startswith("+CMGL:"):
                    header = _fields(line[6:])
                elif header is not None:
                    pdu = line.strip()
                    if not _HEX_LINE.fullmatch(pdu):
                        skipped += 1
                        continue
                    index, st = _int(header[0]), _int(header[1]) if len(header) > 1 else None
                    if index is not None:
                        out.append(StoredPdu(memory, index, st if st is not None else 0, pdu))
                    header = None
            if skipped:
                self._odd("AT+CMGL:skipped", "AT+CMGL: skipped %d line(s) that were neither a "
                          "header nor a PDU", skipped)
            return out

    def read_stored(self, index: int, storage: str | None = None) -> StoredPdu | None:
        """The message at ``index`` (of ``storage``, switching memories if needed).

        The header may be ``<stat>,[<alpha>],<length>`` (27.005), ``<stat>,<length>``,
        ``<length>`` alone or ``<index>,<stat>,,<length>``; the PDU follows on the next
        line (or, on some modems, after a blank on the header line).
        """
        with self._storage_lock:
            self._use_memory(storage)
            try:
                lines = self.command(f"AT+CMGR={index}")
            except CommandError as exc:
                if exc.code == 321 or exc.code == 21:
                    return None
                raise
            for i, line in enumerate(lines):
                if not line.upper().startswith("+CMGR:"):
                    continue
                rest = line[6:].strip()
                inline = _INLINE_PDU.fullmatch(rest)
                fields = _fields(inline.group(1) if inline else rest)
                stat = _int(fields[1] if len(fields) >= 4 else fields[0] if len(fields) >= 2
                            else None)
                following = [nxt.strip() for nxt in lines[i + 1 :] if nxt.strip()]
                pdu = inline.group(2) if inline else next(
                    (nxt for nxt in following if _HEX_LINE.fullmatch(nxt)),
                    following[0] if following else "")
                if not pdu:
                    return None
                return StoredPdu(self._read_memory or storage or "?", index,
                                 stat if stat is not None and 0 <= stat <= 3 else 0, pdu)
            return None

    def delete_stored(self, index: int, storage: str | None = None) -> None:
        with self._storage_lock:
            self._use_memory(storage)
            self.command(f"AT+CMGD={index}")

    def _use_memory(self, storage: str | None) -> None:
        if storage and storage != self._read_memory:
            self.command(f'AT+CPMS="{storage}"')
            self._read_memory = storage

    def process_stored(self) -> int:
        """Hand every stored message to its handler, deleting each the handler took.
        Returns how many were handed over and deleted."""
        with self._storage_lock:
            if self.storage_memory:
                self._use_memory(self.storage_memory)
            handled = 0
            for stored in self.list_stored(4):
                if self._handle_stored(stored):
                    handled += 1
            return handled

    def _handle_stored(self, stored: StoredPdu) -> bool:
        try:
            message = decode(stored.pdu_hex, has_smsc=True)
        except PduError as exc:
            self._odd(f"pdu:{stored.storage}/{stored.index}/{stored.pdu_hex}",
                      "stored message %s/%d does not decode (%s); left on the modem",
                      stored.storage, stored.index, exc)
            return False
        if isinstance(message, Deliver):
            if self.on_sms is None:
                return False
            event: Any = InboundSms(self.name, stored.pdu_hex, message, stored.storage,
                                    stored.index)
            handler: Callable[[Any], None] = self.on_sms
        elif isinstance(message, StatusReport):
            if self.on_status_report is None:
                return False
            event = StatusReportEvent(self.name, stored.pdu_hex, message, stored.storage,
                                      stored.index)
            handler = self.on_status_report
        else:
            return False  # a stored SUBMIT (outbox): not ours to consume
        try:
            handler(event)
        except Exception:  # noqa: BLE001 - the message stays on the modem for next time
            self._log.exception("handler failed on %s/%d; message kept on the modem",
                                stored.storage, stored.index)
            return False
        self.delete_stored(stored.index, stored.storage)
        return True

    def _handle_index(self, storage: str | None, index: int) -> None:
        with self._storage_lock:
            stored = self.read_stored(index, storage)
            if stored is None:
                self._log.warning("indicated message %s/%d is not there", storage, index)
                return
            self._handle_stored(stored)

    def _handle_routed(self, urc: Urc) -> None:
        """A directly routed ``+CMT``/``+CDS``: hand it over, then ``AT+CNMA`` if needed."""
        if not urc.body:
            return
        try:
            message = decode(urc.body, has_smsc=True)
        except PduError as exc:
            self._log.warning("%s PDU (%d hex digits) does not decode (%s)", urc.name,
                              len(urc.body), exc)
            return
        try:
            if isinstance(message, Deliver) and self.on_sms is not None:
                self.on_sms(InboundSms(self.name, urc.body, message))
            elif isinstance(message, StatusReport) and self.on_status_report is not None:
                self.on_status_report(StatusReportEvent(self.name, urc.body, message))
        except Exception:  # noqa: BLE001
            self._log.exception("handler failed on %s; not acknowledged", urc.name)
            return
        if self._cnma:
            self._try("AT+CNMA")

    # ------------------------------------------------------------------ URCs

    def _on_urc(self, urc: Urc) -> None:
        for listener in list(self.urc_listeners):
            try:
                listener(urc)
            except Exception:  # noqa: BLE001
                self._log.exception("URC listener failed")
        name = urc.name.upper()
        try:
            if name in ("+CMTI", "+CDSI"):
                fields = _fields(urc.args)
                index = _int(fields[-1])
                if index is not None:
                    self._handle_index(fields[0] if len(fields) > 1 else None, index)
            elif name in ("+CMT", "+CDS"):
                self._handle_routed(urc)
            elif name == "+CUSD":
                self._ussd_replies.put(urc)
            elif name == "^RSSI":
                rssi = _int(urc.args)
                if rssi is not None:
                    self.last_signal = signal_from_rssi(rssi)
            elif name in _BOOT_URCS:
                self._rebooted.set()
            elif name in _STORAGE_FULL_URCS and storage_full_indication(name, urc.args):
                self._log.warning("SMS storage full (%s): reading it out", urc.line)
                handled = self.process_stored()
                self._log.info("storage sweep handed over %d message(s)", handled)
        except ModemDisconnected:
            pass
        except ModemError as exc:
            self._log.warning("could not handle %s: %s", urc.line, exc)

    # ------------------------------------------------------------------ USSD

    def ussd(self, code: str, *, timeout: float = 15.0, release_grace: float = 1.5) -> str:
        """Send a USSD ``code`` (e.g. ``*100#``) and return the network's reply text.

        Some networks first print a release line (``+CUSD: 2,"Initiating Release"``) and
        then the answer: after a ``<m>`` of 2 or more the driver waits ``release_grace``
        seconds for an answer to follow. When none does it raises :class:`UssdError` with
        the ``status`` and ``text`` the network sent.
        """
        with self._ussd_lock:
            while not self._ussd_replies.empty():
                self._ussd_replies.get_nowait()
            try:
                self.command(f'AT+CUSD=1,"{code}",15')
            except CommandError as exc:
                if exc.code == 30:
                    raise
                # Some Huawei firmwares want the code GSM-7 packed, in hex.
                packed = gsm7_pack(code).hex().upper()
                self.command(f'AT+CUSD=1,"{packed}",15')
            deadline = time.monotonic() + timeout
            ended: tuple[int, str | None] | None = None
            grace_end = deadline
            while True:
                wait_until = deadline if ended is None else min(deadline, grace_end)
                try:
                    urc = self._ussd_replies.get(timeout=max(0.0, wait_until - time.monotonic()))
                except queue.Empty:
                    if ended is not None:
                        status, text = ended
                        raise UssdError(
                            f"USSD {code}: {_USSD_STATUS.get(status, f'status {status}')} "
                            f"(+CUSD: {status})", modem=self.name, status=status, text=text,
                            temporary=status in (2, 5)) from None
                    self._try("AT+CUSD=2")
                    raise ModemTimeout(f"no USSD answer to {code} within {timeout:g} s",
                                       modem=self.name) from None
                reply = parse_cusd(urc.args)
                if reply is None:
                    self._log.warning("unreadable +CUSD line (%d characters) for %s; "
                                      "waiting for another", len(urc.args), code)
                    continue
                text = decode_ussd(reply.text, reply.dcs) if reply.text is not None else None
                if reply.status in (0, 1):
                    if reply.status == 1:
                        self._try("AT+CUSD=2")  # the network wants an answer: close the session
                    if text is None:
                        raise UssdError(f"USSD {code}: {_USSD_STATUS[reply.status]}",
                                        modem=self.name, status=reply.status)
                    return text
                self._log.info("USSD %s: +CUSD <m>=%d; waiting %.1f s for an answer after it",
                               code, reply.status, release_grace)
                if ended is None or (text and not ended[1]):
                    ended = (reply.status, text)
                grace_end = time.monotonic() + release_grace

    # ------------------------------------------------------------------ reset

    def reset(self, *, boot_timeout: float = 30.0, read_stored: bool = True) -> None:
        """Reboot the modem (``AT+CFUN=1,1``), wait until it answers, initialise again."""
        self._log.warning("resetting the modem (AT+CFUN=1,1)")
        self._rebooted.clear()
        try:
            self.command("AT+CFUN=1,1", timeout=10)
        except ModemTimeout:
            pass
        deadline = time.monotonic() + boot_timeout
        time.sleep(0.1)
        while time.monotonic() < deadline:
            if self.transport.resync(min(2.0, max(0.1, deadline - time.monotonic()))):
                break
        else:
            raise ModemTimeout(f"the modem on {self.port} did not come back within "
                               f"{boot_timeout:g} s of a reset", modem=self.name)
        self.initialize(read_stored=read_stored)

