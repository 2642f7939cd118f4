"""The dispatcher: one worker thread per modem, sending what the queue holds.

Each worker owns one modem's sending. Work is handed out round-robin: when workers are
idle, the dispatcher walks them from a rotating cursor and claims, for each that is online
and has budget, the next message whose part count fits (:meth:`Queue.claim`, one
``BEGIN IMMEDIATE`` transaction). A worker then sends the message's parts one by one, each
paced by its SIM's :class:`SendBudget` (minimum interval, sliding minute/hour/day windows,
derived at start from the durable send log and kept in memory afterwards).

Idle workers sleep on an event: :meth:`Queue.enqueue` wakes them at once; otherwise they
wake at the next due time (``send_at``, a retry's backoff), the next budget slot or the
next expiry. :meth:`Dispatcher.stop` lets an in-flight ``AT+CMGS`` finish, gives unsent
claims back to the queue and joins the threads.

SIM health (with ``sim_health``, :mod:`appliance.queue.sim_health`): each worker feeds its send
outcomes to a :class:`SendWindow`; when it trips, the SIM is paused in the database and the
worker stops taking work (a claim handed to it but not started goes back to the queue;
messages with a part already sent through it stay pinned to it, docs/architecture.md). A
paused worker probes its modem once the cool-down is over. The pause map is read from the
database every couple of seconds (the first worker wakes for it while idle), so a resume or
pause by the command line or another node takes effect within about 2 s.

Sticky sender (``Queue.sticky_sender``): a message marked with the SIM its recipient knows
goes first on that SIM, and other modems leave it alone while that SIM *holds* (online,
not paused, not at its distinct-recipients cap, its next slot at most ``sticky_wait_s``
away), and for at most ``sticky_wait_s`` after it was due (docs/architecture.md,
"Sticky sender").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.db.errors import DatabaseUnavailable
from appliance.modem.errors import ModemDisconnected, ModemError, SendOutcomeUnknown, SendRejected
from appliance.pdu import PduError, ShiftTables, SubmitPdu, encode_submit
from appliance.queue.ratelimit import DEFAULT_WINDOWS, RateLimits, SendBudget, month_start, next_month_start
from appliance.db.sending import Claim, Recovery
from appliance.db.sticky import Sticky
from appliance.queue.sim_health import HealthRow, SendWindow, SimHealth, Trip
from appliance.queue.store import Queue

__all__ = ["Dispatcher", "SendingModem", "WorkerHealth"]

_log = logging.getLogger(__name__)

_ANY_SIZE = 255  # a claim may take a message of any size
_MAX_IDLE_S = 60.0
_MONTH_EPSILON = 1e-6  # send_times counts sends after ``since``: one at the month's first instant counts
_MAX_VALIDITY_S = 63 * 7 * 86400
_DEFAULT_SEND_TIMEOUT_S = 60.0
_DEFAULT_STUCK_MARGIN_S = 60.0
_REMOTE_SIMS_EVERY_S = 5.0  # how often the other nodes' online SIMs are read (sticky sender)
_HEALTH_REFRESH_S = 2.0  # how stale the pause map may be (a resume by the CLI or another node)
_PROBE_ALLOWED_S = 30.0


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """One worker thread as :meth:`Dispatcher.health` sees it.

    ``activity`` is what it was last doing (``idle``, ``sending``...); ``silent_s`` is how
    long ago it last reported; ``allowed_s`` how long that activity may take (its own
    timeout plus the dispatcher's margin). ``stuck`` when silent for longer than allowed.
    """

    modem: str
    alive: bool
    activity: str
    silent_s: float
    allowed_s: float

    @property
    def stuck(self) -> bool:
        return self.silent_s > self.allowed_s


class SendingModem(Protocol):
    """What the dispatcher needs of a modem (:class:`appliance.modem.managed.ManagedModem`)."""

    name: str

    @property
    def online(self) -> bool: ...

    @property
    def state(self) -> str: ...

    def wait_online(self, timeout: float) -> bool: ...

    def send_pdu(self, pdu: SubmitPdu, *, timeout: float | None = None) -> int: ...


class _Worker:
    def __init__(self, dispatcher: Dispatcher, modem: SendingModem, limits: RateLimits) -> None:
        self.dispatcher = dispatcher
        self.modem = modem
        self.name = modem.name
        self.sim = modem.name  # the send log's key for its SIM: the ICCID once the modem tells it
        self.limits = limits
        self.budget = SendBudget(limits)
        # max_recipients_per_month: the numbers this SIM texted this month, until when.
        self.recipients: set[str] | None = None
        self.recipients_until = 0.0
        self.wake = threading.Event()
        self.ready = False  # idle, online, waiting for a claim (guarded by the dispatcher lock)
        self.job: Claim | None = None
        self.was_online: bool | None = None
        self.thread = threading.Thread(target=self.run, name=f"dispatch-{self.name}", daemon=True)
        self.pause_until = 0.0  # monotonic; set after a disconnect so a dead port is not hammered
        self.holding = False  # sticky sender: others leave its sticky work alone (last seen)
        self.orphans: list[tuple[Claim, Any]] = []  # claims to give back once the database answers
        # Heartbeat (read by Dispatcher.health from other threads; plain attribute writes).
        self.last_beat = time.monotonic()
        self.expect_s = 0.0  # how long the current activity may take before the margin
        self.activity = "starting"
        health = dispatcher.sim_health
        self.window = SendWindow(health.config) if health is not None and health.config.enabled else None

    def beat(self, activity: str, expect_s: float = 0.0) -> None:
        """Report progress: starting ``activity``, which may take ``expect_s`` seconds."""
        self.activity = activity
        self.expect_s = max(0.0, expect_s)
        self.last_beat = time.monotonic()

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        d = self.dispatcher
        self.beat("starting")
        self._load_budget()
        while not d.stopping.is_set():
            try:
                self.beat("checking")
                self._release_orphans()
                if not self.modem.online:
                    self.beat("offline", 2.0)
                    self._offline()
                    continue
                d.refresh_health()
                paused = d.paused_row(self.name)
                if paused is not None:
                    d.unready(self)
                    self._note_holding()
                    self._while_paused(paused)
                    continue
                pause = self.pause_until - time.monotonic()
                if pause > 0:
                    d.unready(self)
                    self.beat("pausing", pause)
                    d.stopping.wait(pause)
                    continue
                self._note_health(True)
                self.wake.clear()
                claim = d.assign(self)
                if claim is not None:
                    chained = self.send(claim)
                    while chained is not None:  # work claimed together with the last "sent"
                        chained = self.send(chained, begun=True)
                    continue
                self._note_holding()
                idle = self._idle_timeout()
                if d.sim_health is not None and self is d.workers[0]:
                    # One idle worker keeps the pause map fresh for all (the CLI, another node).
                    idle = min(idle, _HEALTH_REFRESH_S)
                self.beat("idle", idle)
                self.wake.wait(idle)
            except DatabaseUnavailable as exc:  # e.g. PostgreSQL restarting: wait for it
                _log.warning("[%s] database unavailable, retrying in 2 s: %s", self.name, exc.reason)
                self.beat("waiting for the database", 2.0)
                d.stopping.wait(2.0)
            except Exception:  # keep the worker alive; the store holds the truth
                _log.exception("[%s] dispatcher worker error", self.name)
                self.beat("recovering", 1.0)
                d.stopping.wait(1.0)
        self.beat("stopped")
        d.unready(self)

    def _offline(self) -> None:
        d = self.dispatcher
        d.unready(self)
        self._note_health(False)
        self._note_holding()
        started = time.monotonic()
        if not self.modem.wait_online(1.0) and time.monotonic() - started < 0.5:
            d.stopping.wait(1.0)  # e.g. state "error": wait_online returns at once

    def _load_budget(self) -> None:
        """The SIM's budget from the shared send log (its parts sent on any node)."""
        d = self.dispatcher
        now = d.clock()
        times = d.queue.send_times(self.sim, since=now - max(self.limits.windows))
        self._load_recipients(now)
        if self.limits.per_month is None:
            self.budget = SendBudget(self.limits, times)
            return
        # The monthly cap: this month's parts counted once here, then kept in memory.
        start = month_start(now)
        parts = len(d.queue.send_times(self.sim, since=start - _MONTH_EPSILON))
        self.budget = SendBudget(self.limits, times, month_from=start, month_parts=parts)

    def _load_recipients(self, now: float) -> None:
        if self.limits.recipients_per_month is None:
            return
        self.recipients = self.dispatcher.queue.send_recipients(self.sim, since=month_start(now) - _MONTH_EPSILON)
        self.recipients_until = next_month_start(now)

    def allowed_recipients(self, now: float) -> set[str] | None:
        """None when any number may be texted; at the monthly cap of distinct recipients,
        the numbers already texted this month (a copy)."""
        cap = self.limits.recipients_per_month
        if cap is None or self.recipients is None:
            return None
        if now >= self.recipients_until:  # a new month
            self._load_recipients(now)
        return set(self.recipients) if len(self.recipients) >= cap else None

    def _note_health(self, online: bool) -> None:
        if self.was_online == online:
            return
        self.was_online = online
        identity: Any = getattr(self.modem, "identity", None)
        iccid = getattr(identity, "iccid", None)
        try:
            self.dispatcher.queue.upsert_modem(
                self.name,
                imei=getattr(identity, "imei", None), iccid=iccid,
                model=getattr(identity, "model", None), state=self.modem.state, node=self.dispatcher.node,
            )
            if online and isinstance(iccid, str) and iccid and iccid != self.sim:
                self.sim = iccid  # caps follow the SIM, whichever modem or node it is in
                self._load_budget()
        except Exception:
            _log.exception("[%s] could not record the modem's state", self.name)
        if online:
            _log.info("[%s] online: taking work", self.name)
            self.dispatcher.kick()  # it may take work others could not
        else:
            _log.info("[%s] offline: not taking work", self.name)

    def _note_holding(self) -> None:
        """Sticky sender: when this SIM stops holding (offline, paused, at a long cap), wake
        the others, who may now take the work sticky to it."""
        d = self.dispatcher
        if not d.queue.sticky_sender:
            return
        holds = d.holds(self, d.clock())
        if self.holding and not holds:
            d.kick(besides=self)
        self.holding = holds

    def _idle_timeout(self) -> float:
        d = self.dispatcher
        now = d.clock()
        wake_at = now + _MAX_IDLE_S
        due = d.queue.next_wakeup(self.name, sticky=d.sticky_for(self, now))
        if due is not None:
            if due > now:
                wake_at = min(wake_at, due)
            elif self.allowed_recipients(now) is not None:
                pass  # the due work may be to numbers this SIM may not text: wait for a kick
            else:
                # Work is due but did not fit: wait for the budget to grow.
                room = self.budget.room(now)
                wake_at = min(wake_at, self.budget.next_slot(now, parts=room + 1))
        return max(0.001, wake_at - now)

    # ------------------------------------------------------------------ sending

    def send(self, claim: Claim, *, begun: bool = False) -> Claim | None:
        """Send ``claim``'s parts; returns the next claim when it was taken together with the
        last part's "sent" (its first part already ``submitting``: ``begun``)."""
        d = self.dispatcher
        queue = d.queue
        validity = None
        if claim.expires_at is not None:
            left = min(_MAX_VALIDITY_S, max(300.0, claim.expires_at - d.clock()))
            validity = timedelta(seconds=left)
        try:
            tables = ShiftTables.from_key(claim.shift_tables) if claim.shift_tables else None
            pdus = encode_submit(claim.to, claim.body, concat_ref=claim.concat_ref, concat_ref_bits=8,
                                 request_status_report=True, validity=validity, shift_tables=tables)
        except PduError as exc:
            queue.part_failed(claim, claim.parts[0] if begun else None, f"cannot encode the message: {exc}")
            return None
        if len(pdus) != claim.total:
            queue.part_failed(claim, claim.parts[0] if begun else None,
                              f"the message encodes to {len(pdus)} parts, expected {claim.total}")
            return None
        for index, part in enumerate(claim.parts):
            if index == 0 and begun and part.submitted_at is not None:
                started = part.submitted_at  # committed "submitting" with the previous "sent"
            else:
                if not self._wait_for_slot():
                    self._give_back(claim, "dispatcher stopping")
                    return None
                if not self.modem.online:
                    self._give_back(claim, f"modem {self.name} went offline")
                    return None
                if not d.may_send():
                    self._give_back(claim, "this node lost contact with the shared database")
                    return None
                started = d.clock()
                self.beat("claiming")
                try:
                    verdict = queue.begin_part(claim, part, started)
                except DatabaseUnavailable as exc:
                    # Nothing was written to the modem: the claim goes back once the
                    # database answers (the part too, in case the commit did happen).
                    _log.warning("[%s] database unavailable before message %d part %d: %s",
                                 self.name, claim.message_id, part.seq, exc.reason)
                    self._give_back(claim, "database unavailable", part=part)
                    return None
                if verdict != "go":
                    _log.info("[%s] message %d not sent: %s", self.name, claim.message_id, verdict)
                    return None
            self.budget.record(started)
            if self.recipients is not None:
                self.recipients.add(claim.to)
            self.beat("sending", self._send_timeout())
            try:
                mr = self.modem.send_pdu(pdus[part.seq - 1], timeout=d.send_timeout)
            except SendOutcomeUnknown as exc:
                self._durably(queue.part_unknown, claim, part, f"no answer after the PDU was handed over: {exc}")
                self._judge(exc)
                return None
            except SendRejected as exc:
                self.budget.forget(started)
                trip = self._weigh(exc)
                if trip is not None and exc.temporary:
                    # This temporary refusal pauses the SIM: the fault is the SIM's, not the
                    # message's. It goes back without using an attempt (to another SIM unless
                    # a part left here). A definite refusal still fails the message.
                    self._give_back(claim, f"SIM {self.name} paused: {trip.reason}", part=part)
                elif exc.temporary:
                    state = self._durably(queue.part_retry, claim, part, f"temporary refusal: {exc}",
                                          forget_send=True)
                    _log.info("[%s] message %d part %d refused (%s): %s", self.name,
                              claim.message_id, part.seq, exc, state)
                else:
                    self._durably(queue.part_failed, claim, part, f"refused: {exc}")
                if trip is not None:
                    self._trip(trip)
                return None
            except ModemError as exc:
                if exc.pdu_sent:
                    self._durably(queue.part_unknown, claim, part,
                                  f"modem failed after the PDU was handed over: {exc}")
                    self._judge(exc)
                    return None
                self.budget.forget(started)
                if isinstance(exc, ModemDisconnected):
                    # Nothing left: fail over at once (another modem while no part has left).
                    self._give_back(claim, f"modem {self.name} disconnected: {exc}", part=part)
                    self.pause_until = time.monotonic() + 0.5
                else:
                    trip = self._weigh(exc)
                    if trip is not None:
                        self._give_back(claim, f"SIM {self.name} paused: {trip.reason}", part=part)
                        self._trip(trip)
                    else:
                        self._durably(queue.part_retry, claim, part, f"modem error before sending: {exc}",
                                      forget_send=True)
                return None
            except Exception as exc:  # a defect: the PDU may have left, so never resend silently
                _log.exception("[%s] unexpected error sending message %d", self.name, claim.message_id)
                self._durably(queue.part_unknown, claim, part, f"internal error while sending: {exc!r}")
                return None
            if self.window is not None:
                self._judge(None)
            self.beat("recording")
            done = d.clock()
            self.budget.move(started, done)
            room = self._chain_room(done) if part is claim.parts[-1] else 0
            if room and d.may_send():
                try:
                    chained = queue.part_sent_and_next(claim, part, mr, done, max_parts=room,
                                                       recipients=self.allowed_recipients(done),
                                                       sticky=d.sticky_for(self, done))
                except DatabaseUnavailable:
                    self._durably(queue.part_sent, claim, part, mr, done)
                    continue
                if chained is not None:
                    return chained
            else:
                self._durably(queue.part_sent, claim, part, mr, done)
        return None

    # ------------------------------------------------------------------ SIM health

    def _judge(self, failure: ModemError | None) -> None:
        """Feed one send's outcome (None: it went through) to the SIM's window; pause on a trip."""
        trip = self._weigh(failure)
        if trip is not None:
            self._trip(trip)

    def _weigh(self, failure: ModemError | None) -> Trip | None:
        """Feed one send's outcome to the SIM's window; the :class:`Trip` if it pauses the
        SIM (the caller then gives the message back before calling :meth:`_trip`)."""
        window = self.window
        if window is None:
            return None
        health = self.dispatcher.sim_health
        assert health is not None
        if failure is None and window.probation:
            window.probation = False
            self._durably(health.passed, self.name)
        return window.record(failure)

    def _trip(self, trip: Trip) -> None:
        d = self.dispatcher
        assert d.sim_health is not None
        row = self._durably(d.sim_health.trip, self.name, trip)
        if self.window is not None:
            self.window.reset()
        d.mark_paused(row)
        d.unready(self)
        d.kick()  # the others take its work

    def _while_paused(self, row: HealthRow) -> None:
        """Wait while paused; probe the modem once the cool-down is over."""
        d = self.dispatcher
        now = d.clock()
        if row.probe_at is not None and now >= row.probe_at:
            self.beat("probing", _PROBE_ALLOWED_S)
            self._probe()
            return
        wait = _HEALTH_REFRESH_S if row.probe_at is None else min(_HEALTH_REFRESH_S, max(0.01, row.probe_at - now))
        self.beat("paused", wait)
        self.wake.wait(wait)
        self.wake.clear()

    def _probe(self) -> None:
        """Does the modem answer and is it registered? Resume on probation, else pause again
        with a longer cool-down."""
        d = self.dispatcher
        assert d.sim_health is not None
        why: str | None = None
        probe = getattr(self.modem, "probe", None)
        try:
            if probe is not None:
                registration: Any = probe()
                if not getattr(registration, "registered", False):
                    why = f"not registered on a network ({getattr(registration, 'status', 'unknown')})"
            elif not self.modem.online:
                why = "the modem is offline"
        except ModemError as exc:
            why = exc.message
        if why is None:
            _log.info("[%s] probe after the cool-down: answering and registered", self.name)
            d.sim_health.resume(self.name, by="probe", probation=True)
            if self.window is not None:
                self.window.reset(probation=True)
        else:
            window = self.window
            d.sim_health.trip(self.name, Trip(f"the probe after the cool-down failed: {why}", None,
                                          window.in_row if window else 0, sum(window.recent) if window else 0,
                                          len(window.recent) if window else 0))
        d.refresh_health(force=True)

    def _durably(self, record: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record a send's outcome; while the database is away keep trying: what the modem
        answered must not be lost (a part that left taken for one that may not have).
        Given up only when the dispatcher stops: start-up recovery then makes it ``unknown``."""
        d = self.dispatcher
        while True:
            try:
                return record(*args, **kwargs)
            except DatabaseUnavailable as exc:
                _log.warning("[%s] could not record a send's outcome, the database is unavailable; "
                             "retrying: %s", self.name, exc.reason)
                self.beat("waiting for the database", 2.0)
                if d.stopping.wait(2.0):
                    raise

    def _give_back(self, claim: Claim, reason: str, *, part: Any = None) -> None:
        """Put an unsent claim back in the queue, or keep it to put back once the database
        answers again (a claim held in no worker's memory would wait for a restart)."""
        try:
            self.dispatcher.queue.release(claim, reason, part=part)
        except DatabaseUnavailable:
            self.orphans.append((claim, part))

    def _release_orphans(self) -> None:
        while self.orphans:
            claim, part = self.orphans[0]
            self.dispatcher.queue.release(claim, "the database answers again", part=part)
            self.orphans.pop(0)

    def _chain_room(self, now: float) -> int:
        """Parts the next message may have if it can go at once (0: take the normal path)."""
        d = self.dispatcher
        if d.stopping.is_set() or not self.modem.online:
            return 0
        d.refresh_health()
        if d.paused_row(self.name) is not None:
            return 0
        if self.budget.next_slot(now) > now:  # minimum interval or a full window: pace instead
            return 0
        return self.budget.room(now)

    def _wait_for_slot(self) -> bool:
        """Sleep until the budget allows one part; False if the dispatcher is stopping."""
        d = self.dispatcher
        while True:
            if d.stopping.is_set():
                return False
            now = d.clock()
            slot = self.budget.next_slot(now)
            if slot <= now:
                return True
            self.beat("pacing", slot - now)
            if d.stopping.wait(slot - now):
                return False

    def _send_timeout(self) -> float:
        """How long one ``send_pdu`` may block: the dispatcher's or the modem's timeout."""
        timeout = self.dispatcher.send_timeout or getattr(self.modem, "send_timeout", None)
        return float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else _DEFAULT_SEND_TIMEOUT_S


class Dispatcher:
    """Sends queued messages through ``modems``, one worker thread per modem.

    ``limits`` maps a modem name to its :class:`RateLimits`; by default they come from the
    modem's ``config`` (a :class:`~appliance.config.ModemConfig`) with ``windows``.
    ``recover`` runs :meth:`Queue.recover` in :meth:`start` (leave it on unless another
    component did it already in this process). ``send_timeout`` is passed to ``send_pdu``.
    ``stuck_margin_s`` is how far a worker may overrun its current wait or send (its own
    timeout) before :meth:`health` calls it stuck. ``sim_health`` (a :class:`SimHealth`) turns
    on SIM health: paused SIMs take no work (see the module doc).
    """

    def __init__(
        self,
        queue: Queue,
        modems: Sequence[SendingModem],
        *,
        limits: Mapping[str, RateLimits] | None = None,
        windows: tuple[float, float, float] = DEFAULT_WINDOWS,
        send_timeout: float | None = None,
        recover: bool = True,
        recover_modems: Sequence[str] | None = None,
        clock: Callable[[], float] | None = None,
        stuck_margin_s: float = _DEFAULT_STUCK_MARGIN_S,
        node: str | None = None,
        may_send: Callable[[], bool] | None = None,
        sim_health: SimHealth | None = None,
    ) -> None:
        names = [m.name for m in modems]
        if len(set(names)) != len(names):
            raise ValueError(f"modem names must be unique: {names}")
        self.queue = queue
        self.clock = clock or queue.clock
        self.send_timeout = send_timeout
        self.recover_on_start = recover
        self.recover_modems = recover_modems
        self.stuck_margin_s = stuck_margin_s
        self.node = node
        self.may_send: Callable[[], bool] = may_send or (lambda: True)
        self.sim_health = sim_health
        self._paused: dict[str, HealthRow] = {}
        self._health_lock = threading.Lock()
        self._health_read_at = float("-inf")  # monotonic
        self.recovery: Recovery | None = None  # what start-up recovery found
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._cursor = 0
        self._remote_sims: set[str] = set()
        self._remote_read_at = float("-inf")
        self._unsubscribe: Callable[[], None] | None = None
        self.workers: list[_Worker] = []
        for modem in modems:
            lim = (limits or {}).get(modem.name)
            if lim is None:
                config = getattr(modem, "config", None)
                lim = RateLimits.from_config(config, windows=windows) if config is not None else RateLimits(windows=windows)
            self.workers.append(_Worker(self, modem, lim))
        self._started = False

    def start(self) -> Dispatcher:
        if self._started:
            return self
        self._started = True
        if self.recover_on_start:
            self.recovery = self.queue.recover(self.recover_modems)
        self.refresh_health(force=True, first=True)
        self.stopping.clear()
        self._unsubscribe = self.queue.subscribe(self.kick)
        for w in self.workers:
            w.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work; in-flight sends finish, unsent claims go back to the queue."""
        self.stopping.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for w in self.workers:
            w.wake.set()
        deadline = time.monotonic() + timeout
        for w in self.workers:
            if w.thread.is_alive():
                w.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftovers = [w.job for w in self.workers if w.job is not None]
            for w in self.workers:
                w.job = None
        for claim in leftovers:  # handed to a worker that stopped before taking it
            try:
                self.queue.release(claim, "dispatcher stopping")
            except DatabaseUnavailable as exc:  # recovery at the next start puts it back
                _log.warning("could not give message %d back to the queue: %s", claim.message_id, exc.reason)

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kick(self, *, besides: _Worker | None = None) -> None:
        """New work may be there: wake every idle worker (but ``besides``)."""
        for w in self.workers:
            if w is not besides:
                w.wake.set()

    def health(self) -> list[WorkerHealth]:
        """Each worker's heartbeat: alive, what it is doing, whether it overran (stuck)."""
        now = time.monotonic()
        return [
            WorkerHealth(
                modem=w.name,
                alive=w.thread.is_alive(),
                activity=w.activity,
                silent_s=max(0.0, now - w.last_beat),
                allowed_s=w.expect_s + self.stuck_margin_s,
            )
            for w in self.workers
        ]

    # ------------------------------------------------------------------ SIM health

    def paused_row(self, modem: str) -> HealthRow | None:
        """``modem``'s pause as last read (None: not paused)."""
        return self._paused.get(modem)

    def paused(self) -> dict[str, HealthRow]:
        """The paused modems of this dispatcher, as last read from the database."""
        return dict(self._paused)

    def mark_paused(self, row: HealthRow) -> None:
        """A worker paused its SIM (committed): take it out of the round at once."""
        with self._health_lock:
            self._paused = {**self._paused, row.modem: row}

    def refresh_health(self, *, force: bool = False, first: bool = False) -> None:
        """Read the pause map again when it is older than a couple of seconds (or ``force``).
        A modem found resumed is woken; a failing read keeps the old map."""
        if self.sim_health is None:
            return
        if not force and time.monotonic() - self._health_read_at < _HEALTH_REFRESH_S:
            return
        if not self._health_lock.acquire(blocking=force):
            return  # another thread is reading it now
        try:
            self._health_read_at = time.monotonic()
            try:
                rows = self.sim_health.states([w.name for w in self.workers])
            except Exception as exc:  # noqa: BLE001 - e.g. the database restarting: keep what we know
                _log.warning("could not read the SIM health states: %s", exc)
                return
            paused = {name: row for name, row in rows.items() if row.paused}
            resumed = [w for w in self.workers if w.name in self._paused and w.name not in paused]
            self._paused = paused
        finally:
            self._health_lock.release()
        for w in self.workers:
            row = rows.get(w.name)
            if w.window is None or row is None or row.paused:
                continue
            if w in resumed or (first and row.probation):
                w.window.reset(probation=row.probation)
        if resumed:
            for w in resumed:
                _log.info("[%s] resumed: taking work", w.name)
            self.kick()

    def budgets(self) -> dict[str, Any]:
        """Each modem's budget as its worker sees it (:class:`BudgetView` by name)."""
        now = self.clock()
        with self._lock:
            return {w.name: w.budget.view(w.name, now) for w in self.workers}

    # ------------------------------------------------------------------ sticky sender

    def holds(self, worker: _Worker, now: float) -> bool:
        """Whether work sticky to ``worker``'s SIM waits for it: the worker runs, its modem
        is online and not paused, it may text new numbers, and its next slot is at most
        ``sticky_wait_s`` away (pacing and short windows: yes; a full day or month: no)."""
        if not worker.thread.is_alive() or not worker.modem.online or worker.pause_until > time.monotonic():
            return False
        if worker.name in self._paused:  # SIM health: its sticky work goes to the others now
            return False
        cap = worker.limits.recipients_per_month
        if cap is not None and worker.recipients is not None and len(worker.recipients) >= cap:
            return False
        return worker.budget.next_slot(now) <= now + self.queue.sticky_wait_s

    def sticky_for(self, worker: _Worker, now: float) -> Sticky | None:
        """How ``worker``'s claims treat sticky work (None: sticky sender is off)."""
        queue = self.queue
        if not queue.sticky_sender:
            return None
        holding = {w.sim for w in self.workers if w is not worker and self.holds(w, now)}
        holding |= self._other_nodes_sims()
        holding.discard(worker.sim)
        wait = queue.sticky_wait_s
        return Sticky(own=worker.sim, holding=tuple(sorted(holding)), released_before=now - wait, wait_s=wait)

    def _other_nodes_sims(self) -> set[str]:
        """Online SIMs of the other nodes sharing the database (read every few seconds).
        Their caps are not known here: their sticky work waits at most ``sticky_wait_s``."""
        if self.node is None:
            return set()
        mono = time.monotonic()
        if mono - self._remote_read_at >= _REMOTE_SIMS_EVERY_S:
            self._remote_read_at = mono
            try:
                self._remote_sims = self.queue.online_sims(besides=self.node)
            except DatabaseUnavailable:
                pass  # keep the last answer; the claim that follows will fail anyway
        return set(self._remote_sims)

    # ------------------------------------------------------------------ round-robin claims

    def unready(self, worker: _Worker) -> None:
        with self._lock:
            worker.ready = False
            job, worker.job = worker.job, None
        if job is not None:
            worker._give_back(job, f"modem {worker.name} is not available")

    def assign(self, worker: _Worker) -> Claim | None:
        """Mark ``worker`` idle, hand out work round-robin, return ``worker``'s share."""
        with self._lock:
            worker.ready = True
            if not self.stopping.is_set() and worker.job is None:
                self._assign_round()
            job, worker.job = worker.job, None
            if job is not None:
                worker.ready = False
            return job

    def _assign_round(self) -> None:
        n = len(self.workers)
        now = self.clock()
        start = self._cursor
        if not self.may_send():
            return
        for k in range(n):
            i = (start + k) % n
            w = self.workers[i]
            if not w.ready or w.job is not None or not w.modem.online or w.name in self._paused:
                continue
            room = w.budget.room(now)
            if room <= 0:
                continue
            max_parts = room if room < w.limits.smallest_cap else _ANY_SIZE
            claim = self.queue.claim(w.name, max_parts=max_parts, now=now, sim=w.sim,
                                     recipients=w.allowed_recipients(now), sticky=self.sticky_for(w, now))
            if claim is None:
                continue
            w.job = claim
            w.ready = False
            self._cursor = (i + 1) % n
            w.wake.set()
