"""The recovery ladder: a modem kept online by a supervisor thread.

:class:`ManagedModem` finds its port (``config.port``, else by IMEI/ICCID over the scan
patterns), opens and initialises it, and keeps it working:

1. a command timeout → the transport resyncs by itself;
2. repeated failures (``failures_before_reset`` in a row) → ``AT+CFUN=1,1`` and re-init;
3. the port vanishes (unplug, EIO) or a reset does not help → the port is closed and the
   modem is looked for again with exponential backoff, by IMEI/ICCID even under a new path;
4. a SIM PIN problem → state ``"error"``: never retried automatically (a wrong PIN three
   times locks the SIM).

A modem that reboots by itself (boot URCs) is initialised again, since it forgets CNMI.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from appliance.modem.logs import modem_logger
from appliance.config import ModemConfig
from appliance.modem.discovery import DEFAULT_PATTERNS, find_modem
from appliance.modem.driver import Diagnostics, Modem
from appliance.modem.errors import (
    ModemDisconnected,
    ModemError,
    ModemTimeout,
    SendOutcomeUnknown,
    SimPinError,
)
from appliance.modem.types import (
    InboundSms,
    ModemIdentity,
    Registration,
    SignalQuality,
    StatusReportEvent,
)
from appliance.pdu import SubmitPdu

__all__ = ["ManagedModem", "STATES"]

_log = logging.getLogger(__name__)

STATES = ("starting", "online", "offline", "resetting", "error")


class ManagedModem:
    """One configured modem, kept online by a background supervisor (see module doc)."""

    def __init__(
        self,
        config: ModemConfig,
        *,
        scan_patterns: Sequence[str] | None = None,
        on_sms: Callable[[InboundSms], None] | None = None,
        on_status_report: Callable[[StatusReportEvent], None] | None = None,
        on_state: Callable[[str, str], None] | None = None,
        poll_interval: float = 30.0,
        command_timeout: float = 5.0,
        send_timeout: float = 60.0,
        probe_timeout: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        failures_before_reset: int = 3,
        boot_timeout: float = 30.0,
        resync_timeout: float = 3.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.scan_patterns = list(scan_patterns) if scan_patterns else list(DEFAULT_PATTERNS)
        self.on_sms = on_sms
        self.on_status_report = on_status_report
        self.on_state = on_state
        self.poll_interval = poll_interval
        self.command_timeout = command_timeout
        self.send_timeout = send_timeout
        self.probe_timeout = probe_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.failures_before_reset = failures_before_reset
        self.boot_timeout = boot_timeout
        self.resync_timeout = resync_timeout

        self.identity: ModemIdentity | None = None
        self.signal: SignalQuality | None = None
        self.registration: Registration | None = None
        self.operator: str | None = None
        self.last_error: str | None = None
        self._state = "starting"
        self._modem: Modem | None = None
        self._imei = config.imei
        self._iccid = config.iccid
        self._failures = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._online = threading.Condition()
        self._inflight = 0
        self._thread: threading.Thread | None = None
        self._log = modem_logger(_log, self.name)

    # ------------------------------------------------------------------ public surface

    @property
    def state(self) -> str:
        return self._state

    @property
    def online(self) -> bool:
        return self._state == "online"

    @property
    def port(self) -> str | None:
        modem = self._modem
        return modem.port if modem is not None else None

    @property
    def supervisor_alive(self) -> bool:
        """False when the supervisor thread died unexpectedly. It may end on purpose: when
        stopped, or in state ``error`` (a SIM PIN problem it must not retry)."""
        thread = self._thread
        if thread is None or thread.is_alive():
            return True
        return self._stopping.is_set() or self._state == "error"

    def start(self) -> None:
        """Start the supervisor thread (returns at once; see :meth:`wait_online`)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"modem-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let an in-flight send finish (up to ``timeout``), then close the port."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._online:
            while self._inflight and time.monotonic() < deadline:
                self._online.wait(max(0.0, deadline - time.monotonic()))
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.1, deadline - time.monotonic()))
        self._thread = None
        self._drop_modem()
        self._set_state("offline")

    def wait_online(self, timeout: float) -> bool:
        """Block until the modem is online (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._online:
            while self._state != "online":
                left = deadline - time.monotonic()
                if left <= 0 or self._state == "error":
                    return False
                self._online.wait(left)
            return True

    def send_pdu(self, pdu: SubmitPdu, *, timeout: float | None = None) -> int:
        """Send one part through this modem; TP-MR. ModemDisconnected at once when offline."""
        with self._online:
            modem = self._modem
            if modem is None or self._state != "online" or self._stopping.is_set():
                raise ModemDisconnected(f"modem is {self._state}; nothing was sent",
                                        modem=self.name, pdu_sent=False)
            self._inflight += 1
        try:
            mr = modem.send_pdu(pdu, timeout=timeout or self.send_timeout)
            self._failures = 0
            return mr
        except (ModemTimeout, SendOutcomeUnknown) as exc:
            self._note_failure(exc)
            raise
        except ModemDisconnected as exc:
            self.last_error = exc.message
            self._wake.set()
            raise
        finally:
            with self._online:
                self._inflight -= 1
                self._online.notify_all()

    def ussd(self, code: str, *, timeout: float = 15.0) -> str:
        """A USSD request through this modem (e.g. a prepaid balance). Like
        :meth:`diagnostics` it shares the open port: its ``AT+CUSD`` holds the transport's
        command lock, so it never interleaves with a send; the answer arrives as a URC."""
        modem = self._modem
        if modem is None or not self.online:
            raise ModemDisconnected(f"modem is {self._state}", modem=self.name)
        return modem.ussd(code, timeout=timeout)

    def probe(self) -> Registration:
        """Does the modem answer, and is it registered? Its network registration read live
        over the open port (the SIM health check's probe before resuming a paused SIM)."""
        modem = self._modem
        if modem is None or not self.online:
            raise ModemDisconnected(f"modem is {self._state}", modem=self.name)
        registration = modem.registration()
        self.registration = registration
        return registration

    def diagnostics(self) -> Diagnostics:
        """The ``appliance diag`` report, read live over the open port (the transport's
        command lock keeps it from interleaving with the worker's commands)."""
        modem = self._modem
        if modem is None or not self.online:
            raise ModemDisconnected(f"modem is {self._state}", modem=self.name)
        return modem.diagnostics()

    def __repr__(self) -> str:
        return f"<ManagedModem {self.name} {self._state} port={self.port}>"

    # ------------------------------------------------------------------ supervisor

    def _set_state(self, state: str) -> None:
        with self._online:
            if state == self._state:
                return
            self._state = state
            self._online.notify_all()
        self._log.info("state %s%s", state, f" ({self.last_error})" if state in (
            "offline", "error") and self.last_error else "")
        if self.on_state is not None:
            try:
                self.on_state(self.name, state)
            except Exception:  # noqa: BLE001 - a callback bug must not stop the supervisor
                self._log.exception("on_state callback failed")

    def _note_failure(self, exc: ModemError) -> None:
        self.last_error = exc.message
        self._failures += 1
        if self._failures >= self.failures_before_reset:
            self._wake.set()

    def _drop_modem(self) -> None:
        modem, self._modem = self._modem, None
        if modem is not None:
            modem.close()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped/woken; True when stopping."""
        self._wake.wait(seconds)
        self._wake.clear()
        return self._stopping.is_set()

    def _supervise(self) -> None:
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            if self._modem is None:
                try:
                    self._connect()
                except SimPinError as exc:
                    self._give_up(exc)
                    return
                except Exception as exc:  # noqa: BLE001 - keep supervising whatever happens
                    if isinstance(exc, ModemError):
                        self.last_error = exc.message
                    else:
                        self._log.exception("unexpected error while connecting")
                    self._drop_modem()
                    self._set_state("offline")
                    if self._sleep(backoff):
                        return
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                backoff = self.backoff_initial
                self._failures = 0
                self._set_state("online")
            if self._sleep(self.poll_interval):
                return
            try:
                self._check()
            except SimPinError as exc:
                self._give_up(exc)
                return

    def _give_up(self, exc: SimPinError) -> None:
        """A PIN problem: never retried (three wrong tries lock the SIM)."""
        self.last_error = exc.message
        self._drop_modem()
        self._set_state("error")
        self._log.error("%s; not retrying", exc.message)

    def _check(self) -> None:
        modem = self._modem
        if modem is None:
            return
        if modem.transport.disconnected is not None:
            self.last_error = modem.transport.disconnected.message
            self._drop_modem()
            self._set_state("offline")
            return
        try:
            if self._failures >= self.failures_before_reset:
                self._set_state("resetting")
                modem.reset(boot_timeout=self.boot_timeout)
                self._failures = 0
                self._set_state("online")
            elif modem.rebooted:
                self._log.warning("the modem rebooted by itself: initialising it again")
                modem.initialize()
            self._refresh(modem)
            modem.process_stored()
        except SimPinError:
            raise
        except ModemDisconnected as exc:
            self.last_error = exc.message
            self._drop_modem()
            self._set_state("offline")
        except ModemError as exc:
            self._note_failure(exc)
            if self._state == "resetting" or self._failures > self.failures_before_reset:
                self._log.warning("reset did not help (%s): reopening the port", exc.message)
                self._drop_modem()
                self._set_state("offline")

    def _refresh(self, modem: Modem) -> None:
        self.signal = modem.signal()
        self.registration = modem.registration()
        self.operator = modem.operator()

    def _locate(self) -> str:
        """The port to open: ``config.port`` while it exists, else a scan by identity."""
        if self.config.port and os.path.exists(self.config.port):
            return self.config.port
        if not (self._imei or self._iccid):
            raise ModemDisconnected(f"port {self.config.port} not found (is the modem plugged "
                                    "in?)", modem=self.name)
        probe = find_modem(imei=self._imei, iccid=self._iccid, patterns=self.scan_patterns,
                           timeout=self.probe_timeout, baudrate=self.config.baudrate)
        if probe is None:
            who = f"IMEI {self._imei}" if self._imei else f"ICCID {self._iccid}"
            raise ModemDisconnected(f"no modem with {who} on {', '.join(self.scan_patterns)}",
                                    modem=self.name)
        return probe.path

    def _connect(self) -> None:
        self._set_state("starting" if self.identity is None else "offline")
        path = self._locate()
        pin = self.config.pin.get_secret_value() or None
        modem = Modem.open(path, name=self.name, baudrate=self.config.baudrate,
                           rtscts=self.config.rtscts, pin=pin, on_sms=self.on_sms,
                           on_status_report=self.on_status_report,
                           command_timeout=self.command_timeout,
                           prompt_timeout=self.command_timeout, send_timeout=self.send_timeout,
                           resync_timeout=self.resync_timeout)
        modem.transport.on_disconnect = lambda _exc: self._on_disconnect()
        self._modem = modem
        modem.prepare()
        identity = modem.identity()
        if self._imei and identity.imei and identity.imei != self._imei:
            raise ModemDisconnected(f"{path} now holds another modem (IMEI {identity.imei}, "
                                    f"expected {self._imei})", modem=self.name)
        if not self._imei and self._iccid and identity.iccid and identity.iccid != self._iccid:
            raise ModemDisconnected(f"{path} holds another SIM (ICCID {identity.iccid}, "
                                    f"expected {self._iccid})", modem=self.name)
        modem.initialize()
        if identity.imsi is None or identity.iccid is None:  # readable once the SIM is open
            identity = modem.identity()
        self.identity = identity
        self._imei = self._imei or identity.imei
        self._iccid = self._iccid or identity.iccid
        self._refresh(modem)
        self.last_error = None
        self._log.info("bound to %s (IMEI %s, ICCID %s)", path, identity.imei, identity.iccid)

    def _on_disconnect(self) -> None:
        # Reader thread: must not block. Sends fail from now on; the supervisor reconnects.
        with self._online:
            if self._state == "online":
                self._state = "offline"
                self._online.notify_all()
                notify = True
            else:
                notify = False
        self._wake.set()
        if notify and self.on_state is not None:
            try:
                self.on_state(self.name, "offline")
            except Exception:  # noqa: BLE001
                self._log.exception("on_state callback failed")
