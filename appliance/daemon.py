"""The daemon: one process running the REST API, the dispatcher and one worker per modem.

:class:`Appliance` wires the parts together (docs/architecture.md): the queue on SQLite
or a PostgreSQL database shared with other nodes (:class:`~appliance.queue.NodeMembership`), a
:class:`~appliance.modem.ManagedModem` per configured modem (plus simulated ones), the
dispatcher that sends through them, the inbound service that takes what they receive, and
the webhook service. :func:`serve` runs it under uvicorn until SIGTERM/SIGINT.

A configured modem that is missing or failing at start is simply offline: its
ManagedModem keeps looking for it in the background, the API serves regardless and
messages wait in the queue for a modem.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from appliance.api.keys import ApiKeys
from appliance.balance import BalanceService
from appliance.config import ModemConfig, Settings
from appliance.inbound.keywords import KeywordTable
from appliance.inbound.service import InboundService
from appliance.modem.managed import ManagedModem
from appliance.pdu import SubmitPdu
from appliance import __version__
from appliance.queue import Dispatcher, Queue
from appliance.db.notify import WorkListener
from appliance.queue.nodes import NodeMembership
from appliance.queue.sim_health import SimHealth
from appliance.retention import Retention
from appliance.signals import SignalSampler
from appliance.twilio.service import TwilioService
from appliance.webhooks import WebhookService

__all__ = ["Appliance", "TimedModem", "configure_logging", "log_handler", "serve"]

_log = logging.getLogger(__name__)


class TimedModem:
    """A :class:`ManagedModem` whose sends are timed for the metrics.

    Everything but :meth:`send_pdu` is the wrapped modem's own (attribute access passes
    through), so the dispatcher and the API see the real state.
    """

    def __init__(self, modem: ManagedModem, observe: Callable[[str, float], None]) -> None:
        self._modem = modem
        self._observe = observe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._modem, name)

    @property
    def wrapped(self) -> ManagedModem:
        return self._modem

    def send_pdu(self, pdu: SubmitPdu, *, timeout: float | None = None) -> int:
        started = time.monotonic()
        try:
            return self._modem.send_pdu(pdu, timeout=timeout)
        finally:
            self._observe(self._modem.name, time.monotonic() - started)


class Appliance:
    """The running system, built from :class:`Settings`.

    ``simulate`` adds that many simulated modems (pty simulator, personas from
    ``settings.simulator``); ``simulator_kwargs`` are passed to each
    :class:`~appliance.modem.simulator.SimulatedModem` (tests use it for latency).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        simulate: int = 0,
        simulator_kwargs: dict[str, Any] | None = None,
        modem_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.started_at = time.time()
        self._simulate = simulate
        self._simulator_kwargs = dict(simulator_kwargs or {})
        self._modem_kwargs = dict(modem_kwargs or {})
        self._link_dir: tempfile.TemporaryDirectory[str] | None = None
        self._started = False
        self._stop_lock = threading.Lock()
        self.simulators: list[Any] = []
        self.modems: list[Any] = []
        self.queue = Queue(settings.appliance.database_url, max_parts=settings.appliance.max_parts,
                           national_languages=settings.sms.national_languages,
                           sticky_sender=settings.sms.sticky_sender, sticky_wait_s=settings.sms.sticky_wait_s)
        from appliance.queue.quiet import QuietHours  # marketing broadcasts wait out quiet hours

        b = settings.broadcasts
        self.queue.quiet_hours = QuietHours.parse(b.quiet_hours_start, b.quiet_hours_end, b.timezone)
        self.keys = ApiKeys(self.queue.engine)
        self.inbound = InboundService(
            self.queue,
            keywords=KeywordTable.from_settings(settings.keywords),
            reassembly_timeout_s=settings.inbound.reassembly_timeout_s,
            default_region=settings.appliance.default_region,
        )
        self.webhooks = WebhookService(self.queue, settings.webhooks, node=settings.node.name)
        self.inbound.subscribe(self.webhooks.kick)  # inbound events go out at once
        self.twilio = TwilioService(self.queue, settings, modems=lambda: self.modems, node=settings.node.name)
        self.inbound.subscribe(self.twilio.kick)
        # Prepaid balances by USSD (modems with balance_ussd); low ones become webhook events.
        self.balances = BalanceService(self.queue.engine, lambda: self.modems, on_event=self.webhooks.kick)
        # SIM health ([health.sim]): pauses and resumes become webhook events at once.
        self.sim_health = SimHealth(self.queue.engine, settings.health.sim, on_event=self.webhooks.kick)
        self.metrics: Any = None  # set by the API app (appliance.api.metrics) when it is built
        self.dispatcher: Dispatcher = Dispatcher(self.queue, [])
        self.node_name = settings.node.name
        # On a shared database modem names must be unique across nodes: simulated ones
        # carry the node's name.
        self.shared = self.queue.engine.dialect.name == "postgresql"
        self.node: NodeMembership | None = None
        self.work_listener: WorkListener | None = None
        self.email: Any = None  # an appliance.email.EmailService when [email] enabled (imported then)
        self.retention = Retention(self.queue.engine, settings.retention)
        health = settings.health
        self.signal_sampler = SignalSampler(self.queue.engine, lambda: self.modems, node=settings.node.name,
                                            every_s=health.signal_sample_s, keep_days=health.signal_keep_days)

    # ------------------------------------------------------------------ modems

    def _start_simulators(self) -> list[ModemConfig]:
        from appliance.modem.simulator import SimulatedModem

        sim = self.settings.simulator
        self._link_dir = tempfile.TemporaryDirectory(prefix="appliance-sim-")
        configs = []
        for i in range(self._simulate):
            kwargs = {"latency_s": sim.latency_s, **self._simulator_kwargs}
            modem = SimulatedModem(
                sim.personas[i % len(sim.personas)],
                name=f"{self.node_name}-sim{i + 1}" if self.shared else f"sim{i + 1}",
                link_dir=self._link_dir.name,
                **kwargs,
            )
            modem.start()
            self.simulators.append(modem)
            configs.append(
                ModemConfig(
                    name=modem.name,
                    port=modem.path,
                    imei=modem.imei,
                    min_interval_s=sim.min_interval_s,
                    max_parts_per_minute=sim.max_parts_per_minute,
                    max_parts_per_hour=sim.max_parts_per_hour,
                    max_parts_per_day=sim.max_parts_per_day,
                )
            )
        return configs

    def _build_modems(self) -> None:
        names = {m.name for m in self.settings.modems}
        simulated = self._start_simulators() if self._simulate else []
        clash = names & {c.name for c in simulated}
        if clash:
            raise ValueError(f"configured modem names clash with simulated ones: {sorted(clash)}")
        patterns = list(self.settings.discovery.patterns)
        if self._link_dir is not None:
            patterns.append(str(Path(self._link_dir.name) / "ttyUSB*"))
        for config in [*self.settings.modems, *simulated]:
            managed = ManagedModem(
                config,
                scan_patterns=patterns,
                on_sms=self.inbound.handle_sms,
                on_status_report=self.inbound.handle_status_report,
                on_state=self._on_modem_state,
                **self._modem_kwargs,
            )
            self.modems.append(TimedModem(managed, self._observe_send))

    def _observe_send(self, modem: str, seconds: float) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.observe_send(modem, seconds)

    def _on_modem_state(self, name: str, state: str) -> None:
        _log.info("[%s] modem state: %s", name, state)
        self.dispatcher.kick()
        if state == "online":
            self.balances.kick()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start modems, dispatcher, inbound handling and webhooks. Returns at once: modems
        come online in the background."""
        if self._started:
            return
        self._started = True
        self._build_modems()
        names = [m.name for m in self.modems]
        node_cfg = self.settings.node
        api = self.settings.api
        self.node = NodeMembership(
            self.queue, self.node_name, modems=names, lease_s=node_cfg.node_lease_s,
            beat_s=node_cfg.beat_every_s, version=__version__, api_url=f"http://{api.host}:{api.port}",
        )
        try:
            self.node.join()  # before recovery: the modems are this node's from now on
        except Exception:
            self._started = False
            for sim in self.simulators:
                sim.stop()
            raise
        for modem in self.modems:
            modem.start()
        self.dispatcher = Dispatcher(
            self.queue, self.modems, stuck_margin_s=self.settings.health.worker_stuck_margin_s,
            # One appliance recovers everything; a node of several only its own modems' work.
            recover_modems=names if self.shared else None,
            node=self.node_name, may_send=self.node.may_send if self.shared else None,
            sim_health=self.sim_health,
        )
        self.dispatcher.start()
        self.work_listener = WorkListener(self.queue.engine, self.dispatcher.kick).start()
        self.node.start()
        self.inbound.start()
        self.webhooks.start()
        self.balances.start()
        if self.settings.email.enabled:
            self._start_email()
        self.twilio.start()
        self.signal_sampler.start()
        if self.settings.retention.enabled:
            self.retention.start()
        recovery = self.dispatcher.recovery
        _log.info(
            "appliance started: %d modem(s) (%d simulated), database %s, %d message(s) recovered as unknown",
            len(self.modems), len(self.simulators), self.settings.appliance.database_url,
            len(recovery.unknown) if recovery is not None else 0,
        )

    def _start_email(self) -> None:
        from appliance.email import EmailService

        self.email = EmailService(self.settings, self.queue, self.keys, node=self.node_name)
        self.email.start()
        self.inbound.subscribe(self.email.relay.kick)
        self.sim_health.subscribe(self.email.relay.kick)  # [email] alerts_to

    def wait_online(self, timeout: float = 15.0) -> bool:
        """Wait until every modem is online (tests and the demo); False on timeout."""
        deadline = time.monotonic() + timeout
        return all(m.wait_online(max(0.0, deadline - time.monotonic())) for m in self.modems)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop in order: no new sends (in-flight ones finish), then modems, then the rest."""
        with self._stop_lock:
            if not self._started:
                return
            self._started = False
        self.dispatcher.stop(timeout)
        if self.work_listener is not None:
            self.work_listener.stop()
        if self.node is not None:
            self.node.stop()
        self.balances.stop()
        self.signal_sampler.stop()
        for modem in self.modems:
            modem.stop()
        if self.email is not None:
            self.email.stop()
        self.inbound.stop()
        self.webhooks.stop()
        self.twilio.stop()
        self.retention.stop()
        for sim in self.simulators:
            sim.stop()
        if self._link_dir is not None:
            self._link_dir.cleanup()
        self.queue.close()
        _log.info("appliance stopped")


class _JournalFormatter(logging.Formatter):
    """No time stamp (journald adds one); a ``<N>`` syslog priority prefix, which journald
    turns into the line's priority (``journalctl -p warning`` works)."""

    _PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
                 logging.DEBUG: 7}

    def format(self, record: logging.LogRecord) -> str:
        level = max((lvl for lvl in self._PRIORITY if lvl <= record.levelno), default=logging.DEBUG)
        return f"<{self._PRIORITY[level]}>{super().format(record)}"


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr): lines with time, level and logger, or,
    when ``stream`` is systemd's journal stream, no time stamp but a priority prefix."""
    from appliance.systemd import journal_stream

    target = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(target)
    if journal_stream(target):
        handler.setFormatter(_JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    return handler


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (see :func:`log_handler`); the modem name is in each
    modem line."""
    # alembic narrates every start at INFO; start-up logs the migration it ran itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[log_handler()])


def _make_server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that SIGTERM/SIGINT only stop it.

        uvicorn re-raises the signal after its own shutdown, which would kill the process
        before the dispatcher lets the in-flight AT+CMGS finish and the modems close.
        """

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return Server


def serve(settings: Settings, *, simulate: int = 0, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the appliance and its API until SIGTERM/SIGINT, then shut down cleanly.

    Start-up checks and the schema upgrade come first (:func:`appliance.startup.prepare_database`
    raises :class:`~appliance.startup.StartupRefused`); systemd is notified throughout
    (:class:`appliance.supervision.Supervisor`).
    """
    import uvicorn

    from appliance import systemd
    from appliance.api import create_app
    from appliance.queue import QueueError
    from appliance.startup import StartupRefused, prepare_database
    from appliance.supervision import Supervisor
    from appliance.web import mount_web

    server_class = _make_server_class()
    prepared = prepare_database(settings)
    try:
        appliance = Appliance(settings, simulate=simulate)
        try:
            appliance.start()
        except QueueError as exc:  # a node or modem name another running node uses
            raise StartupRefused(str(exc)) from None
        try:
            app = create_app(appliance)
            mount_web(app)
            host, port = settings.api.host, settings.api.port
            config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
            server = server_class(config)
            if on_ready is not None:
                on_ready(f"http://{host}:{port}")
            Supervisor(appliance).run_server(server)
        finally:
            systemd.notify("STOPPING=1", "STATUS=stopping: finishing sends in flight")
            appliance.stop()
    finally:
        prepared.lock.release()
