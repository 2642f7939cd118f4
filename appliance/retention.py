"""Retention: erase old message bodies and inbound texts, prune old events, send-log rows
and audit-trail lines (``audit_days``).

Runs off the send path: each batch (``[retention] batch`` rows at most) is its own short
write transaction, so the dispatcher waits at most one batch for the write lock. The daemon
runs it daily in a thread (:meth:`Retention.start`); ``appliance retention run`` runs it once.
Opt-outs and the consent log are never touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy.engine import Engine

from appliance.config import RetentionSection
from appliance.db import audit as audit_db
from appliance.db import retention as retention_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.queue.ratelimit import DEFAULT_WINDOWS

__all__ = ["DAY_S", "FIRST_RUN_AFTER_S", "Retention", "RetentionReport"]

_log = logging.getLogger(__name__)

DAY_S = 86400.0
FIRST_RUN_AFTER_S = 300.0  # the daemon's first run: a few minutes after start, not during it
# The rate caps count send-log rows this far back; they are never pruned.
CAP_HORIZON_S = max(DEFAULT_WINDOWS)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run erased or pruned (or, with ``dry_run``, would have)."""

    message_bodies: int = 0
    inbound_bodies: int = 0
    events: int = 0
    send_log: int = 0
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
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
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
                    audit=audit_db.count_events_to_prune(tx, self.audit_cutoff(now)),
                    dry_run=True,
                )
        limit = self.settings.batch
        report = RetentionReport(
            message_bodies=self._batches(lambda tx: retention_db.erase_message_bodies(tx, bodies_before, now, limit=limit)),
            inbound_bodies=self._batches(lambda tx: retention_db.erase_inbound_bodies(tx, bodies_before, now, limit=limit)),
            events=self._batches(lambda tx: retention_db.prune_events(tx, events_before, limit=limit)),
            send_log=self._batches(lambda tx: retention_db.prune_send_log(tx, send_log_before, limit=limit)),
            audit=self._batches(lambda tx: audit_db.prune_events(tx, self.audit_cutoff(now), limit=limit)),
        )
        _log.info("retention: erased %d message bodies and %d inbound texts, pruned %d events, %d send-log rows "
                  "and %d audit lines", report.message_bodies, report.inbound_bodies, report.events,
                  report.send_log, report.audit)
        return report

    def _batches(self, step: Callable[[Tx], int]) -> int:
        total = 0
        while not self._stop.is_set():
            with write_tx(self.engine) as tx:
                done = step(tx)
            total += done
            if done < self.settings.batch:
                break
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
