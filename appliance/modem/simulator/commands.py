"""The AT layer of the simulator: command parsing, the handler table, storage and sending.

:class:`AtModem` stacks on :class:`~appliance.modem.simulator.pty.PtyDevice`: it turns the
bytes of each tty into command lines, executes them against the modem and SIM state a
:class:`~appliance.modem.personas.Persona` describes, and answers. Two hooks let a layer
above change answers without touching this one: :meth:`AtModem.intercept_line` (a line is
answered another way) and :meth:`AtModem.send_failure` (a send fails with a CMS code).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.modem.logs import modem_logger
from appliance.modem.personas import PERSONAS, Persona
from appliance.modem.simulator.identity import next_modem_number, random_iccid, random_imei, random_imsi
from appliance.modem.simulator.pty import Port, PtyDevice, SimulatorError
from appliance.numbers import mask
from appliance.pdu import (
    PduError,
    Submit,
    decode,
    encode_deliver,
    encode_status_report,
    gsm7_pack,
    gsm7_unpack,
)

__all__ = ["AtModem", "SentRecord", "StoredMessage"]

_log = logging.getLogger("appliance.modem.simulator")

_CR, _LF, _BS, _CTRL_Z, _ESC = 0x0D, 0x0A, 0x08, 0x1A, 0x1B
_MAX_LINE = 2048
_MAX_PROMPT = 4096

_CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    16: "incorrect password",
    21: "invalid index",
    30: "no network service",
    50: "Incorrect parameters",
    100: "unknown",
}
_CMS_TEXT = {
    8: "Operator determined barring",
    21: "Short message transfer rejected",
    27: "Destination out of service",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Congestion",
    300: "ME failure",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    313: "SIM failure",
    316: "SIM PUK required",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One SMS-SUBMIT the simulated modem accepted (logged when Ctrl-Z arrived).

    ``time`` is :func:`time.monotonic`, ``wall_time`` :func:`time.time`; ``part``/``total``/
    ``ref`` come from the concatenation header (``1``/``1``/``None`` for a single part);
    ``pdu_hex`` is what the client wrote (empty for a text-mode send).
    """

    time: float
    wall_time: float
    mr: int
    to: str
    text: str
    part: int
    total: int
    ref: int | None
    pdu_hex: str
    modem: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message in simulated storage. ``kind``: ``"deliver"`` or ``"status-report"``."""

    storage: str
    index: int
    stat: int
    pdu_hex: str
    kind: str


class _AtError(Exception):
    """A command's final error. ``kind``: ``"cme"``, ``"cms"``, ``"plain"``, ``"unsupported"``."""

    def __init__(self, kind: str, code: int = 0) -> None:
        super().__init__(kind, code)
        self.kind = kind
        self.code = code


@dataclass(slots=True)
class _Cmd:
    name: str  # upper case: "E", "&F", "+CMGS", "^ICCID", "S0"
    form: str  # "exec", "read", "test" or "set"
    args: list[str]
    raw: str


@dataclass(slots=True)
class _Prompt:
    kind: str  # "pdu" or "text"
    length: int = 0
    to: str = ""
    buf: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class _Session:
    """Per-tty command state (each tty of a real modem has its own)."""

    echo: bool = True
    cmee: int = 0
    cmgf: int = 0
    cscs: str = "IRA"
    line: bytearray = field(default_factory=bytearray)
    pending: bytearray = field(default_factory=bytearray)
    prompt: _Prompt | None = None
    busy: bool = False
    held_urcs: list[bytes] = field(default_factory=list)


def _split_args(text: str) -> list[str]:
    """Split AT arguments on commas outside double quotes; strip quotes and blanks."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    args.append("".join(current).strip())
    return args


def _split_commands(body: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


_EXTENDED = re.compile(r"([+^$][A-Za-z][A-Za-z0-9]*)(.*)", re.DOTALL)
_BASIC = re.compile(r"(&?[A-Za-z])(\d*)")
_SREG = re.compile(r"[Ss](\d+)(\?|=\d*)?")


def _parse_extended(piece: str) -> _Cmd:
    m = _EXTENDED.fullmatch(piece)
    if not m:
        raise _AtError("plain")
    name, rest = m.group(1).upper(), m.group(2).strip()
    if rest == "":
        return _Cmd(name, "exec", [], piece)
    if rest == "?":
        return _Cmd(name, "read", [], piece)
    if rest == "=?":
        return _Cmd(name, "test", [], piece)
    if rest.startswith("="):
        return _Cmd(name, "set", _split_args(rest[1:]), piece)
    raise _AtError("plain")


def _parse_commands(body: str) -> list[_Cmd]:
    """Parse what follows ``AT`` into commands (basic ``E0Z``, extended ``+CMGF=0``, ``;``)."""
    cmds: list[_Cmd] = []
    for piece in _split_commands(body):
        pos = 0
        while pos < len(piece):
            if piece[pos] in "+^$":
                cmds.append(_parse_extended(piece[pos:]))
                break
            s = _SREG.match(piece, pos)
            if s:
                suffix = s.group(2) or ""
                form = "read" if suffix == "?" else ("set" if suffix else "exec")
                cmds.append(_Cmd("S" + s.group(1), form, [suffix[1:]] if form == "set" else [], s.group(0)))
                pos = s.end()
                continue
            b = _BASIC.match(piece, pos)
            if not b:
                raise _AtError("plain")
            name, digits = b.group(1).upper(), b.group(2)
            cmds.append(_Cmd(name, "set" if digits else "exec", [digits] if digits else [], b.group(0)))
            pos = b.end()
    return cmds


def _mask_secrets(line: str) -> str:
    return re.sub(r"(?i)(\+CPIN=|\+CLCK=[^,]*,[^,]*,|\+CPWD=)(.*)", r"\1****", line)


def _tpdu_length(pdu_hex: str) -> int:
    """TPDU octets of a PDU written with its SMSC field (what ``+CMGS=``/``+CMGR:`` count)."""
    return len(pdu_hex) // 2 - 1 - int(pdu_hex[:2], 16)


class AtModem(PtyDevice):
    """A modem's AT command set and state on top of its ttys (see :class:`SimulatedModem`)."""

    reset_delay_s: float = 0.05
    """How long a reboot (``AT+CFUN=1,1``) keeps the modem deaf before its boot lines."""
    ussd_delay_s: float = 0.05
    """Delay between ``OK`` to ``AT+CUSD=1,...`` and the ``+CUSD:`` answer."""

    def __init__(
        self,
        persona: str = "sim800",
        *,
        name: str | None = None,
        imei: str | None = None,
        iccid: str | None = None,
        imsi: str | None = None,
        own_number: str | None = None,
        latency_s: float = 0.0,
        link_dir: str | os.PathLike[str] | None = None,
        pin: str | None = None,
        smsc: str = "+15550000000",
        operator: str = "SimNet",
        rssi: int = 20,
        extra_ports: int | None = None,
    ) -> None:
        if persona not in PERSONAS:
            raise SimulatorError(
                f"unknown simulator persona {persona!r}; choose one of {', '.join(sorted(PERSONAS))}"
            )
        self._persona: Persona = PERSONAS[persona]
        number = next_modem_number()
        self.imei: str = imei or random_imei(self._persona.tac)
        self.iccid: str = iccid or random_iccid()
        self.imsi: str = imsi or random_imsi()
        self.own_number = own_number
        self.latency_s = latency_s
        self.smsc = smsc
        self.operator = operator
        self.puk = "12345678"
        self.rssi_interval_s: float | None = 5.0 if self._persona.rssi_urc else None
        """Period of Huawei ``^RSSI`` URCs (``None``: only on :meth:`emit_rssi`)."""
        self._rssi = rssi
        self._pin = pin
        roles = self._persona.port_roles + ("silent",) * (extra_ports or 0)
        super().__init__(
            name or f"{persona}-{number}",
            roles,
            at_index=self._persona.at_port,
            link_dir=link_dir,
            by_id_stem=f"usb-{self._persona.usb_vendor}_{self._persona.usb_product}_{self.imei}",
            log=modem_logger(_log, name or f"{persona}-{number}"),
        )
        self._sessions: dict[int, _Session] = {}

        # Modem and SIM state that survives power cycles.
        self._network = True
        self._mr = 0
        self._concat_ref = secrets.randbelow(255) + 1
        self._sent: list[SentRecord] = []
        self._commands: deque[str] = deque(maxlen=2000)
        self._ussd: dict[str, str] = dict(self._persona.default_ussd)
        self._storage: dict[str, dict[int, StoredMessage]] = {mem: {} for mem, _ in self._persona.storage_sizes}
        self._capacity = dict(self._persona.storage_sizes)
        self._index_limit = dict(self._capacity)  # slots addressable (>= capacity)
        self._held: deque[tuple[str, str]] = deque()  # (PDU, kind) the network retries
        self._deferred: list[Callable[[], None]] = []
        self._power_up_state()

    # ------------------------------------------------------------------ hooks

    def handle_plug(self) -> None:
        self._power_up_state()
        self._boot()

    def handle_bytes(self, port: Port, data: bytes) -> None:
        self._session(port).pending += data
        self._process_input(port)

    def intercept_line(self, port: Port, line: str) -> bool:
        """Answer the command ``line`` some other way (return True) instead of executing it."""
        return False

    def send_failure(self, to: str) -> int | None:
        """A CMS error code to answer a well-formed send to ``to`` with, or ``None`` to go on."""
        return None

    # ------------------------------------------------------------------ public surface

    @property
    def persona(self) -> str:
        return self._persona.key

    @property
    def sent(self) -> list[SentRecord]:
        with self.lock:
            return list(self._sent)

    @property
    def storage(self) -> list[StoredMessage]:
        with self.lock:
            return [m for mem in self._storage.values() for _, m in sorted(mem.items())]

    @property
    def commands(self) -> list[str]:
        """AT command lines received on any tty (the last 2000), as written by the client."""
        with self.lock:
            return list(self._commands)

    @property
    def next_mr(self) -> int:
        """The TP-MR the next accepted send gets (settable, e.g. to test wrap-around)."""
        return self._mr

    @next_mr.setter
    def next_mr(self, value: int) -> None:
        with self.lock:
            self._mr = value % 256

    @property
    def rssi(self) -> int:
        return self._rssi

    def set_network(self, registered: bool) -> None:
        """Register or deregister (``+CREG: 0,2``, empty ``+COPS``, sends → CMS 331)."""
        with self.lock:
            before = self._reg_stat()
            self._network = registered
            self._announce_registration(before)
            self.flush_all()

    def set_signal(self, rssi: int) -> None:
        """Change the ``AT+CSQ`` rssi (0–31, 99 unknown); Huawei announces it with ``^RSSI``."""
        with self.lock:
            self._rssi = rssi
            if self._persona.rssi_urc and self._curc:
                self._urc([f"^RSSI: {rssi}"])
                self.flush_all()

    def emit_rssi(self) -> None:
        """Send a ``^RSSI: <n>`` URC now (Huawei-style; any persona)."""
        with self.lock:
            self._urc([f"^RSSI: {self._rssi}"])
            self.flush_all()

    def require_pin(self, pin: str | None) -> None:
        """The SIM now needs ``pin`` (locked at once), or no PIN at all with ``None``."""
        with self.lock:
            before = self._reg_stat()
            self._pin = pin
            self._pin_tries = 3
            if pin is None:
                was_locked = self._sim_state != "READY"
                self._sim_state = "READY"
                if was_locked:
                    self._announce_sim_ready()
            else:
                self._sim_state = "SIM PIN"
            self._announce_registration(before)
            self.flush_all()

    def set_ussd_reply(self, code: str, text: str) -> None:
        """Answer ``AT+CUSD=1,"<code>"`` with ``text`` (encoded the persona's way)."""
        with self.lock:
            self._ussd[code] = text

    def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        direct: bool | None = None,
        timestamp: Any = None,
        flash: bool = False,
        announce: bool = True,
    ) -> list[int]:
        """Receive an SMS from ``sender`` (several SMS-DELIVER parts when long).

        Parts are stored in the receive storage and announced per the CNMI setting, or
        routed as ``+CMT`` when CNMI says ``mt=2`` or ``direct`` is True (``direct=False``
        forces store + ``+CMTI``; ``announce=False`` stores without any indication, as when
        a ``+CMTI`` is lost). Returns the storage indexes (``[]`` when routed directly).

        When the receive storage is full a part is not lost: the modem announces the full
        storage (the persona's :attr:`~appliance.modem.personas.Persona.storage_full_urc`)
        and the network keeps the part (:attr:`held_by_network`) and delivers it, announced,
        as soon as a slot is freed (``AT+CMGD``), as a real SMSC retries.
        """
        with self.lock:
            self._concat_ref = self._concat_ref % 255 + 1
            pdus = encode_deliver(
                sender, text, timestamp=timestamp, concat_ref=self._concat_ref, smsc=self.smsc, flash=flash
            )
            route_direct = direct if direct is not None else self._cnmi[1] == 2
            indexes: list[int] = []
            for pdu in pdus:
                if route_direct:
                    self._routed_urc([f"+CMT: ,{_tpdu_length(pdu)}", pdu])
                    continue
                mem = self._mem[2]
                index = self._store(mem, pdu, "deliver") if not self._held else None
                if index is None:
                    self._hold(pdu, "deliver")
                    continue
                indexes.append(index)
                if announce and (self._cnmi[1] in (1, 2, 3) or direct is False):
                    self._indication([f'+CMTI: "{mem}",{index}'])
            self.flush_all()
            self.log.info("delivered %d part(s) from %s (%s)", len(pdus), mask(sender), "direct" if route_direct else f"stored {indexes}")
            return indexes

    def send_status_report(self, reference: int, *, status: int = 0, recipient: str | None = None) -> None:
        """Report on the send with TP-MR ``reference`` (``+CDS``, or stored + ``+CDSI``).

        ``recipient`` defaults to the ``to`` of the latest logged send with that MR.
        """
        with self.lock:
            if recipient is None:
                match = next((r for r in reversed(self._sent) if r.mr == reference), None)
                if match is None:
                    raise SimulatorError(
                        f"{self.name} has sent nothing with TP-MR {reference}; pass recipient= explicitly"
                    )
                recipient = match.to
            pdu = encode_status_report(reference, recipient, status=status, smsc=self.smsc)
            ds = self._cnmi[3]
            if ds == 1:
                self._routed_urc([f"+CDS: {_tpdu_length(pdu)}", pdu])
            elif ds == 2:
                mem = self._mem[2]
                index = self._store(mem, pdu, "status-report") if not self._held else None
                if index is None:
                    self._hold(pdu, "status-report")
                else:
                    self._indication([f'+CDSI: "{mem}",{index}'])
            else:
                self.log.info("status report for MR %d dropped (CNMI ds=0)", reference)
            self.flush_all()

    # ------------------------------------------------------------------ state
    def _power_up_state(self) -> None:
        """Everything a power cycle resets (storage, MR counter and SMSC survive)."""
        p = self._persona
        self._cnmi: tuple[int, int, int, int, int] = p.cnmi_default
        self._cnmi_buffer: list[list[str]] = []
        self._csms = 0
        self._cnma_pending = 0
        self._reg_modes = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self._cfun = 1
        self._curc = True
        first = p.storage_sizes[0][0]
        self._mem = [first, first, first]
        self._sim_state = "SIM PIN" if self._pin else "READY"
        self._pin_tries = 3
        self._puk_tries = 10
        self._sessions = {port.index: _Session() for port in self.ports}

    def _registered(self) -> bool:
        return self._network and self._sim_state == "READY" and self._cfun == 1

    def _reg_stat(self) -> int:
        if self._registered():
            return 1
        if self._sim_state != "READY" or self._cfun != 1:
            return 0
        return 2

    def _announce_registration(self, before: int) -> None:
        after = self._reg_stat()
        if after == before:
            return
        for name, mode in self._reg_modes.items():
            if mode == 0 or (name == "+CEREG" and not self._persona.has_cereg):
                continue
            line = f"{name}: {after}"
            if mode == 2 and after == 1:
                line += ',"1A2B","00C3D4E5"'
            self._urc([line])

    def _announce_sim_ready(self) -> None:
        lines = (["+CPIN: READY"] if self._persona.cpin_urc else []) + list(self._persona.sim_ready_lines)
        if lines:
            self._urc(lines)

    # ------------------------------------------------------------------ output

    def _lines(self, lines: Iterable[str]) -> bytes:
        return ("\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8", "replace")

    def _urc(self, lines: list[str]) -> None:
        """Send an unsolicited result to the AT port (held while a command is in progress)."""
        if not self.plugged:
            return
        port = self.ports[self._persona.at_port]
        data = self._lines(lines)
        if self._session(port).busy or self._session(port).prompt is not None:
            self._session(port).held_urcs.append(data)
        else:
            self.write_port(port, data)

    def _indication(self, lines: list[str]) -> None:
        """A ``+CMTI``/``+CDSI`` indication, buffered while CNMI mode is 0."""
        if self._cnmi[0] == 0:
            self._cnmi_buffer.append(lines)
        else:
            self._urc(lines)

    def _routed_urc(self, lines: list[str]) -> None:
        """A directly routed ``+CMT``/``+CDS``; after ``AT+CSMS=1`` it awaits ``AT+CNMA``."""
        if self._csms == 1:
            self._cnma_pending += 1
        self._urc(lines)

    def _boot(self) -> None:
        p = self._persona
        lines = list(p.boot_lines)
        if p.cpin_urc:
            lines.append("+CPIN: READY" if self._sim_state == "READY" else f"+CPIN: {self._sim_state}")
        if self._sim_state == "READY":
            lines.extend(p.sim_ready_lines)
        port = self.ports[p.at_port]
        for line in lines:
            self.write_port(port, self._lines([line]), force=True)
        self.flush_port(port)
        self._schedule_rssi()

    def _schedule_rssi(self) -> None:
        if self._persona.rssi_urc and self.rssi_interval_s:
            self.schedule(self.rssi_interval_s, self._rssi_tick)

    def _rssi_tick(self) -> None:
        if self._curc:
            self._urc([f"^RSSI: {self._rssi if self._cfun == 1 else 99}"])
        self._schedule_rssi()

    # ------------------------------------------------------------------ input

    def _session(self, port: Port) -> _Session:
        return self._sessions.setdefault(port.index, _Session())

    def discard_input(self) -> None:
        """Forget partial command lines and unread input on every tty (a hang drops them)."""
        for session in self._sessions.values():
            session.line.clear()
            session.pending.clear()

    def _process_input(self, port: Port) -> None:
        s = self._session(port)
        data = bytes(s.pending)
        s.pending.clear()
        for pos, b in enumerate(data):
            if s.busy or not port.open:
                s.pending += data[pos:]
                return
            if s.prompt is not None:
                self._prompt_byte(port, b)
                continue
            if s.echo:
                self.write_port(port, bytes([b]))
            if b in (_CR, _LF):
                line = bytes(s.line)
                s.line.clear()
                self._on_line(port, line)
            elif b == _BS:
                if s.line:
                    s.line.pop()
            elif len(s.line) < _MAX_LINE:
                s.line.append(b)

    def _prompt_byte(self, port: Port, b: int) -> None:
        s = self._session(port)
        prompt = s.prompt
        assert prompt is not None
        if b == _CTRL_Z:
            s.prompt = None
            self._finish_send(port, prompt)
        elif b == _ESC:
            s.prompt = None
            self._final(port, [], "OK")
            self.log.info("send cancelled with ESC")
        else:
            if s.echo:
                self.write_port(port, bytes([b]))
            if prompt.kind == "text" and b == _CR:
                prompt.buf.append(0x0A)
                self.write_port(port, b"\r\n> ")
            elif len(prompt.buf) < _MAX_PROMPT:
                prompt.buf.append(b)

    def _on_line(self, port: Port, raw: bytes) -> None:
        text = raw.decode("latin-1").strip()
        at = text.upper().find("AT")
        if at < 0:
            return  # no AT prefix: a real modem ignores the line
        line = text[at:]
        self._commands.append(line)
        self.log.debug("<- %s", _mask_secrets(line))
        if self.intercept_line(port, line):
            return
        info: list[str] = []
        try:
            cmds = _parse_commands(line[2:])
            for i, cmd in enumerate(cmds):
                result = self._execute(port, cmd)
                if isinstance(result, _Prompt):
                    if i != len(cmds) - 1:
                        raise _AtError("plain")
                    if info:
                        self.write_port(port, self._lines(info))
                    self._session(port).prompt = result
                    self.write_port(port, b"\r\n> ")
                    return
                if result:
                    info.extend(result)
        except _AtError as err:
            self._final(port, info, self._error_line(self._session(port), err))
        except Exception:  # a handler bug must not kill the port
            self.log.exception("command %r crashed the simulator handler", _mask_secrets(line))
            self._final(port, info, "ERROR")
        else:
            if not self._session(port).busy:  # else a reset or power-down answered already
                self._final(port, info, "OK")
        self._after_command()

    def _final(self, port: Port, info: list[str], final: str) -> None:
        data = (self._lines(info) if info else b"") + self._lines([final])
        self.write_port(port, data)
        s = self._session(port)
        if not s.busy and s.prompt is None and s.held_urcs:
            for urc in s.held_urcs:
                self.write_port(port, urc)
            s.held_urcs.clear()

    def _after_command(self) -> None:
        """Work a command leaves for after its OK (URCs must follow the final code)."""
        for action in self._deferred:
            action()
        self._deferred.clear()

    def _error_line(self, session: _Session, err: _AtError) -> str:
        if err.kind == "unsupported":
            return self._persona.unsupported
        if err.kind == "plain" or session.cmee == 0:
            return "ERROR"
        prefix = "+CME ERROR: " if err.kind == "cme" else "+CMS ERROR: "
        if session.cmee == 2:
            table = _CME_TEXT if err.kind == "cme" else _CMS_TEXT
            return prefix + table.get(err.code, str(err.code))
        return prefix + str(err.code)

    # ------------------------------------------------------------------ sending
    def _finish_send(self, port: Port, prompt: _Prompt) -> None:
        if prompt.kind == "text":
            body = prompt.buf.decode("latin-1")
            to, text, pdu_hex, concat = prompt.to, body, "", None
        else:
            pdu_hex = "".join(prompt.buf.decode("latin-1").split()).upper()
            try:
                if not re.fullmatch(r"(?:[0-9A-F]{2})+", pdu_hex):
                    raise _AtError("cms", 304)
                if _tpdu_length(pdu_hex) != prompt.length:
                    self.log.info("PDU has %d TPDU octets, AT+CMGS said %d", _tpdu_length(pdu_hex), prompt.length)
                    raise _AtError("cms", 304)
                try:
                    submit = decode(pdu_hex, has_smsc=True)
                except PduError as exc:
                    self.log.info("undecodable PDU %s: %s", pdu_hex, exc)
                    raise _AtError("cms", 304) from exc
                if not isinstance(submit, Submit):
                    raise _AtError("cms", 304)
            except _AtError as err:
                self._final(port, [], self._error_line(self._session(port), err))
                return
            to, text, concat = submit.to, submit.text, submit.concat
        code = self.send_failure(to)
        if code is not None:
            self.log.info("send to %s failed on request with CMS %d", mask(to), code)
            self._answer_later(port, [], self._error_line(self._session(port), _AtError("cms", code)))
            return
        if not self._registered():
            self.log.info("send to %s refused: no network", mask(to))
            self._answer_later(port, [], self._error_line(self._session(port), _AtError("cms", 331)))
            return
        mr = self._mr
        self._mr = (self._mr + 1) % 256
        part, total, ref = (concat[2], concat[1], concat[0]) if concat else (1, 1, None)
        record = SentRecord(
            time=time.monotonic(), wall_time=time.time(), mr=mr, to=to, text=text,
            part=part, total=total, ref=ref, pdu_hex=pdu_hex, modem=self.name,
        )
        self._sent.append(record)
        self.log.info("sent MR %d to %s part %d/%d (%d characters)", mr, mask(to), part, total, len(text))
        self._answer_later(port, [f"+CMGS: {mr}"], "OK")

    def _answer_later(self, port: Port, info: list[str], final: str) -> None:
        if self.latency_s <= 0:
            self._final(port, info, final)
            return
        self._session(port).busy = True

        def answer() -> None:
            self._session(port).busy = False
            self._final(port, info, final)
            self._process_input(port)

        self.schedule(self.latency_s, answer)

    # ------------------------------------------------------------------ storage

    @property
    def held_by_network(self) -> int:
        """Parts the network holds because the receive storage was full."""
        with self.lock:
            return len(self._held)

    def set_storage_capacity(self, capacity: int, mem: str | None = None) -> None:
        """Make storage ``mem`` (every memory with ``None``) hold ``capacity`` messages.

        Shrinking below what is stored keeps the stored messages (they stay readable);
        growing lets the network deliver what it held.
        """
        with self.lock:
            if capacity < 1:
                raise SimulatorError(f"a storage holds at least 1 message, not {capacity}")
            for name in [mem.upper()] if mem else list(self._capacity):
                if name not in self._capacity:
                    raise SimulatorError(f"{self.name} has no {name!r} storage; it has {', '.join(self._capacity)}")
                self._capacity[name] = capacity
                self._index_limit[name] = max(self._index_limit[name], capacity)
            self._release_held()
            self.flush_all()

    def storage_full(self, mem: str | None = None) -> bool:
        """Whether ``mem`` (default: the receive storage) has no free slot."""
        with self.lock:
            name = mem.upper() if mem else self._mem[2]
            return len(self._storage[name]) >= self._capacity[name]

    def _store(self, mem: str, pdu: str, kind: str) -> int | None:
        slots = self._storage[mem]
        if len(slots) >= self._capacity[mem]:
            return None
        first = self._persona.first_index
        for index in range(first, first + self._index_limit[mem]):
            if index not in slots:
                slots[index] = StoredMessage(mem, index, 0, pdu, kind)
                if len(slots) >= self._capacity[mem]:
                    self._announce_full(mem)
                return index
        return None

    def _announce_full(self, mem: str) -> None:
        self.log.warning("%s storage full (%d messages)", mem, self._capacity[mem])
        self._urc([self._persona.storage_full_urc.format(mem=mem)])

    def _hold(self, pdu: str, kind: str) -> None:
        mem = self._mem[2]
        if not self._held:
            self._announce_full(mem)
        self._held.append((pdu, kind))
        self.log.info("%s storage full: the network holds %d part(s) for later", mem, len(self._held))

    def _release_held(self) -> None:
        """The network retries what it held, oldest first, while there is room."""
        mem = self._mem[2]
        while self._held:
            pdu, kind = self._held[0]
            index = self._store(mem, pdu, kind)
            if index is None:
                return
            self._held.popleft()
            self._indication([f'+{"CMTI" if kind == "deliver" else "CDSI"}: "{mem}",{index}'])

    def _index_arg(self, text: str, mem: str) -> int:
        try:
            index = int(text)
        except ValueError:
            raise _AtError("cms", 321) from None
        first = self._persona.first_index
        if not first <= index < first + self._index_limit[mem]:
            raise _AtError("cms", 321)
        return index

    # ------------------------------------------------------------------ commands

    _IDENT_COMMANDS = frozenset({"", "E", "Z", "&F", "I", "V", "Q", "+CMEE", "+CGMI", "+GMI",
                                 "+CGMM", "+GMM", "+CGMR", "+GMR", "+CGSN", "+GSN"})
    _NEEDS_SIM_CMS = frozenset({"+CPMS", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CSCA", "+CNMI"})
    _NEEDS_SIM_CME = frozenset({"+CIMI", "+CNUM", "+CUSD"})
    def _execute(self, port: Port, cmd: _Cmd) -> list[str] | _Prompt:
        name = cmd.name
        if port.role != "at" and name not in self._IDENT_COMMANDS:
            raise _AtError("unsupported")
        if self._sim_state != "READY" and cmd.form in ("exec", "set", "read"):
            if name in self._NEEDS_SIM_CMS:
                raise _AtError("cms", 311 if self._sim_state == "SIM PIN" else 316)
            if name in self._NEEDS_SIM_CME:
                raise _AtError("cme", 11 if self._sim_state == "SIM PIN" else 12)
        handler = self._handlers().get(name)
        if handler is None:
            if name == self._persona.iccid_command.rstrip("?") and cmd.form in ("exec", "read"):
                if self._persona.iccid_command.endswith("?") != (cmd.form == "read"):
                    raise _AtError("unsupported")
                return [self._persona.iccid_prefix + self.iccid]
            if name == "+CEREG" and self._persona.has_cereg:
                return self._cmd_reg(port, cmd)
            if name == "^CURC" and self._persona.rssi_urc:
                return self._cmd_curc(port, cmd)
            if name == "+QPOWD" and self._persona.can_power_down:
                return self._cmd_qpowd(port, cmd)
            raise _AtError("unsupported")
        return handler(port, cmd)

    def _handlers(self) -> dict[str, Callable[[Port, _Cmd], list[str] | _Prompt]]:
        return {
            "E": self._cmd_echo, "Z": self._cmd_reset_profile, "&F": self._cmd_reset_profile,
            "&W": self._cmd_ok, "V": self._cmd_v, "Q": self._cmd_ok, "H": self._cmd_ok, "X": self._cmd_ok,
            "I": self._cmd_ati, "S0": self._cmd_sreg, "S3": self._cmd_sreg, "S4": self._cmd_sreg,
            "+CMEE": self._cmd_cmee, "+CMGF": self._cmd_cmgf, "+CSCS": self._cmd_cscs,
            "+CPIN": self._cmd_cpin, "+CGMI": self._cmd_cgmi, "+GMI": self._cmd_cgmi,
            "+CGMM": self._cmd_cgmm, "+GMM": self._cmd_cgmm, "+CGMR": self._cmd_cgmr,
            "+GMR": self._cmd_cgmr, "+CGSN": self._cmd_cgsn, "+GSN": self._cmd_cgsn,
            "+CIMI": self._cmd_cimi, "+CNUM": self._cmd_cnum, "+CSQ": self._cmd_csq,
            "+CREG": self._cmd_reg, "+CGREG": self._cmd_reg, "+COPS": self._cmd_cops,
            "+CSCA": self._cmd_csca, "+CPMS": self._cmd_cpms, "+CNMI": self._cmd_cnmi,
            "+CSMS": self._cmd_csms, "+CMGL": self._cmd_cmgl, "+CMGR": self._cmd_cmgr,
            "+CMGD": self._cmd_cmgd, "+CMGS": self._cmd_cmgs, "+CFUN": self._cmd_cfun,
            "+CUSD": self._cmd_cusd, "+CNMA": self._cmd_cnma, "+CSMP": self._cmd_ok,
            "+CSDH": self._cmd_ok, "+IPR": self._cmd_ipr, "+CLIP": self._cmd_ok,
        }

    @staticmethod
    def _int_arg(cmd: _Cmd, i: int, allowed: Iterable[int] | None = None, *, default: int | None = None) -> int:
        try:
            raw = cmd.args[i]
        except IndexError:
            raw = ""
        if raw == "" and default is not None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _AtError("cme", 50) from None
        if allowed is not None and value not in allowed:
            raise _AtError("cme", 50)
        return value

    def _cmd_ok(self, port: Port, cmd: _Cmd) -> list[str]:
        return []

    def _cmd_echo(self, port: Port, cmd: _Cmd) -> list[str]:
        value = self._int_arg(cmd, 0, (0, 1), default=0)
        self._session(port).echo = value == 1
        return []

    def _cmd_v(self, port: Port, cmd: _Cmd) -> list[str]:
        if self._int_arg(cmd, 0, (0, 1), default=0) != 1:
            raise _AtError("plain")  # numeric result codes are not simulated
        return []

    def _cmd_sreg(self, port: Port, cmd: _Cmd) -> list[str]:
        defaults = {"S0": "000", "S3": "013", "S4": "010"}
        return [defaults[cmd.name]] if cmd.form == "read" else []

    def _cmd_reset_profile(self, port: Port, cmd: _Cmd) -> list[str]:
        s = self._session(port)
        s.echo, s.cmee, s.cmgf, s.cscs = True, 0, 0, "IRA"
        return []

    def _cmd_ati(self, port: Port, cmd: _Cmd) -> list[str]:
        return [line.format(imei=self.imei) for line in self._persona.ati_lines]

    def _cmd_cmee(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"+CMEE: {self._session(port).cmee}"]
        if cmd.form == "test":
            return ["+CMEE: (0-2)"]
        self._session(port).cmee = self._int_arg(cmd, 0, (0, 1, 2), default=0)
        return []

    def _cmd_cmgf(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"+CMGF: {self._session(port).cmgf}"]
        if cmd.form == "test":
            return ["+CMGF: (0,1)"]
        self._session(port).cmgf = self._int_arg(cmd, 0, (0, 1), default=0)
        return []

    def _cmd_cscs(self, port: Port, cmd: _Cmd) -> list[str]:
        charsets = ("IRA", "GSM", "UCS2", "HEX", "PCCP936")
        if cmd.form == "read":
            return [f'+CSCS: "{self._session(port).cscs}"']
        if cmd.form == "test":
            return ["+CSCS: (" + ",".join(f'"{c}"' for c in charsets) + ")"]
        if cmd.form != "set" or cmd.args[0].upper() not in charsets:
            raise _AtError("cme", 4)
        self._session(port).cscs = cmd.args[0].upper()
        return []

    def _cmd_cpin(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"+CPIN: {self._sim_state}"]
        if cmd.form == "test":
            return []
        if cmd.form != "set":
            raise _AtError("plain")
        if self._sim_state == "READY":
            raise _AtError("cme", 3)
        before = self._reg_stat()
        if self._sim_state == "SIM PIN":
            if cmd.args[0] == self._pin:
                self._unlock(before)
                return []
            self._pin_tries -= 1
            if self._pin_tries <= 0:
                self._sim_state = "SIM PUK"
                self.log.warning("three wrong PINs: SIM locked, PUK needed")
            raise _AtError("cme", 16)
        # SIM PUK: AT+CPIN="<puk>","<new pin>"
        if len(cmd.args) < 2:
            raise _AtError("cme", 12)
        if cmd.args[0] != self.puk:
            self._puk_tries -= 1
            raise _AtError("cme", 16)
        self._pin = cmd.args[1]
        self._unlock(before)
        return []

    def _unlock(self, before: int) -> None:
        self._sim_state = "READY"
        self._pin_tries = 3
        self._puk_tries = 10
        self.log.info("SIM unlocked")
        self._deferred.append(lambda: (self._announce_sim_ready(), self._announce_registration(before)))

    def _cmd_cgmi(self, port: Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.manufacturer]

    def _cmd_cgmm(self, port: Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.model]

    def _cmd_cgmr(self, port: Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.firmware]

    def _cmd_cgsn(self, port: Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self.imei]

    def _cmd_cimi(self, port: Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self.imsi]

    def _cmd_cnum(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test" or not self.own_number:
            return []
        toa = 145 if self.own_number.startswith("+") else 129
        return [f'+CNUM: "","{self.own_number}",{toa}']

    def _cmd_csq(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        if self._cfun != 1:
            return ["+CSQ: 99,99"]
        return [f"+CSQ: {self._rssi},{99 if self._rssi == 99 else 0}"]

    def _cmd_reg(self, port: Port, cmd: _Cmd) -> list[str]:
        name = cmd.name
        if cmd.form == "test":
            return [f"{name}: (0-2)"]
        if cmd.form == "set":
            self._reg_modes[name] = self._int_arg(cmd, 0, (0, 1, 2), default=0)
            return []
        mode, stat = self._reg_modes[name], self._reg_stat()
        line = f"{name}: {mode},{stat}"
        if mode == 2 and stat == 1:
            line += ',"1A2B","00C3D4E5"'
            if self._persona.act is not None:
                line += f",{self._persona.act}"
        return [line]

    def _cmd_cops(self, port: Port, cmd: _Cmd) -> list[str]:
        act = self._persona.act
        if cmd.form == "test":
            suffix = f",{act}" if act is not None else ""
            return [f'+COPS: (2,"{self.operator}","{self.operator}","00101"{suffix}),,(0-4),(0-2)']
        if cmd.form == "read":
            if not self._registered():
                return ["+COPS: 0"]
            return [f'+COPS: 0,0,"{self.operator}"' + (f",{act}" if act is not None else "")]
        return []

    def _cmd_csca(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            toa = 145 if self.smsc.startswith("+") else 129
            return [f'+CSCA: "{self.smsc}",{toa}']
        if cmd.form == "set" and cmd.args[0]:
            self.smsc = cmd.args[0]
            return []
        if cmd.form == "test":
            return []
        raise _AtError("cms", 304)

    def _cpms_counts(self, mem: str) -> str:
        return f"{len(self._storage[mem])},{self._capacity[mem]}"

    def _cmd_cpms(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            mems = "(" + ",".join(f'"{m}"' for m in self._storage) + ")"
            return [f"+CPMS: {mems},{mems},{mems}"]
        if cmd.form == "read":
            return ["+CPMS: " + ",".join(f'"{m}",{self._cpms_counts(m)}' for m in self._mem)]
        if cmd.form != "set" or not 1 <= len(cmd.args) <= 3:
            raise _AtError("cms", 302)
        wanted = [a.upper() for a in cmd.args]
        if any(m not in self._storage for m in wanted):
            raise _AtError("cms", 302)
        for i, mem in enumerate(wanted):
            self._mem[i] = mem
        return ["+CPMS: " + ",".join(self._cpms_counts(m) for m in self._mem)]

    def _cmd_cnmi(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return [self._persona.cnmi.test_response()]
        if cmd.form == "read":
            return ["+CNMI: " + ",".join(str(v) for v in self._cnmi)]
        if cmd.form != "set" or len(cmd.args) > 5:
            raise _AtError("cms", 303)
        values = list(self._cnmi)
        for i, arg in enumerate(cmd.args):
            if arg != "":
                try:
                    values[i] = int(arg)
                except ValueError:
                    raise _AtError("cms", 303) from None
        settings = (values[0], values[1], values[2], values[3], values[4])
        if not self._persona.cnmi.accepts(settings):
            raise _AtError("cms", 303)
        self._cnmi = settings
        if settings[0] != 0 and self._cnmi_buffer:
            buffered, self._cnmi_buffer = self._cnmi_buffer, []
            if settings[4] == 0:
                self._deferred.extend((lambda lines=lines: self._urc(lines)) for lines in buffered)
        return []

    def _cmd_csms(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CSMS: (0,1)"]
        if cmd.form == "read":
            return [f"+CSMS: {self._csms},1,1,1"]
        self._csms = self._int_arg(cmd, 0, (0, 1), default=0)
        return ["+CSMS: 1,1,1"]

    def _require_pdu_mode(self, port: Port) -> None:
        if self._session(port).cmgf != 0:
            raise _AtError("cms", 302)  # text-mode reading is not simulated

    def _cmd_cmgl(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CMGL: (0-4)"]
        self._require_pdu_mode(port)
        stat = self._int_arg(cmd, 0, (0, 1, 2, 3, 4), default=0)
        slots = self._storage[self._mem[0]]
        lines: list[str] = []
        for index, msg in sorted(slots.items()):
            if stat == 4 or msg.stat == stat:
                lines += [f"+CMGL: {index},{msg.stat},,{_tpdu_length(msg.pdu_hex)}", msg.pdu_hex]
                if msg.stat == 0:
                    slots[index] = StoredMessage(msg.storage, index, 1, msg.pdu_hex, msg.kind)
        return lines

    def _cmd_cmgr(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return []
        self._require_pdu_mode(port)
        mem = self._mem[0]
        index = self._index_arg(cmd.args[0] if cmd.args else "", mem)
        msg = self._storage[mem].get(index)
        if msg is None:
            if self._persona.empty_read_error:
                raise _AtError("cms", 321)
            return []
        if msg.stat == 0:
            self._storage[mem][index] = StoredMessage(mem, index, 1, msg.pdu_hex, msg.kind)
        return [f"+CMGR: {msg.stat},,{_tpdu_length(msg.pdu_hex)}", msg.pdu_hex]

    def _cmd_cmgd(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            first = self._persona.first_index
            return [f"+CMGD: ({first}-{first + self._capacity[self._mem[0]] - 1}),(0-4)"]
        if cmd.form != "set":
            raise _AtError("cms", 302)
        mem = self._mem[0]
        slots = self._storage[mem]
        flag = self._int_arg(cmd, 1, (0, 1, 2, 3, 4), default=0) if len(cmd.args) > 1 else 0
        if flag == 0:
            slots.pop(self._index_arg(cmd.args[0], mem), None)
        else:
            doomed = {1: {1}, 2: {1, 3}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}[flag]
            for index in [i for i, m in slots.items() if m.stat in doomed]:
                del slots[index]
        if self._held:
            self._deferred.append(self._release_held)  # after the OK, like any URC
        return []

    def _cmd_cmgs(self, port: Port, cmd: _Cmd) -> list[str] | _Prompt:
        if cmd.form == "test":
            return []
        if cmd.form != "set" or not cmd.args or not cmd.args[0]:
            raise _AtError("plain")
        if self._session(port).cmgf == 1:
            return _Prompt(kind="text", to=cmd.args[0])
        try:
            length = int(cmd.args[0])
        except ValueError:
            raise _AtError("plain") from None
        if not 7 <= length <= 175:
            raise _AtError("cms", 304)
        return _Prompt(kind="pdu", length=length)

    def _cmd_cfun(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CFUN: (0,1,4),(0,1)"]
        if cmd.form == "read":
            return [f"+CFUN: {self._cfun}"]
        fun = self._int_arg(cmd, 0, (0, 1, 4), default=1)
        reset = self._int_arg(cmd, 1, (0, 1), default=0) if len(cmd.args) > 1 else 0
        if reset:
            self._reboot(port)
            return []
        before = self._reg_stat()
        self._cfun = fun
        self._deferred.append(lambda: self._announce_registration(before))
        return []

    def _reboot(self, port: Port) -> None:
        """``OK`` now, then deaf for :attr:`reset_delay_s`, then boot lines (same ttys)."""
        self._final(port, [], "OK")
        self.flush_port(port)
        self._session(port).busy = True
        self.deafen(self.reset_delay_s)
        self.log.info("rebooting (AT+CFUN=1,1)")

        def boot() -> None:
            self.hear()
            self._power_up_state()
            self._boot()

        self.schedule(self.reset_delay_s, boot)

    def _cmd_qpowd(self, port: Port, cmd: _Cmd) -> list[str]:
        self._final(port, [], "OK")
        self._session(port).busy = True
        self.log.info("powering down (AT+QPOWD)")

        def power_down() -> None:
            self.write_port(port, self._lines(["POWERED DOWN"]), force=True)
            self.flush_port(port)
            self.deafen(float("inf"))
            # USB drops off a little later; closing at once would discard the unread line.
            self.schedule(0.2, self.close_ports)

        self.schedule(0.02, power_down)
        return []

    def _cmd_curc(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"^CURC: {int(self._curc)}"]
        if cmd.form == "set":
            self._curc = self._int_arg(cmd, 0, (0, 1)) == 1
        return []

    def _cmd_ipr(self, port: Port, cmd: _Cmd) -> list[str]:
        return ["+IPR: 115200"] if cmd.form == "read" else []

    def _cmd_cnma(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CNMA: (0-2)"]
        if self._cnma_pending <= 0:
            raise _AtError("cms", 340)
        self._cnma_pending -= 1
        return []

    def _cmd_cusd(self, port: Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CUSD: (0,1,2)"]
        if cmd.form == "read":
            return ["+CUSD: 1"]
        n = self._int_arg(cmd, 0, (0, 1, 2), default=0)
        if n != 1 or len(cmd.args) < 2:
            return []
        if not self._registered():
            raise _AtError("cme", 30)
        code = self._ussd_code(cmd.args[1])
        reply = self._ussd.get(code)
        self.schedule(self.ussd_delay_s, lambda: self._urc([self._ussd_line(reply)]))
        return []

    def _ussd_code(self, raw: str) -> str:
        """The USSD string asked for; Huawei sticks also take it GSM-7 packed in hex."""
        if self._persona.ussd_encoding != "gsm7-packed" or raw in self._ussd:
            return raw
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", raw):
            return raw
        try:
            septets = len(raw) * 4 // 7
            text = gsm7_unpack(bytes.fromhex(raw), septets)
        except (PduError, TypeError, ValueError):
            return raw
        text = text.rstrip("@\r")
        return text if text in self._ussd else raw

    def _ussd_line(self, reply: str | None) -> str:
        if reply is None:
            return "+CUSD: 4"
        encoding = self._persona.ussd_encoding
        if encoding == "gsm7-packed":
            return f'+CUSD: 0,"{gsm7_pack(reply).hex().upper()}",15'
        if encoding == "ucs2":
            return f'+CUSD: 0,"{reply.encode("utf-16-be").hex().upper()}",72'
        return f'+CUSD: 0,"{reply}",15'
