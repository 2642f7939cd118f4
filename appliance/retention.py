"""Retention: erase old message bodies and inbound texts, prune old events and send-log rows,
and (after ``body_days`` too) the inbound webhook payloads, mails, email threads and waiting
multipart parts that hold texts; audit-trail lines after ``audit_days``.

Runs off the send path: each batch (``[retention] batch`` rows at most) is its own short
write transaction, so the dispatcher waits at most one batch for the write lock, and the run
pauses after each as long as it took (``YIELD_RATIO``), so sends keep most of their pace
(bench/retention_bench.py: 1,000,000 messages, longest transaction 20 ms on SQLite). The daemon
runs it daily in a thread (:meth:`Retention.start`); ``appliance retention run`` runs it once.
Opt-outs and the consent log are never touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from sqlalchemy.engine import Engine

from appliance.config import RetentionSection
from appliance.db import audit as audit_db
from appliance.db import retention as retention_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.queue.ratelimit import DEFAULT_WINDOWS

__all__ = ["DAY_S", "FIRST_RUN_AFTER_S", "YIELD_RATIO", "Retention", "RetentionReport"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

DAY_S = 86400.0
FIRST_RUN_AFTER_S = 300.0  # the daemon's first run: a few minutes after start, not during it
# After each transaction the run pauses this many times as long as it took (bench/retention_bench.py).
YIELD_RATIO = 1.0
# The rate caps count send-log rows this far back; they are never pruned.
CAP_HORIZON_S = max(DEFAULT_WINDOWS)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run erased or pruned (or, with ``dry_run``, would have)."""

    message_bodies: int = 0
    inbound_bodies: int = 0
    events: int = 0
    send_log: int = 0
    webhook_payloads: int = 0  # outbox rows of inbound events (they hold the text)
    emails: int = 0  # mails of the email side (answers, copies of texts)
    email_threads: int = 0
    fragments: int = 0  # parts of multipart texts whose siblings never came
    audit: int = 0
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        """The counts by kind (for printing)."""
        out = asdict(self)
        out.pop("dry_run")
        return out


class Retention:
    """The retention job over one database with the ``[retention]`` settings."""

    def __init__(self, engine: Engine, settings: RetentionSection, *,
                 clock: Callable[[], float] = time.time,
                 on_batch: Callable[[str, int, float], None] | None = None,
                 yield_ratio: float = YIELD_RATIO) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        # Told (kind, rows, seconds the transaction was open) after each batch commits:
        # bench/retention_bench.py measures the longest one with it.
        self.on_batch = on_batch
        self.yield_ratio = yield_ratio
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def cutoffs(self, now: float) -> tuple[float, float, float]:
        """(bodies before, events before, send-log rows before) as UNIX seconds."""
        s = self.settings
        logs_before = now - s.log_days * DAY_S
        return now - s.body_days * DAY_S, logs_before, min(logs_before, now - CAP_HORIZON_S)

    def audit_cutoff(self, now: float) -> float:
        """Audit-trail lines before this (UNIX seconds) are pruned."""
        return now - self.settings.audit_days * DAY_S

    def run(self, dry_run: bool = False) -> RetentionReport:
        """Erase and prune what is older than the windows; ``dry_run`` only counts."""
        now = self.clock()
        bodies_before, events_before, send_log_before = self.cutoffs(now)
        if dry_run:
            with read_tx(self.engine) as tx:
                return RetentionReport(
                    message_bodies=retention_db.count_bodies_to_erase(tx, bodies_before),
                    inbound_bodies=retention_db.count_inbound_to_erase(tx, bodies_before),
                    events=retention_db.count_events_to_prune(tx, events_before),
                    send_log=retention_db.count_send_log_to_prune(tx, send_log_before),
                    **retention_db.count_personal_to_prune(tx, bodies_before),
                    audit=audit_db.count_events_to_prune(tx, self.audit_cutoff(now)),
                    dry_run=True,
                )
        limit = self.settings.batch
        report = RetentionReport(
            message_bodies=self._windows("message_bodies", "messages", lambda tx, after, upto: (
                retention_db.erase_message_bodies_in(tx, bodies_before, now, after=after, upto=upto))),
            inbound_bodies=self._windows("inbound_bodies", "inbound", lambda tx, after, upto: (
                retention_db.erase_inbound_bodies_in(tx, bodies_before, now, after=after, upto=upto))),
            events=self._oldest_first("events", lambda tx, after: retention_db.prune_events(
                tx, events_before, limit=limit, after=after)),
            send_log=self._oldest_first("send_log", lambda tx, after: retention_db.prune_send_log(
                tx, send_log_before, limit=limit, after=after)),
            webhook_payloads=self._oldest_first("webhook_payloads", lambda tx, after: (
                retention_db.prune_inbound_webhooks(tx, bodies_before, limit=limit, after=after))),
            emails=self._oldest_first("emails", lambda tx, after: retention_db.prune_email_outbox(
                tx, bodies_before, limit=limit, after=after)),
            email_threads=self._batches("email_threads", lambda tx: retention_db.prune_email_threads(
                tx, bodies_before, limit=limit)),
            fragments=self._oldest_first("fragments", lambda tx, after: retention_db.prune_fragments(
                tx, bodies_before, limit=limit, after=after)),
            audit=self._batches("audit", lambda tx: audit_db.prune_events(tx, self.audit_cutoff(now), limit=limit)),
        )
        _log.info("retention: erased %d message bodies and %d inbound texts, pruned %d events and %d send-log rows, "
                  "%d inbound webhook payloads, %d mails, %d email threads, %d waiting parts and %d audit lines",
                  report.message_bodies, report.inbound_bodies, report.events, report.send_log,
                  report.webhook_payloads, report.emails, report.email_threads, report.fragments, report.audit)
        return report

    def _commit(self, kind: str, step: Callable[[Tx], _T], rows: Callable[[_T], int]) -> _T:
        with write_tx(self.engine) as tx:
            opened = time.perf_counter()
            result = step(tx)
        took = time.perf_counter() - opened
        if self.on_batch is not None:
            self.on_batch(kind, rows(result), took)
        if self.yield_ratio > 0:
            # Leave the database to the senders for a while: the run takes longer, the
            # sends it shares the machine with do not slow down as much.
            self._stop.wait(took * self.yield_ratio)
        return result

    def _oldest_first(self, kind: str, step: Callable[[Tx, int], retention_db.Pruned]) -> int:
        """Delete oldest-first, ``batch`` rows a transaction, each batch after the last."""
        total, after = 0, 0
        while not self._stop.is_set():
            pruned = self._commit(kind, lambda tx, a=after: step(tx, a), lambda p: p.rows)
            total += pruned.rows
            after = pruned.last_id
            if pruned.rows < self.settings.batch:
                break
        return total

    def _batches(self, kind: str, step: Callable[[Tx], int]) -> int:
        """Delete oldest-first, ``batch`` rows a transaction, until fewer are left."""
        total = 0
        while not self._stop.is_set():
            done = self._commit(kind, step, int)
            total += done
            if done < self.settings.batch:
                break
        return total

    def _windows(self, kind: str, table: str, step: Callable[[Tx, int, int], int]) -> int:
        """Walk ``table``'s ids ``batch`` at a time (erased rows stay, so a window, not a
        limit, is what keeps each transaction short)."""
        with read_tx(self.engine) as tx:
            top = retention_db.max_id(tx, table)
        total, after, size = 0, 0, self.settings.batch
        while after < top and not self._stop.is_set():
            upto = min(after + size, top)
            total += self._commit(kind, lambda tx, a=after, u=upto: step(tx, a, u), int)
            after = upto
        return total

    # ------------------------------------------------------------------ the daily thread

    def start(self, *, first_after_s: float = FIRST_RUN_AFTER_S, every_s: float = DAY_S) -> None:
        """Run daily in a daemon thread, the first time ``first_after_s`` from now."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(first_after_s, every_s),
                                        name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a run in progress ends after its current batch)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, first_after_s: float, every_s: float) -> None:
        wait = first_after_s
        while not self._stop.wait(wait):
            try:
                self.run()
            except Exception:  # a database outage: try again at the next run
                _log.exception("retention run failed")
            wait = every_s
