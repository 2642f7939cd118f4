"""A pty modem simulator: a real serial backend that answers AT commands like a GSM modem.

Each :class:`SimulatedModem` opens real pseudo-terminals (one per tty of the simulated USB
device), puts them in raw mode and serves their master side from one thread. Clients open
``sim.path`` with pyserial exactly as they would open ``/dev/ttyUSB2``; nothing in the
client knows it talks to a simulator. The simulator decodes every submitted PDU with
:mod:`appliance.pdu`, logs it in :attr:`SimulatedModem.sent`, and injects faults on request
(CMS errors, silence, unplug/replug, garbage, no network, SIM PIN, latency).

Behaviour common to all personas (see :mod:`appliance.modem.personas` for the differences):

* Commands end at CR (LF and CRLF work too); characters before ``AT`` on a line are ignored,
  and a line without ``AT`` gets no answer. Several commands may share a line (``;``).
* Echo is on after power-up until ``ATE0``; the echo is the raw bytes received.
* Responses are framed ``\\r\\n<line>\\r\\n``; the final code is ``OK``, ``ERROR``,
  ``+CME ERROR: <n>`` or ``+CMS ERROR: <n>``. With ``AT+CMEE=0`` every error is a plain
  ``ERROR``; ``AT+CMEE=1`` gives numbers, ``AT+CMEE=2`` words. Unknown commands answer the
  persona's "unsupported" line whatever CMEE says.
* ``AT+CMGS=<n>`` (PDU mode) answers ``\\r\\n> ``, then reads hex until Ctrl-Z (ESC cancels
  and answers ``OK``). The TPDU length must equal ``n`` and the PDU must decode as an
  SMS-SUBMIT, else ``+CMS ERROR: 304``. Then, in this order: a queued :meth:`fail_sends`
  code, no network (``331``), or success: the TP-MR (a per-modem counter wrapping at 256) is
  assigned, the submission is logged at once, and ``+CMGS: <mr>`` + ``OK`` follow after
  :attr:`latency_s`. Input that arrives meanwhile waits; URCs are held until the answer.
  Text mode (``AT+CMGF=1``) sends work too (``AT+CMGS="<da>"``); text-mode *reading*
  (``AT+CMGL``/``AT+CMGR``) answers ``+CMS ERROR: 302``.
* Inbound messages go to the CNMI "receive" storage (``AT+CPMS`` third parameter) and are
  announced with ``+CMTI`` when ``mt`` is 1 or 3, routed as ``+CMT: ,<len>`` when ``mt`` is
  2, stored silently when ``mt`` is 0. CNMI ``mode=0`` buffers indications until a later
  ``AT+CNMI`` with mode 1/2 and ``bfr=0`` flushes them. Status reports: ``ds=1`` → ``+CDS``,
  ``ds=2`` → stored + ``+CDSI``, ``ds=0`` → dropped. After ``AT+CSMS=1`` each routed
  ``+CMT``/``+CDS`` expects ``AT+CNMA`` (otherwise ``AT+CNMA`` answers ``+CMS ERROR: 340``).
* ``AT+CFUN=1,1`` answers ``OK`` then reboots in place (same tty) after
  :attr:`reset_delay_s`: input is dropped meanwhile, then boot lines; echo, CMEE, CNMI and
  the PIN lock are as after power-up; storage and the MR counter are kept.
* :meth:`SimulatedModem.script_reply` makes a command line get a recorded answer (bytes as
  a real modem printed them, URCs and pauses included) instead of the persona's own.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import re
import secrets
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from appliance.modem.logs import modem_logger
from appliance.errors import ApplianceError
from appliance.modem.personas import PERSONAS, Persona
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

__all__ = [
    "PERSONAS",
    "SentRecord",
    "SimulatedModem",
    "SimulatorError",
    "SimulatorPool",
    "StoredMessage",
]

_log = logging.getLogger(__name__)

_CR, _LF, _BS, _CTRL_Z, _ESC = 0x0D, 0x0A, 0x08, 0x1A, 0x1B
_MAX_LINE = 2048
_MAX_PROMPT = 4096
_MAX_OUT = 1 << 20

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

# Process-wide counters: a replugged device gets a new ttyUSB<k> name, as under udev.
_counter_lock = threading.Lock()
_tty_numbers = itertools.count()
_modem_numbers = itertools.count(1)
_issued_ids: set[str] = set()


def _next_tty_number() -> int:
    with _counter_lock:
        return next(_tty_numbers)


class SimulatorError(ApplianceError):
    """The simulator was asked something it cannot do (not started, unplugged, no such MR)."""


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


@dataclass(slots=True)
class _Script:
    """A recorded answer: text or bytes to write, floats are pauses in seconds."""

    chunks: tuple[str | bytes | float, ...]
    times: int | None


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


@dataclass(slots=True)
class _Port:
    index: int
    role: str  # "at", "ident", "silent"
    master: int = -1
    slave: int = -1
    device: str = ""
    tty_link: str | None = None
    by_id_link: str | None = None
    out: bytearray = field(default_factory=bytearray)
    session: _Session = field(default_factory=_Session)

    @property
    def open(self) -> bool:
        return self.master >= 0

    @property
    def path(self) -> str:
        return self.tty_link or self.device


def _luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _unique_id(make: Callable[[], str]) -> str:
    with _counter_lock:
        while True:
            value = make()
            if value not in _issued_ids:
                _issued_ids.add(value)
                return value


def _random_digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


def _random_imei(tac: str) -> str:
    return _unique_id(lambda: (body := tac + _random_digits(6)) + _luhn_check_digit(body))


def _random_iccid() -> str:
    return _unique_id(lambda: (body := "8900101" + _random_digits(12)) + _luhn_check_digit(body))


def _random_imsi() -> str:
    return _unique_id(lambda: "00101" + _random_digits(10))


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


class SimulatedModem:
    """One simulated USB modem on real pseudo-terminals.

    ``persona`` picks the model (:data:`PERSONAS`). Identity fields default to random but
    valid-looking values (Luhn-checked IMEI/ICCID), distinct within the process. With
    ``link_dir`` every tty also gets a ``ttyUSB<k>`` symlink (a new ``k`` at each replug, as
    udev does) and a by-id symlink ``usb-<vendor>_<product>_<imei>-if0<i>-port0`` (stable
    across replugs); :attr:`path` is then the ``ttyUSB<k>`` link of the AT port.
    ``extra_ports`` adds that many silent ttys after the persona's own.
    """

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
        number = next(_modem_numbers)
        self.name: str = name or f"{persona}-{number}"
        self.imei: str = imei or _random_imei(self._persona.tac)
        self.iccid: str = iccid or _random_iccid()
        self.imsi: str = imsi or _random_imsi()
        self.own_number = own_number
        self.latency_s = latency_s
        self.smsc = smsc
        self.operator = operator
        self.puk = "12345678"
        self.rssi_interval_s: float | None = 5.0 if self._persona.rssi_urc else None
        """Period of Huawei ``^RSSI`` URCs (``None``: only on :meth:`emit_rssi`)."""
        self._link_dir = Path(link_dir) if link_dir is not None else None
        self._rssi = rssi
        self._pin = pin
        self._roles = self._persona.port_roles + ("silent",) * (extra_ports or 0)
        self._log = modem_logger(_log, self.name)

        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._started = False
        self._stopping = False
        self._plugged = False
        self._ports: list[_Port] = []
        self._timers: list[tuple[float, int, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._gen = 0
        self._hang_until = 0.0
        self._deaf_until = 0.0

        # Modem and SIM state that survives power cycles.
        self._network = True
        self._mr = 0
        self._concat_ref = secrets.randbelow(255) + 1
        self._fail_codes: deque[int] = deque()
        self._sent: list[SentRecord] = []
        self._commands: deque[str] = deque(maxlen=2000)
        self._ussd: dict[str, str] = dict(self._persona.default_ussd)
        self._storage: dict[str, dict[int, StoredMessage]] = {mem: {} for mem, _ in self._persona.storage_sizes}
        self._capacity = dict(self._persona.storage_sizes)
        self._deferred: list[Callable[[], None]] = []
        self._scripts: dict[str, _Script] = {}
        self._power_up_state()

    # ------------------------------------------------------------------ public surface

    @property
    def persona(self) -> str:
        return self._persona.key

    @property
    def path(self) -> str:
        """The AT port clients open (still given after :meth:`unplug`/:meth:`stop`, so
        tests can check that it vanished)."""
        return self._port_at().path

    @property
    def paths(self) -> list[str]:
        """Every tty of the device, in interface order; :attr:`path` is one of them."""
        self._port_at()
        return [p.path for p in self._ports]

    @property
    def by_id_path(self) -> str | None:
        """The by-id style link of the AT port (``None`` without ``link_dir``)."""
        return self._port_at().by_id_link

    @property
    def plugged(self) -> bool:
        return self._plugged

    @property
    def sent(self) -> list[SentRecord]:
        with self._lock:
            return list(self._sent)

    @property
    def storage(self) -> list[StoredMessage]:
        with self._lock:
            return [m for mem in self._storage.values() for _, m in sorted(mem.items())]

    @property
    def commands(self) -> list[str]:
        """AT command lines received on any tty (the last 2000), as written by the client."""
        with self._lock:
            return list(self._commands)

    @property
    def next_mr(self) -> int:
        """The TP-MR the next accepted send gets (settable, e.g. to test wrap-around)."""
        return self._mr

    @next_mr.setter
    def next_mr(self, value: int) -> None:
        with self._lock:
            self._mr = value % 256

    @property
    def rssi(self) -> int:
        return self._rssi

    def start(self) -> SimulatedModem:
        """Open the ptys, send the boot lines and start serving. Returns ``self``."""
        with self._lock:
            if self._started:
                raise SimulatorError(f"simulated modem {self.name} is already started")
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._started = True
            self._stopping = False
            self._plug(new_path=True)
            self._thread = threading.Thread(target=self._serve, name=f"simulator-{self.name}", daemon=True)
            self._thread.start()
        self._log.info("started (%s) on %s", self.persona, self.path)
        return self

    def stop(self) -> None:
        """Stop serving, close the ptys and remove the links. Safe to call twice."""
        with self._lock:
            if not self._started or self._stopping:
                return
            self._stopping = True
            self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            self._close_ports()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1
            self._started = False
        self._log.info("stopped")

    def __enter__(self) -> SimulatedModem:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._ports[self._persona.at_port].path if self._ports else "not started"
        return f"<SimulatedModem {self.name} {self.persona} imei={self.imei} at {where}>"

    def fail_sends(self, cms_code: int, count: int = 1) -> None:
        """Answer the next ``count`` sends (after Ctrl-Z) with ``+CMS ERROR: cms_code``."""
        with self._lock:
            self._fail_codes.extend([cms_code] * count)

    def hang(self, seconds: float) -> None:
        """Go silent: read and drop everything, answer nothing (URCs included) for ``seconds``."""
        with self._lock:
            self._hang_until = time.monotonic() + seconds
            for port in self._ports:
                port.session.line.clear()
                port.session.pending.clear()
                port.out.clear()
            self._log.info("hanging for %.2f s", seconds)

    def unplug(self) -> None:
        """Pull the device: the ptys close (clients get EIO) and their paths and links vanish."""
        with self._lock:
            self._require_started()
            if not self._plugged:
                return
            self._close_ports()
            self._wake()
        self._log.info("unplugged")

    def replug(self, new_path: bool = True) -> None:
        """Plug the device back in: fresh ptys, boot lines, state as after power-up.

        Storage, the MR counter and the send log are kept. With ``new_path`` the ``ttyUSB``
        links get new numbers (without ``link_dir`` the pty path is whatever the kernel
        gives, usually a new one); the by-id link keeps its name.
        """
        with self._lock:
            self._require_started()
            if self._plugged:
                self._close_ports()
            self._plug(new_path=new_path)
            self._wake()
        self._log.info("replugged on %s", self.path)

    def inject_garbage(self, data: bytes) -> None:
        """Write raw bytes to the AT port now (ignores hang)."""
        with self._lock:
            port = self._port_at()
            if not port.open:
                raise SimulatorError(f"simulated modem {self.name} is unplugged")
            self._send(port, data, force=True)
            self._flush(port)

    def set_network(self, registered: bool) -> None:
        """Register or deregister (``+CREG: 0,2``, empty ``+COPS``, sends → CMS 331)."""
        with self._lock:
            before = self._reg_stat()
            self._network = registered
            self._announce_registration(before)
            self._flush_all()

    def set_signal(self, rssi: int) -> None:
        """Change the ``AT+CSQ`` rssi (0–31, 99 unknown); Huawei announces it with ``^RSSI``."""
        with self._lock:
            self._rssi = rssi
            if self._persona.rssi_urc and self._curc:
                self._urc([f"^RSSI: {rssi}"])
                self._flush_all()

    def emit_rssi(self) -> None:
        """Send a ``^RSSI: <n>`` URC now (Huawei-style; any persona)."""
        with self._lock:
            self._urc([f"^RSSI: {self._rssi}"])
            self._flush_all()

    def require_pin(self, pin: str | None) -> None:
        """The SIM now needs ``pin`` (locked at once), or no PIN at all with ``None``."""
        with self._lock:
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
            self._flush_all()

    def script_reply(
        self,
        command: str,
        reply: str | bytes | Sequence[str | bytes | float],
        *,
        times: int | None = None,
    ) -> None:
        """Answer the command line ``command`` with a recorded ``reply`` instead of the
        persona's own answer (``times`` times, or always with ``None``).

        ``command`` is compared with the received line from its ``AT`` on, ignoring case
        and blanks at the ends. ``reply`` is written exactly as given — ``\\r\\n`` framing,
        echo, URCs and the final result code included, as the modem printed them; a
        sequence mixes text (or bytes) with pauses in seconds, e.g. ``["\\r\\nOK\\r\\n", 0.1,
        "\\r\\n+CUSD: 0,\\"Hello\\",15\\r\\n"]``. Text is sent as UTF-8. State is not touched:
        a scripted ``AT+CMGD=1`` deletes nothing.
        """
        chunks: tuple[str | bytes | float, ...] = (
            (reply,) if isinstance(reply, (str, bytes)) else tuple(reply))
        if times is not None and times < 1:
            raise SimulatorError(f"a scripted reply must be played at least once, not {times}")
        with self._lock:
            self._scripts[command.strip().upper()] = _Script(chunks, times)

    def clear_scripts(self) -> None:
        """Forget every :meth:`script_reply`: the persona answers again."""
        with self._lock:
            self._scripts.clear()

    def set_ussd_reply(self, code: str, text: str) -> None:
        """Answer ``AT+CUSD=1,"<code>"`` with ``text`` (encoded the persona's way)."""
        with self._lock:
            self._ussd[code] = text

    def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        direct: bool | None = None,
        timestamp: Any = None,
        flash: bool = False,
    ) -> list[int]:
        """Receive an SMS from ``sender`` (several SMS-DELIVER parts when long).

        Parts are stored in the receive storage and announced per the CNMI setting, or
        routed as ``+CMT`` when CNMI says ``mt=2`` or ``direct`` is True (``direct=False``
        forces store + ``+CMTI``). Returns the storage indexes (``[]`` when routed directly).
        """
        with self._lock:
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
                index = self._store(mem, pdu, "deliver")
                if index is None:
                    continue
                indexes.append(index)
                if self._cnmi[1] in (1, 2, 3) or direct is False:
                    self._indication([f'+CMTI: "{mem}",{index}'])
            self._flush_all()
            self._log.info("delivered %d part(s) from %s (%s)", len(pdus), mask(sender), "direct" if route_direct else f"stored {indexes}")
            return indexes

    def send_status_report(self, reference: int, *, status: int = 0, recipient: str | None = None) -> None:
        """Report on the send with TP-MR ``reference`` (``+CDS``, or stored + ``+CDSI``).

        ``recipient`` defaults to the ``to`` of the latest logged send with that MR.
        """
        with self._lock:
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
                index = self._store(mem, pdu, "status-report")
                if index is not None:
                    self._indication([f'+CDSI: "{mem}",{index}'])
            else:
                self._log.info("status report for MR %d dropped (CNMI ds=0)", reference)
            self._flush_all()

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
        for port in self._ports:
            port.session = _Session()

    def _require_started(self) -> None:
        if not self._started:
            raise SimulatorError(f"simulated modem {self.name} is not started")

    def _port_at(self) -> _Port:
        if not self._ports:
            raise SimulatorError(f"simulated modem {self.name} is not started")
        return self._ports[self._persona.at_port]

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

    # ------------------------------------------------------------------ ptys and links

    def _plug(self, *, new_path: bool) -> None:
        old = self._ports
        ports: list[_Port] = []
        try:
            for i, role in enumerate(self._roles):
                port = _Port(index=i, role=role)
                ports.append(port)
                port.master, port.slave = os.openpty()
                tty.setraw(port.slave)
                os.set_blocking(port.master, False)
                port.device = os.ttyname(port.slave)
                if self._link_dir is not None:
                    tty_name = None
                    if not new_path and i < len(old) and old[i].tty_link:
                        tty_name = Path(old[i].tty_link).name
                    tty_name = tty_name or f"ttyUSB{_next_tty_number()}"
                    by_id = f"usb-{self._persona.usb_vendor}_{self._persona.usb_product}_{self.imei}-if{i:02d}-port0"
                    port.tty_link = self._link(tty_name, port.device)
                    port.by_id_link = self._link(by_id, port.device)
        except OSError as exc:
            for port in ports:
                self._close_port(port)
            raise SimulatorError(f"{self.name}: cannot create a pseudo-terminal: {exc}") from exc
        self._ports = ports
        self._plugged = True
        self._gen += 1
        self._hang_until = 0.0
        self._deaf_until = 0.0
        self._power_up_state()
        self._boot()

    def _link(self, name: str, target: str) -> str:
        assert self._link_dir is not None
        self._link_dir.mkdir(parents=True, exist_ok=True)
        link = self._link_dir / name
        tmp = self._link_dir / f".{name}.{os.getpid()}.tmp"
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        os.symlink(target, tmp)
        os.replace(tmp, link)
        return str(link)

    def _close_port(self, port: _Port) -> None:
        for link in (port.tty_link, port.by_id_link):
            if link:
                try:
                    if os.path.islink(link) and os.readlink(link) == port.device:
                        os.unlink(link)
                except OSError:
                    pass
        for attr in ("master", "slave"):
            fd = getattr(port, attr)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(port, attr, -1)
        port.out.clear()

    def _close_ports(self) -> None:
        for port in self._ports:
            self._close_port(port)
        self._plugged = False
        self._gen += 1  # cancels pending answers and URC timers

    # ------------------------------------------------------------------ output

    def _send(self, port: _Port, data: bytes, *, force: bool = False) -> None:
        if not port.open:
            return
        if not force and time.monotonic() < max(self._hang_until, self._deaf_until):
            return
        port.out += data
        if len(port.out) > _MAX_OUT:  # nobody reads: drop the oldest, like a full UART FIFO
            del port.out[: len(port.out) - _MAX_OUT]

    def _flush(self, port: _Port) -> None:
        while port.out and port.open:
            try:
                n = os.write(port.master, port.out)
            except BlockingIOError:  # the client is not reading: poll() waits for POLLOUT
                if threading.current_thread() is not self._thread:
                    self._wake()
                return
            except OSError as exc:
                self._log.debug("write failed on tty %d: %s", port.index, exc)
                port.out.clear()
                return
            del port.out[:n]

    def _flush_all(self) -> None:
        for port in self._ports:
            self._flush(port)

    def _lines(self, lines: Iterable[str]) -> bytes:
        return ("\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8", "replace")

    def _urc(self, lines: list[str]) -> None:
        """Send an unsolicited result to the AT port (held while a command is in progress)."""
        if not self._plugged:
            return
        port = self._ports[self._persona.at_port]
        data = self._lines(lines)
        if port.session.busy or port.session.prompt is not None:
            port.session.held_urcs.append(data)
        else:
            self._send(port, data)

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
        port = self._ports[p.at_port]
        for line in lines:
            self._send(port, self._lines([line]), force=True)
        self._flush(port)
        self._schedule_rssi()

    def _schedule_rssi(self) -> None:
        if self._persona.rssi_urc and self.rssi_interval_s:
            self._schedule(self.rssi_interval_s, self._rssi_tick)

    def _rssi_tick(self) -> None:
        if self._curc:
            self._urc([f"^RSSI: {self._rssi if self._cfun == 1 else 99}"])
        self._schedule_rssi()

    # ------------------------------------------------------------------ serving thread

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def _schedule(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), self._gen, fn))
        self._wake()

    def _serve(self) -> None:
        while True:
            try:
                if not self._serve_once():
                    return
            except Exception:  # the simulator must outlive any client misbehaviour
                self._log.exception("simulator loop error (continuing)")
                time.sleep(0.01)

    def _serve_once(self) -> bool:
        with self._lock:
            if self._stopping:
                return False
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            for port in self._ports:
                if port.open:
                    poller.register(port.master, select.POLLIN | (select.POLLOUT if port.out else 0))
            timeout_ms: int | None = None
            if self._timers:
                timeout_ms = max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)
        try:
            events = poller.poll(timeout_ms)
        except InterruptedError:
            events = []
        with self._lock:
            if self._stopping:
                return False
            by_fd = {p.master: p for p in self._ports if p.open}
            for fd, ev in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
                    continue
                port = by_fd.get(fd)
                if port is None:  # closed (unplugged) since poll() was set up
                    continue
                if ev & select.POLLOUT:
                    self._flush(port)
                if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
                    try:
                        data = os.read(fd, 4096)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self._log.debug("read failed on tty %d: %s", port.index, exc)
                        time.sleep(0.005)
                        continue
                    if data:
                        self._on_bytes(port, data)
            self._run_timers()
            self._flush_all()
        return True

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, gen, fn = heapq.heappop(self._timers)
            if gen == self._gen and self._plugged:
                fn()

    # ------------------------------------------------------------------ input

    def _on_bytes(self, port: _Port, data: bytes) -> None:
        if port.role == "silent":
            return
        if time.monotonic() < max(self._hang_until, self._deaf_until):
            return
        port.session.pending += data
        self._process_input(port)

    def _process_input(self, port: _Port) -> None:
        s = port.session
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
                self._send(port, bytes([b]))
            if b in (_CR, _LF):
                line = bytes(s.line)
                s.line.clear()
                self._on_line(port, line)
            elif b == _BS:
                if s.line:
                    s.line.pop()
            elif len(s.line) < _MAX_LINE:
                s.line.append(b)

    def _prompt_byte(self, port: _Port, b: int) -> None:
        s = port.session
        prompt = s.prompt
        assert prompt is not None
        if b == _CTRL_Z:
            s.prompt = None
            self._finish_send(port, prompt)
        elif b == _ESC:
            s.prompt = None
            self._final(port, [], "OK")
            self._log.info("send cancelled with ESC")
        else:
            if s.echo:
                self._send(port, bytes([b]))
            if prompt.kind == "text" and b == _CR:
                prompt.buf.append(0x0A)
                self._send(port, b"\r\n> ")
            elif len(prompt.buf) < _MAX_PROMPT:
                prompt.buf.append(b)

    def _on_line(self, port: _Port, raw: bytes) -> None:
        text = raw.decode("latin-1").strip()
        at = text.upper().find("AT")
        if at < 0:
            return  # no AT prefix: a real modem ignores the line
        line = text[at:]
        self._commands.append(line)
        self._log.debug("<- %s", _mask_secrets(line))
        script = self._scripts.get(line.upper())
        if script is not None:
            self._play(port, line.upper(), script)
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
                        self._send(port, self._lines(info))
                    port.session.prompt = result
                    self._send(port, b"\r\n> ")
                    return
                if result:
                    info.extend(result)
        except _AtError as err:
            self._final(port, info, self._error_line(port.session, err))
        except Exception:  # a handler bug must not kill the port
            self._log.exception("command %r crashed the simulator handler", _mask_secrets(line))
            self._final(port, info, "ERROR")
        else:
            if not port.session.busy:  # else a reset or power-down answered already
                self._final(port, info, "OK")
        self._after_command()

    def _play(self, port: _Port, key: str, script: _Script) -> None:
        if script.times is not None:
            script.times -= 1
            if script.times <= 0:
                del self._scripts[key]
        delay = 0.0
        for chunk in script.chunks:
            if isinstance(chunk, (int, float)):
                delay += float(chunk)
                continue
            data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
            if delay <= 0:
                self._send(port, data)
            else:
                self._schedule(delay, lambda data=data: self._send(port, data))

    def _final(self, port: _Port, info: list[str], final: str) -> None:
        data = (self._lines(info) if info else b"") + self._lines([final])
        self._send(port, data)
        s = port.session
        if not s.busy and s.prompt is None and s.held_urcs:
            for urc in s.held_urcs:
                self._send(port, urc)
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

    def _finish_send(self, port: _Port, prompt: _Prompt) -> None:
        if prompt.kind == "text":
            body = prompt.buf.decode("latin-1")
            to, text, pdu_hex, concat = prompt.to, body, "", None
        else:
            pdu_hex = "".join(prompt.buf.decode("latin-1").split()).upper()
            try:
                if not re.fullmatch(r"(?:[0-9A-F]{2})+", pdu_hex):
                    raise _AtError("cms", 304)
                if _tpdu_length(pdu_hex) != prompt.length:
                    self._log.info("PDU has %d TPDU octets, AT+CMGS said %d", _tpdu_length(pdu_hex), prompt.length)
                    raise _AtError("cms", 304)
                try:
                    submit = decode(pdu_hex, has_smsc=True)
                except PduError as exc:
                    self._log.info("undecodable PDU %s: %s", pdu_hex, exc)
                    raise _AtError("cms", 304) from exc
                if not isinstance(submit, Submit):
                    raise _AtError("cms", 304)
            except _AtError as err:
                self._final(port, [], self._error_line(port.session, err))
                return
            to, text, concat = submit.to, submit.text, submit.concat
        if self._fail_codes:
            code = self._fail_codes.popleft()
            self._log.info("send to %s failed on request with CMS %d", mask(to), code)
            self._answer_later(port, [], self._error_line(port.session, _AtError("cms", code)))
            return
        if not self._registered():
            self._log.info("send to %s refused: no network", mask(to))
            self._answer_later(port, [], self._error_line(port.session, _AtError("cms", 331)))
            return
        mr = self._mr
        self._mr = (self._mr + 1) % 256
        part, total, ref = (concat[2], concat[1], concat[0]) if concat else (1, 1, None)
        record = SentRecord(
            time=time.monotonic(), wall_time=time.time(), mr=mr, to=to, text=text,
            part=part, total=total, ref=ref, pdu_hex=pdu_hex, modem=self.name,
        )
        self._sent.append(record)
        self._log.info("sent MR %d to %s part %d/%d (%d characters)", mr, mask(to), part, total, len(text))
        self._answer_later(port, [f"+CMGS: {mr}"], "OK")

    def _answer_later(self, port: _Port, info: list[str], final: str) -> None:
        if self.latency_s <= 0:
            self._final(port, info, final)
            return
        port.session.busy = True

        def answer() -> None:
            port.session.busy = False
            self._final(port, info, final)
            self._process_input(port)

        self._schedule(self.latency_s, answer)

    # ------------------------------------------------------------------ storage

    def _store(self, mem: str, pdu: str, kind: str) -> int | None:
        slots = self._storage[mem]
        first = self._persona.first_index
        for index in range(first, first + self._capacity[mem]):
            if index not in slots:
                slots[index] = StoredMessage(mem, index, 0, pdu, kind)
                return index
        self._log.warning("%s storage full (%d): message dropped", mem, self._capacity[mem])
        return None

    def _index_arg(self, text: str, mem: str) -> int:
        try:
            index = int(text)
        except ValueError:
            raise _AtError("cms", 321) from None
        first = self._persona.first_index
        if not first <= index < first + self._capacity[mem]:
            raise _AtError("cms", 321)
        return index

    # ------------------------------------------------------------------ commands

    _IDENT_COMMANDS = frozenset({"", "E", "Z", "&F", "I", "V", "Q", "+CMEE", "+CGMI", "+GMI",
                                 "+CGMM", "+GMM", "+CGMR", "+GMR", "+CGSN", "+GSN"})
    _NEEDS_SIM_CMS = frozenset({"+CPMS", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CSCA", "+CNMI"})
    _NEEDS_SIM_CME = frozenset({"+CIMI", "+CNUM", "+CUSD"})

    def _execute(self, port: _Port, cmd: _Cmd) -> list[str] | _Prompt:
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

    def _handlers(self) -> dict[str, Callable[[_Port, _Cmd], list[str] | _Prompt]]:
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

    def _cmd_ok(self, port: _Port, cmd: _Cmd) -> list[str]:
        return []

    def _cmd_echo(self, port: _Port, cmd: _Cmd) -> list[str]:
        value = self._int_arg(cmd, 0, (0, 1), default=0)
        port.session.echo = value == 1
        return []

    def _cmd_v(self, port: _Port, cmd: _Cmd) -> list[str]:
        if self._int_arg(cmd, 0, (0, 1), default=0) != 1:
            raise _AtError("plain")  # numeric result codes are not simulated
        return []

    def _cmd_sreg(self, port: _Port, cmd: _Cmd) -> list[str]:
        defaults = {"S0": "000", "S3": "013", "S4": "010"}
        return [defaults[cmd.name]] if cmd.form == "read" else []

    def _cmd_reset_profile(self, port: _Port, cmd: _Cmd) -> list[str]:
        s = port.session
        s.echo, s.cmee, s.cmgf, s.cscs = True, 0, 0, "IRA"
        return []

    def _cmd_ati(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [line.format(imei=self.imei) for line in self._persona.ati_lines]

    def _cmd_cmee(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"+CMEE: {port.session.cmee}"]
        if cmd.form == "test":
            return ["+CMEE: (0-2)"]
        port.session.cmee = self._int_arg(cmd, 0, (0, 1, 2), default=0)
        return []

    def _cmd_cmgf(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"+CMGF: {port.session.cmgf}"]
        if cmd.form == "test":
            return ["+CMGF: (0,1)"]
        port.session.cmgf = self._int_arg(cmd, 0, (0, 1), default=0)
        return []

    def _cmd_cscs(self, port: _Port, cmd: _Cmd) -> list[str]:
        charsets = ("IRA", "GSM", "UCS2", "HEX", "PCCP936")
        if cmd.form == "read":
            return [f'+CSCS: "{port.session.cscs}"']
        if cmd.form == "test":
            return ["+CSCS: (" + ",".join(f'"{c}"' for c in charsets) + ")"]
        if cmd.form != "set" or cmd.args[0].upper() not in charsets:
            raise _AtError("cme", 4)
        port.session.cscs = cmd.args[0].upper()
        return []

    def _cmd_cpin(self, port: _Port, cmd: _Cmd) -> list[str]:
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
                self._log.warning("three wrong PINs: SIM locked, PUK needed")
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
        self._log.info("SIM unlocked")
        self._deferred.append(lambda: (self._announce_sim_ready(), self._announce_registration(before)))

    def _cmd_cgmi(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.manufacturer]

    def _cmd_cgmm(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.model]

    def _cmd_cgmr(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self._persona.firmware]

    def _cmd_cgsn(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self.imei]

    def _cmd_cimi(self, port: _Port, cmd: _Cmd) -> list[str]:
        return [] if cmd.form == "test" else [self.imsi]

    def _cmd_cnum(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test" or not self.own_number:
            return []
        toa = 145 if self.own_number.startswith("+") else 129
        return [f'+CNUM: "","{self.own_number}",{toa}']

    def _cmd_csq(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        if self._cfun != 1:
            return ["+CSQ: 99,99"]
        return [f"+CSQ: {self._rssi},{99 if self._rssi == 99 else 0}"]

    def _cmd_reg(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_cops(self, port: _Port, cmd: _Cmd) -> list[str]:
        act = self._persona.act
        if cmd.form == "test":
            suffix = f",{act}" if act is not None else ""
            return [f'+COPS: (2,"{self.operator}","{self.operator}","00101"{suffix}),,(0-4),(0-2)']
        if cmd.form == "read":
            if not self._registered():
                return ["+COPS: 0"]
            return [f'+COPS: 0,0,"{self.operator}"' + (f",{act}" if act is not None else "")]
        return []

    def _cmd_csca(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_cpms(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_cnmi(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_csms(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CSMS: (0,1)"]
        if cmd.form == "read":
            return [f"+CSMS: {self._csms},1,1,1"]
        self._csms = self._int_arg(cmd, 0, (0, 1), default=0)
        return ["+CSMS: 1,1,1"]

    def _require_pdu_mode(self, port: _Port) -> None:
        if port.session.cmgf != 0:
            raise _AtError("cms", 302)  # text-mode reading is not simulated

    def _cmd_cmgl(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_cmgr(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _cmd_cmgd(self, port: _Port, cmd: _Cmd) -> list[str]:
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
            return []
        doomed = {1: {1}, 2: {1, 3}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}[flag]
        for index in [i for i, m in slots.items() if m.stat in doomed]:
            del slots[index]
        return []

    def _cmd_cmgs(self, port: _Port, cmd: _Cmd) -> list[str] | _Prompt:
        if cmd.form == "test":
            return []
        if cmd.form != "set" or not cmd.args or not cmd.args[0]:
            raise _AtError("plain")
        if port.session.cmgf == 1:
            return _Prompt(kind="text", to=cmd.args[0])
        try:
            length = int(cmd.args[0])
        except ValueError:
            raise _AtError("plain") from None
        if not 7 <= length <= 175:
            raise _AtError("cms", 304)
        return _Prompt(kind="pdu", length=length)

    def _cmd_cfun(self, port: _Port, cmd: _Cmd) -> list[str]:
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

    def _reboot(self, port: _Port) -> None:
        """``OK`` now, then deaf for :attr:`reset_delay_s`, then boot lines (same ttys)."""
        self._final(port, [], "OK")
        self._flush(port)
        port.session.busy = True
        self._gen += 1
        self._deaf_until = time.monotonic() + self.reset_delay_s
        self._log.info("rebooting (AT+CFUN=1,1)")

        def boot() -> None:
            self._deaf_until = 0.0
            self._power_up_state()
            self._boot()

        self._schedule(self.reset_delay_s, boot)

    def _cmd_qpowd(self, port: _Port, cmd: _Cmd) -> list[str]:
        self._final(port, [], "OK")
        port.session.busy = True
        self._log.info("powering down (AT+QPOWD)")

        def power_down() -> None:
            self._send(port, self._lines(["POWERED DOWN"]), force=True)
            self._flush(port)
            self._deaf_until = float("inf")
            # USB drops off a little later; closing at once would discard the unread line.
            self._schedule(0.2, self._close_ports)

        self._schedule(0.02, power_down)
        return []

    def _cmd_curc(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "read":
            return [f"^CURC: {int(self._curc)}"]
        if cmd.form == "set":
            self._curc = self._int_arg(cmd, 0, (0, 1)) == 1
        return []

    def _cmd_ipr(self, port: _Port, cmd: _Cmd) -> list[str]:
        return ["+IPR: 115200"] if cmd.form == "read" else []

    def _cmd_cnma(self, port: _Port, cmd: _Cmd) -> list[str]:
        if cmd.form == "test":
            return ["+CNMA: (0-2)"]
        if self._cnma_pending <= 0:
            raise _AtError("cms", 340)
        self._cnma_pending -= 1
        return []

    def _cmd_cusd(self, port: _Port, cmd: _Cmd) -> list[str]:
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
        self._schedule(self.ussd_delay_s, lambda: self._urc([self._ussd_line(reply)]))
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


class SimulatorPool:
    """Runs ``n`` simulated modems, cycling through ``personas``; a context manager.

    Extra keyword arguments go to every :class:`SimulatedModem`. Modems are named
    ``sim1``, ``sim2``, ... unless ``name`` is given (then ``<name>1``, ...).
    """

    def __init__(
        self,
        n: int,
        *,
        personas: Iterable[str] = ("sim800", "huawei", "quectel"),
        link_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if n < 0:
            raise SimulatorError(f"cannot simulate {n} modems; give 0 or more")
        cycle = list(personas)
        if not cycle:
            raise SimulatorError("SimulatorPool needs at least one persona")
        prefix = kwargs.pop("name", None) or "sim"
        self.modems: list[SimulatedModem] = [
            SimulatedModem(cycle[i % len(cycle)], name=f"{prefix}{i + 1}", link_dir=link_dir, **kwargs)
            for i in range(n)
        ]

    @property
    def paths(self) -> list[str]:
        """The AT port of each modem, in order."""
        return [m.path for m in self.modems]

    def start(self) -> SimulatorPool:
        try:
            for modem in self.modems:
                modem.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for modem in self.modems:
            modem.stop()

    def __enter__(self) -> SimulatorPool:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
