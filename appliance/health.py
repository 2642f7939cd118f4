"""What "healthy" means for the running appliance, shared by ``/healthz``, the systemd
``STATUS=`` line and the watchdog.

- :func:`liveness_problems` — threads that died or overran their own timeouts (a dispatcher
  worker, a modem supervisor). The watchdog is fed only while this is empty.
- :func:`evaluate` — the full report: liveness, modems offline, a stuck queue, disk space,
  the database; plus information that is not a fault (messages recovered as ``unknown``).

A *stuck* queue is defined so that a rate-capped backlog is not one: messages due for
longer than ``queue_stuck_after_s`` that an online modem could take, while that modem has
budget left now **and** has handed nothing to the network for as long. A capped modem
keeps sending (just slowly), and one out of budget is not expected to send.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import HealthSection

__all__ = [
    "DiskSpace",
    "HealthReport",
    "disk_problem",
    "disk_space",
    "evaluate",
    "liveness_problems",
    "modem_problems",
    "node_problems",
    "paused_problems",
    "queue_depth",
    "recovered_unknown",
    "stuck_queue",
]

_log = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """Free and total bytes of the filesystem holding ``path``."""

    path: Path
    free: int
    total: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total else 0.0

    @property
    def free_mb(self) -> float:
        return self.free / MB


def disk_space(path: Path) -> DiskSpace:
    """The filesystem of ``path`` (or of its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskSpace(path, usage.free, usage.total)


def disk_problem(space: DiskSpace, limits: HealthSection) -> str | None:
    """A reason when free space is under ``min_free_disk_percent`` or ``min_free_disk_mb``."""
    if space.free_percent < limits.min_free_disk_percent or space.free_mb < limits.min_free_disk_mb:
        return (f"disk almost full: {space.free_mb:.0f} MB ({space.free_percent:.1f} %) free on the "
                f"filesystem of {space.path} (minimum {limits.min_free_disk_mb:g} MB and "
                f"{limits.min_free_disk_percent:g} %)")
    return None


def liveness_problems(dispatcher: Any, modems: Sequence[Any]) -> list[str]:
    """Dead or stuck threads: the dispatcher's workers and the modems' supervisors."""
    problems: list[str] = []
    health = getattr(dispatcher, "health", None)
    stopping = getattr(dispatcher, "stopping", None)
    if health is not None and not (stopping is not None and stopping.is_set()):
        for worker in health():
            if not worker.alive:
                problems.append(f"the dispatcher worker of modem {worker.modem} has died")
            elif worker.stuck:
                problems.append(
                    f"the dispatcher worker of modem {worker.modem} is stuck ({worker.activity} "
                    f"for {worker.silent_s:.0f} s, allowed {worker.allowed_s:.0f} s)"
                )
    for modem in modems:
        if not getattr(modem, "supervisor_alive", True):
            problems.append(f"the supervisor thread of modem {modem.name} has died")
    return problems


def modem_problems(modems: Sequence[Any]) -> list[str]:
    """No modem configured or online, and each modem that is not online, by name."""
    if not modems:
        return ["no modem is configured"]
    problems = []
    if not any(m.online for m in modems):
        problems.append("no modem is online")
    for modem in modems:
        if not modem.online:
            error = getattr(modem, "last_error", None)
            problems.append(f"modem {modem.name} is {modem.state}" + (f": {error}" if error else ""))
    return problems


def stuck_queue(engine: Any, modems: Sequence[Any], budgets: dict[str, Any], *, after_s: float,
                now: float | None = None) -> str | None:
    """A reason when due work waits with a modem able to take it that sends nothing (see
    the module doc); None otherwise. Raises if the database fails."""
    from appliance.db import stats as stats_db
    from appliance.db.engine import read_tx

    now = time.time() if now is None else now
    cutoff = now - after_s
    idle: list[tuple[str, int, float]] = []
    with read_tx(engine) as tx:
        skip_held = stats_db.has_column(tx, "messages", "held")
        for modem in modems:
            if not modem.online:
                continue
            budget = budgets.get(modem.name)
            if budget is None or min(budget.minute_left, budget.hour_left, budget.day_left) <= 0:
                continue
            if budget.next_allowed_at > now:
                continue
            backlog = stats_db.due_backlog(tx, modem.name, due_before=cutoff, skip_held=skip_held)
            if not backlog.count or backlog.oldest_due_at is None:
                continue
            last_sent = stats_db.last_send_at(tx, modem.name)
            if last_sent is not None and last_sent >= cutoff:
                continue  # it is sending: a backlog, not a stall
            idle.append((modem.name, backlog.count, backlog.oldest_due_at))
    if not idle:
        return None
    count = max(c for _, c, _ in idle)
    oldest = min(o for _, _, o in idle)
    names = ", ".join(name for name, _, _ in idle)
    return (f"queue stuck: {count} message(s) due for up to {(now - oldest) / 60:.0f} min while "
            f"{names} {'is' if len(idle) == 1 else 'are'} online with budget and sent nothing "
            f"for {after_s / 60:g} min")


@dataclass
class HealthReport:
    """``status`` is ``degraded`` when ``reasons`` is not empty; ``database_ok`` False means
    the database did not answer (``/healthz`` answers 503)."""

    reasons: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    modems_online: int = 0
    modems_total: int = 0
    queue_depth: int | None = None
    database_ok: bool = True
    disk: DiskSpace | None = None
    recovered_unknown: int = 0

    @property
    def status(self) -> str:
        return "degraded" if self.reasons else "ok"


def recovered_unknown(dispatcher: Any) -> int:
    """Messages that start-up recovery found mid-send and marked ``unknown``."""
    recovery = getattr(dispatcher, "recovery", None)
    return len(recovery.unknown) if recovery is not None else 0


def node_problems(services: Any) -> list[str]:
    """Other nodes sharing the database that went silent (several appliances)."""
    me = getattr(getattr(services.settings, "node", None), "name", None)
    problems = []
    for node in services.queue.nodes():
        if node.name == me or node.state != "silent":
            continue
        taken = f"; its work was taken over by {node.recovered_by}" if node.recovered_by else ""
        problems.append(f"node {node.name} ({node.host}) silent for {node.silent_s:.0f} s{taken}")
    return problems


def paused_problems(services: Any, *, now: float | None = None) -> tuple[list[str], set[str]]:
    """Each SIM paused by its health check or an admin (SIM health), and their names.
    Raises if the database fails."""
    from appliance.db import sim_health as health_db
    from appliance.db.engine import read_tx

    now = time.time() if now is None else now
    with read_tx(services.queue.engine) as tx:
        rows = [r for r in health_db.list_rows(tx).values() if r.paused]
    problems = []
    for row in sorted(rows, key=lambda r: r.modem):
        since = f" for {_span(now - row.paused_at)}" if row.paused_at is not None else ""
        probe = (f"; next probe in {_span(row.probe_at - now)}" if row.probe_at is not None
                 else "; an admin must resume it")
        problems.append(f"modem {row.modem} is paused{since}: {row.reason}{probe}")
    return problems, {r.modem for r in rows}


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def evaluate(services: Any, *, now: float | None = None) -> HealthReport:
    """The health of ``services`` (the running :class:`~appliance.daemon.Appliance`, or
    anything with its attributes: settings, queue, modems, dispatcher)."""
    from appliance.db.engine import POSTGRESQL, dialect
    from appliance.db.errors import DatabaseUnavailable
    from appliance.maintenance import MaintenanceError, database_path

    limits: HealthSection = getattr(services.settings, "health", None) or HealthSection()
    modems = list(services.modems)
    report = HealthReport(modems_online=sum(1 for m in modems if m.online), modems_total=len(modems))
    report.reasons += liveness_problems(services.dispatcher, modems)
    report.reasons += modem_problems(modems)
    engine = services.queue.engine
    try:
        with_depth = queue_depth(engine)
        report.queue_depth = with_depth
        paused, paused_names = paused_problems(services, now=now)
        report.reasons += paused
        # A paused SIM sends nothing on purpose: not a stuck queue.
        stuck = stuck_queue(engine, [m for m in modems if m.name not in paused_names], services.dispatcher.budgets(),
                            after_s=limits.queue_stuck_after_s, now=now)
        if stuck:
            report.reasons.append(stuck)
    except DatabaseUnavailable as exc:  # unreachable, or a server-side failure
        _log.error("health check: the database did not answer: %s", exc)
        report.reasons.append(f"the database did not answer: the {exc.engine} database: {exc.reason}")
        report.database_ok = False
        report.queue_depth = None
    except Exception as exc:  # any other failure of the store (a damaged file...) is the same fact
        _log.error("health check: the database did not answer: %s", exc)
        report.reasons.append(f"the database did not answer: {exc.__class__.__name__}: {exc}")
        report.database_ok = False
        report.queue_depth = None
    if report.database_ok:
        report.reasons += node_problems(services)
    if dialect(engine) != POSTGRESQL:  # a PostgreSQL server's disk is not this node's to watch
        try:
            report.disk = disk_space(database_path(services.settings.appliance.database_url))
        except (OSError, MaintenanceError) as exc:
            report.reasons.append(f"cannot tell the free disk space: {exc}")
        else:
            problem = disk_problem(report.disk, limits)
            if problem:
                report.reasons.append(problem)
    report.recovered_unknown = recovered_unknown(services.dispatcher)
    if report.recovered_unknown:
        report.info.append(
            f"{report.recovered_unknown} message(s) were being handed to a modem when the "
            "appliance last stopped (power cut?) and are now 'unknown': check whether the "
            "recipients got them, then resend with POST /v1/messages/{id}/resend"
        )
    return report


def queue_depth(engine: Any) -> int:
    """Messages waiting in the queue (raises if the database fails)."""
    from appliance.db import stats as stats_db
    from appliance.db.engine import read_tx

    with read_tx(engine) as tx:
        return stats_db.queue_depth(tx)
