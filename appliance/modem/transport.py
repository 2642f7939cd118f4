"""The AT transport: one serial port, one reader thread, commands in, answers and URCs out.

The reader thread splits what the modem says into lines (decoded leniently) and sorts each
line, whether or not a command is pending:

* a final result code (``OK``, ``ERROR``, ``+CME ERROR: n``, ``+CMS ERROR: n``, ``NO
  CARRIER``, ``COMMAND NOT SUPPORT``…) ends the pending command;
* an unsolicited result code (``+CMTI``, ``+CMT``/``+CDS`` with their PDU line, ``+CDSI``,
  ``RING``, ``+CUSD``…) goes to the URC handler — never into a response;
* a vendor line starting with ``^`` (Huawei's ``^RSSI``, ``^NWTIME``, ``^BOOT``, ``^MODE``…)
  is a URC unless the pending command is that very ``^`` command (``AT^ICCID?``);
* anything else while a command is pending belongs to its response.

Lines such as ``+CREG:``, ``+CPIN:`` or ``+CUSD:`` are either: they answer a pending *read*
of the same command (``AT+CREG?``) and are URCs otherwise. A registration URC can arrive
just before the answer to the read; the two are told apart by their fields
(:func:`~appliance.modem.answers.parse_registration`). URC handlers run on a dispatcher
thread, so a handler may issue AT commands itself without deadlocking the reader.

Commands are serialised by :attr:`ATTransport.lock` (re-entrant: hold it across a sequence
such as read-then-delete). After any timeout the transport resyncs — it drains stale input
until the line is quiet and sends ``AT`` until an ``OK`` comes back — so the next command
gets its own answer. A vanished device (EIO, unplug) fails the pending command at once with
:class:`ModemDisconnected`.
"""

from __future__ import annotations

import errno
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import serial

from appliance.modem.logs import modem_logger
from appliance.modem.answers import parse_registration
from appliance.modem.codes import describe
from appliance.modem.errors import (
    CommandError,
    ModemDisconnected,
    ModemError,
    ModemTimeout,
    PortBusy,
    PortPermissionDenied,
    SendOutcomeUnknown,
)

__all__ = ["ATTransport", "Response", "Urc", "open_serial"]

_log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"

_FINAL_OK = "OK"
_FINAL_ERRORS = frozenset(
    {"ERROR", "NO CARRIER", "COMMAND NOT SUPPORT", "BUSY", "NO ANSWER", "NO DIALTONE",
     "TOO MANY PARAMETERS"}
)
_CODED_ERROR = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*)$", re.IGNORECASE)

# Always unsolicited, whatever is pending.
_URC_PREFIXES = (
    "+CMTI:", "+CMT:", "+CDSI:", "+CDS:", "+CBM:", "+CBMI:", "RING", "+CRING:", "+CLIP:",
    "^RSSI:", "^HCSQ:", "^MODE:", "^SRVST:", "^SIMST:", "^BOOT:", "^DSFLOWRPT:", "^SYSSTART",
    "^CEND:", "^ORIG:", "^CONF:", "^CONN:", "^STIN:", "+QIND:", "+QUSIM:", "+CIEV:", "RDY",
    "Call Ready", "SMS Ready", "POWERED DOWN", "NORMAL POWER DOWN", "UNDER-VOLTAGE", "+PACSP",
    "+QPOWD", "+CTZV:", "+CTZE:", "*PSUTTZ:", "DST:", "+SIM READY",
)
# Answer a pending read of the same command (``AT+CREG?``), URC otherwise.
_DUAL_PREFIXES = ("+CREG:", "+CGREG:", "+CEREG:", "+CPIN:", "+CFUN:", "+CUSD:")
_REGISTRATION = ("+CREG", "+CGREG", "+CEREG")
# These URCs carry a second line (the PDU, or the text in text mode).
_TWO_LINE = frozenset({"+CMT", "+CDS", "+CBM"})

_LEADING_NOISE = re.compile(r"^[^\x20-\x7e]+")
_NOISE_INSIDE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffd]")  # \r, \n never occur here
_COMMAND_NAMES = re.compile(r"([+^$*#%][A-Za-z][A-Za-z0-9]*)")


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result: ``name`` (``"+CMTI"``, ``"RING"``, ``""`` when unknown), the
    whole ``line``, ``args`` (what follows the colon) and ``body`` (the PDU/text line of a
    two-line ``+CMT``/``+CDS``)."""

    name: str
    line: str
    args: str = ""
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A command's answer: its information ``lines`` and the ``final`` result code.

    ``prompt`` is True when the exchange stopped at the ``> `` prompt (``final`` is then "");
    ``payload_sent`` when the final code came after a prompted payload was written.
    """

    command: str
    lines: tuple[str, ...]
    final: str
    prompt: bool = False
    payload_sent: bool = False

    @property
    def ok(self) -> bool:
        return self.final == _FINAL_OK

    def error(self, modem: str | None = None) -> CommandError:
        """The :class:`CommandError` this failed answer stands for."""
        kind, code = parse_error(self.final)
        if kind and code is not None:
            info = describe(kind, code)
            return CommandError(
                f"{self.command} failed: +{kind.upper()} ERROR {code} ({info.meaning})",
                modem=modem, code=code, kind=kind, temporary=info.temporary,
            )
        return CommandError(f"{self.command} failed: {self.final}", modem=modem)

    def first(self, prefix: str) -> str | None:
        """The text after ``prefix:`` in the first line that starts with it."""
        for line in self.lines:
            if line.upper().startswith(prefix.upper() + ":"):
                return line[len(prefix) + 1 :].strip()
        return None


def parse_error(final: str) -> tuple[str | None, int | None]:
    """``("cms", 331)`` for ``+CMS ERROR: 331``; ``(kind, None)`` when the code is text."""
    m = _CODED_ERROR.match(final)
    if not m:
        return None, None
    kind = m.group(1).lower()
    try:
        return kind, int(m.group(2).strip())
    except ValueError:
        return kind, None


def is_final(line: str) -> bool:
    return line == _FINAL_OK or line in _FINAL_ERRORS or bool(_CODED_ERROR.match(line))


def open_serial(port: str, *, baudrate: int = 115200, rtscts: bool = False,
                modem: str | None = None) -> serial.Serial:
    """Open ``port`` exclusively, mapping OS errors to what a technician can act on."""
    ser = serial.Serial()
    ser.port = port
    ser.baudrate = baudrate
    ser.rtscts = rtscts
    ser.timeout = 0.1
    ser.write_timeout = 5.0
    ser.exclusive = True
    try:
        ser.open()
    except serial.SerialException as exc:
        code = exc.errno if isinstance(exc.errno, int) else None
        if code == errno.ENOENT or code == errno.ENODEV or code == errno.ENXIO:
            raise ModemDisconnected(f"port {port} not found (is the modem plugged in?)",
                                    modem=modem) from None
        if code in (errno.EACCES, errno.EPERM):
            raise PortPermissionDenied(
                f"permission denied opening {port}: add the user to the 'dialout' group "
                "(sudo usermod -aG dialout $USER, then log in again)",
                modem=modem,
            ) from None
        if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
            raise PortBusy(f"port {port} is busy: another process has it open "
                           "(stop the appliance service or its worker first)",
                           modem=modem) from None
        raise ModemDisconnected(f"cannot open port {port}: {exc}", modem=modem) from None
    return ser


@dataclass
class _Pending:
    command: str
    names: tuple[str, ...]
    reads: tuple[str, ...]
    stop_at_prompt: bool
    payload: str = ""
    lines: list[str] = field(default_factory=list)
    final: str | None = None
    prompt: bool = False
    error: ModemError | None = None
    done: threading.Event = field(default_factory=threading.Event)


class ATTransport:
    """AT commands over one serial port.

    ``on_urc`` receives each :class:`Urc` on the dispatcher thread; ``on_disconnect``
    receives the :class:`ModemDisconnected` error on the reader thread when the port dies
    (it must not block). Either may be set after construction.
    """

    def __init__(
        self,
        port: str,
        *,
        name: str | None = None,
        baudrate: int = 115200,
        rtscts: bool = False,
        on_urc: Callable[[Urc], None] | None = None,
        on_disconnect: Callable[[ModemDisconnected], None] | None = None,
        resync_timeout: float = 3.0,
        quiet_s: float = 0.05,
    ) -> None:
        self.port = port
        self.name = name or port
        self.baudrate = baudrate
        self.rtscts = rtscts
        self.on_urc = on_urc
        self.on_disconnect = on_disconnect
        self.resync_timeout = resync_timeout
        self.quiet_s = quiet_s
        self.lock = threading.RLock()
        """Held for each exchange; hold it yourself across a sequence of commands."""
        self._log = modem_logger(_log, self.name)
        self._ser: serial.Serial | None = None
        self._state = threading.Lock()
        self._pending: _Pending | None = None
        self._buf = bytearray()
        self._two_line: Urc | None = None
        self._open_quote: str | None = None
        self._last_rx = 0.0
        self._unprocessed = False
        self._stop = threading.Event()
        self._dead: ModemDisconnected | None = None
        self._needs_resync = False
        self._reader: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._urcs: queue.Queue[Urc | None] = queue.Queue()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> ATTransport:
        """Open the port (exclusively) and start the reader and dispatcher threads."""
        self._ser = open_serial(self.port, baudrate=self.baudrate, rtscts=self.rtscts,
                                modem=self.name)
        self._stop.clear()
        self._dead = None
        self._last_rx = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, name=f"at-reader-{self.name}",
                                        daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch_loop,
                                            name=f"at-urc-{self.name}", daemon=True)
        self._reader.start()
        self._dispatcher.start()
        self._log.debug("opened %s at %d baud", self.port, self.baudrate)
        return self

    def close(self) -> None:
        """Stop the threads and close the port; a pending command fails. Safe to repeat."""
        self._stop.set()
        ser = self._ser
        if ser is not None:
            try:
                ser.cancel_read()
            except Exception:  # noqa: BLE001 - the port may already be gone
                pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        self._fail_pending(ModemDisconnected(f"port {self.port} was closed", modem=self.name))
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001
                pass
        self._ser = None
        self._urcs.put(None)
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join(timeout=2)
        self._dispatcher = None

    def __enter__(self) -> ATTransport:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._ser is not None and self._dead is None and not self._stop.is_set()

    @property
    def disconnected(self) -> ModemDisconnected | None:
        """The error that killed the port, or None while it lives."""
        return self._dead

    # ------------------------------------------------------------------ commands

    def command(self, command: str, *, timeout: float = 5.0) -> list[str]:
        """Run ``command``; return its information lines. Raises :class:`CommandError` on
        ``ERROR``/``+CME``/``+CMS``, :class:`ModemTimeout`, :class:`ModemDisconnected`."""
        response = self.execute(command, timeout=timeout)
        if not response.ok:
            raise response.error(self.name)
        return list(response.lines)

    def execute(self, command: str, *, timeout: float = 5.0,
                stop_at_prompt: bool = False) -> Response:
        """Run ``command`` and return its :class:`Response` whatever the final code.

        With ``stop_at_prompt`` the exchange ends when the ``> `` prompt arrives (for a
        console that then types the PDU itself)."""
        with self.lock:
            self._before_command()
            return self._exchange(command, (command + "\r").encode("latin-1"),
                                  timeout=timeout, stop_at_prompt=stop_at_prompt)

    def write_raw(self, data: bytes, *, timeout: float = 60.0, wait: bool = True) -> Response:
        """Write ``data`` as is (a PDU, Ctrl-Z, ESC) and wait for the final result code
        (with ``wait=False`` return at once, e.g. for PDU text typed after a prompt)."""
        with self.lock:
            if not wait:
                self._check_alive()
                self._write(data)
                return Response(command="", lines=(), final="")
            return self._exchange("", data, timeout=timeout, stop_at_prompt=False)

    def send_prompted(self, command: str, payload: str, *, prompt_timeout: float = 5.0,
                      timeout: float = 60.0) -> Response:
        """``AT+CMGS``-style exchange: ``command``, wait for ``> ``, write ``payload`` +
        Ctrl-Z, wait for the final result code.

        Before the payload is written every failure has ``pdu_sent=False``; a prompt timeout
        sends ESC and resyncs. After it, silence raises :class:`SendOutcomeUnknown`. A final
        code before the prompt returns a :class:`Response` with ``prompt=False``.
        """
        with self.lock:
            self._before_command()
            first = self._exchange(command, (command + "\r").encode("latin-1"),
                                   timeout=prompt_timeout, stop_at_prompt=True,
                                   on_timeout_write=ESC)
            if not first.prompt:
                return first
            try:
                answer = self._exchange(command, payload.encode("latin-1") + CTRL_Z,
                                        timeout=timeout, stop_at_prompt=False,
                                        payload=payload, resync_on_timeout=True)
                return replace(answer, payload_sent=True)
            except ModemTimeout:
                raise SendOutcomeUnknown(
                    f"no answer within {timeout:g} s after the PDU was written: "
                    "the message may or may not have left", modem=self.name) from None
            except ModemDisconnected as exc:
                raise SendOutcomeUnknown(
                    f"the port went away after the PDU was written ({exc.message}): "
                    "the message may or may not have left", modem=self.name) from None

    def resync(self, timeout: float | None = None) -> bool:
        """Drain stale input, then send ``AT`` until ``OK``; True when back in step."""
        deadline = time.monotonic() + (self.resync_timeout if timeout is None else timeout)
        with self.lock:
            self._drain(deadline)
            # Each AT starts with ESC: a modem left at the "> " prompt of an AT+CMGS (its
            # client killed mid-send) takes everything else for PDU hex until ESC cancels it.
            while time.monotonic() < deadline:
                self._check_alive()
                attempt = min(0.5, max(0.05, deadline - time.monotonic()))
                try:
                    response = self._exchange("AT", b"\x1bAT\r", timeout=attempt,
                                              stop_at_prompt=False, resync_on_timeout=False)
                except ModemTimeout:
                    continue
                if response.final:
                    # A late OK of the old command may have answered our AT: let the
                    # AT's own answer arrive and drop it too.
                    self._drain(time.monotonic() + max(0.2, self.quiet_s * 4))
                    self._needs_resync = False
                    self._log.debug("resynced")
                    return True
            self._needs_resync = True
            self._log.info("resync failed: no OK within the resync window")
            return False

    # ------------------------------------------------------------------ internals

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise ModemDisconnected(self._dead.message, modem=self.name)
        if self._ser is None:
            raise ModemDisconnected(f"port {self.port} is not open", modem=self.name)

    def _before_command(self) -> None:
        self._check_alive()
        if self._needs_resync and not self.resync():
            raise ModemTimeout(f"modem on {self.port} is not answering (resync failed)",
                               modem=self.name)

    def _drain(self, deadline: float) -> None:
        """Wait until nothing has arrived for ``quiet_s`` (or ``deadline``)."""
        while time.monotonic() < deadline:
            self._check_alive()
            idle = time.monotonic() - self._last_rx
            if idle >= self.quiet_s:
                return
            time.sleep(min(self.quiet_s - idle + 0.005, max(0.0, deadline - time.monotonic())))

    def _exchange(self, command: str, data: bytes, *, timeout: float, stop_at_prompt: bool,
                  payload: str = "", resync_on_timeout: bool = True,
                  on_timeout_write: bytes | None = None) -> Response:
        self._check_alive()
        upper = command.upper()
        body = upper[2:] if upper.startswith("AT") else upper
        names = tuple(dict.fromkeys(_COMMAND_NAMES.findall(body)))
        reads = tuple(n for n in names if re.search(re.escape(n) + r"\?", body))
        pending = _Pending(command=command, names=names, reads=reads,
                           stop_at_prompt=stop_at_prompt, payload=payload)
        self._settle()
        with self._state:
            self._pending = pending
        try:
            self._write(data)
            if command:
                self._log.debug("-> %s", _mask(command))
            if not pending.done.wait(timeout):
                with self._state:
                    self._pending = None
                if on_timeout_write:
                    try:
                        self._write(on_timeout_write)
                    except ModemDisconnected:
                        pass
                what = command or "the command"
                self._log.log(logging.WARNING if resync_on_timeout else logging.DEBUG,
                              "timeout after %.2f s waiting for %s", timeout, _mask(what))
                if resync_on_timeout:
                    self._needs_resync = True
                    self.resync()
                raise ModemTimeout(f"no answer to {_mask(what)} within {timeout:g} s",
                                   modem=self.name)
        finally:
            with self._state:
                if self._pending is pending:
                    self._pending = None
        if pending.error is not None:
            raise type(pending.error)(pending.error.message, modem=self.name)
        return Response(command=command, lines=tuple(pending.lines), final=pending.final or "",
                        prompt=pending.prompt)

    def _settle(self, limit: float = 0.2) -> None:
        """Let the reader sort out what already arrived, so stale lines do not land in the
        next command's response."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ser = self._ser
            try:
                waiting = ser.in_waiting if ser is not None else 0
            except (serial.SerialException, OSError, TypeError, AttributeError):
                return
            if not waiting and not self._unprocessed:
                return
            time.sleep(0.002)

    def _write(self, data: bytes) -> None:
        ser = self._ser
        if ser is None:
            raise ModemDisconnected(f"port {self.port} is not open", modem=self.name)
        try:
            ser.write(data)
            ser.flush()
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            err = ModemDisconnected(f"writing to {self.port} failed: {exc}", modem=self.name)
            self._died(err)
            raise err from None

    def _fail_pending(self, error: ModemError) -> None:
        with self._state:
            pending, self._pending = self._pending, None
        if pending is not None and not pending.done.is_set():
            pending.error = error
            pending.done.set()

    def _died(self, error: ModemDisconnected) -> None:
        first = self._dead is None
        self._dead = error
        if first and not self._stop.is_set():
            self._log.warning("disconnected: %s", error.message)
            if self.on_disconnect is not None:  # first, so owners see it before the caller
                try:
                    self.on_disconnect(error)
                except Exception:  # noqa: BLE001 - a handler bug must not kill the reader
                    self._log.exception("on_disconnect handler failed")
        self._fail_pending(error)

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        ser = self._ser
        assert ser is not None
        while not self._stop.is_set():
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if self._stop.is_set():
                    return
                self._died(ModemDisconnected(f"port {self.port} went away: {exc}",
                                             modem=self.name))
                return
            if data:
                self._unprocessed = True
                self._last_rx = time.monotonic()
                try:
                    self._feed(data)
                except Exception:  # noqa: BLE001 - never let odd input kill the reader
                    self._log.exception("could not parse input %r", bytes(data)[:80])
                finally:
                    self._unprocessed = False

    def _feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            cut = -1
            for i, b in enumerate(self._buf):
                if b in (0x0D, 0x0A):
                    cut = i
                    break
            if cut < 0:
                break
            raw = bytes(self._buf[:cut])
            del self._buf[: cut + 1]
            self._on_line(raw.decode("utf-8", "replace"))
        if len(self._buf) > 8192:  # a line never ends: keep the reader bounded
            self._buf.clear()
        self._check_prompt()

    def _check_prompt(self) -> None:
        partial = _LEADING_NOISE.sub("", self._buf.decode("latin-1")).strip()
        if not partial.startswith(">"):
            return
        with self._state:
            pending = self._pending
            if pending is None or not pending.stop_at_prompt or pending.done.is_set():
                return
            self._buf.clear()
            pending.prompt = True
            self._pending = None
        pending.done.set()

    def _on_line(self, raw: str) -> None:
        line = _LEADING_NOISE.sub("", raw).strip()
        if not line:
            return
        if _NOISE_INSIDE.search(raw) and not (
            is_final(line) or line.startswith(_URC_PREFIXES + _DUAL_PREFIXES)
        ):
            # Undecodable bytes or control characters on a line (a modem rebooting, a bad
            # cable): noise, never part of an answer. A result code or URC that merely
            # follows noise is still honoured.
            self._log.debug("noise dropped: %r", raw[:80])
            return
        if self._two_line is not None:
            head, self._two_line = self._two_line, None
            self._emit(Urc(head.name, head.line, head.args, body=line))
            return
        if self._open_quote is not None:  # a +CUSD text spanning several lines
            head, self._open_quote = self._open_quote, None
            if is_final(line):
                name, args = _split(head)
                self._emit(Urc(name, head, args))
            else:
                line = head + "\n" + line
        if line.upper().startswith("+CUSD:") and line.count('"') == 1:
            self._open_quote = line
            return
        with self._state:
            pending = self._pending
        if line == ">" and pending is not None and pending.stop_at_prompt:
            self._buf[:0] = b"> "
            return
        name, args = _split(line)
        if self._is_urc(line, name, args, pending):
            urc = Urc(name, line, args)
            if name in _TWO_LINE:
                self._two_line = urc
            else:
                self._emit(urc)
            return
        if pending is None or pending.done.is_set():
            if is_final(line):
                self._log.debug("stale final result dropped: %s", line)
            else:
                self._emit(Urc("", line, line))
            return
        if is_final(line):
            with self._state:
                if self._pending is pending:
                    self._pending = None
            pending.final = line
            self._log.debug("<- %s", line)
            pending.done.set()
            return
        if pending.command and line.upper() == pending.command.upper():
            return  # echo (before ATE0 took effect)
        if pending.payload and line.upper() == pending.payload.upper():
            return  # echoed PDU
        pending.lines.append(line)

    @staticmethod
    def _is_urc(line: str, name: str, args: str, pending: _Pending | None) -> bool:
        if line.startswith(_URC_PREFIXES):
            if pending is not None and name in pending.names and not line.startswith(
                ("+CMTI:", "+CMT:", "+CDSI:", "+CDS:", "RING", "^RSSI:")
            ):
                return False  # e.g. AT+QIND? answering "+QIND: ..."
            return True
        if line.startswith("^"):
            # Huawei prints ^NWTIME, ^BOOT, ^DSFLOWRPT... whenever it likes; only the
            # pending ^ command's own answer is an answer.
            return pending is None or name not in pending.names
        if line.startswith(_DUAL_PREFIXES):
            if pending is None or name not in pending.reads:
                return True
            if name in _REGISTRATION:
                reading = parse_registration(name, args)
                return reading is not None and not reading.solicited
            return False
        return False

    def _emit(self, urc: Urc) -> None:
        self._log.debug("URC %s", urc.line if urc.body is None else f"{urc.line} + body")
        self._urcs.put(urc)

    def _dispatch_loop(self) -> None:
        while True:
            urc = self._urcs.get()
            if urc is None:
                return
            handler = self.on_urc
            if handler is None:
                continue
            try:
                handler(urc)
            except Exception:  # noqa: BLE001 - one bad URC must not stop the others
                self._log.exception("URC handler failed on %s", urc.line)


def _split(line: str) -> tuple[str, str]:
    if ":" in line and line[0] in "+^$*#%":
        name, _, rest = line.partition(":")
        return name.strip().upper(), rest.strip()
    return line.strip(), ""


def _mask(command: str) -> str:
    return re.sub(r"(?i)(\+CPIN=|\+CLCK=[^,]*,[^,]*,|\+CPWD=)(.*)", r"\1****", command)
