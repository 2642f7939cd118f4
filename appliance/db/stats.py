"""Read-side statistics: the dashboard's counts, the metrics' counters, the health checks'
queries and the database checks maintenance runs (integrity, schema revision).

Every function takes an open :class:`~appliance.db.engine.Tx` (a read transaction is
enough) and answers the same on SQLite and PostgreSQL; the few statements that differ
(``PRAGMA``, the catalogue) branch on ``tx.dialect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.db.consent import OptOutView
from appliance.db.engine import Tx
from appliance.db.rows import as_datetime

__all__ = [
    "DueBacklog",
    "IntegrityReport",
    "ProblemMessage",
    "SentCounts",
    "TodayCounts",
    "WebhookFailures",
    "batch_exists",
    "broadcast_problems",
    "check_integrity",
    "count_messages",
    "due_backlog",
    "get_opt_out",
    "has_column",
    "inbound_total",
    "last_send_at",
    "queue_depth",
    "schema_revision",
    "sent_counts",
    "suppressed_at_enqueue",
    "table_exists",
    "today_counts",
    "webhook_failures",
]


@dataclass(frozen=True, slots=True)
class SentCounts:
    """Parts a modem handed to the network: since ``since`` and ever (from the send log)."""

    since: int
    total: int


@dataclass(frozen=True, slots=True)
class WebhookFailures:
    """``failing``: undelivered outbox rows with at least one failed attempt;
    ``failed_attempts``: failed attempts over every row still in the outbox."""

    failing: int
    failed_attempts: int


@dataclass(frozen=True, slots=True)
class TodayCounts:
    """Messages waiting now (``queued``, ``sending``) and what happened since a moment:
    parts of messages ``sent`` / ``delivered``, messages ``failed`` / ``suppressed``,
    replies ``received``."""

    queued: int
    sending: int
    sent: int
    delivered: int
    failed: int
    suppressed: int
    received: int


@dataclass(frozen=True, slots=True)
class DueBacklog:
    """Queued messages a modem could take that have been due since before a cutoff."""

    count: int
    oldest_due_at: float | None


@dataclass(frozen=True, slots=True)
class ProblemMessage:
    """A message of a broadcast that failed, expired or whose outcome is unknown."""

    id: int
    recipient: str
    status: str
    error: str | None


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What :func:`check_integrity` found: ``problems`` (empty when sound) and the schema
    revision the database is at (None: no appliance schema, or unreadable)."""

    problems: tuple[str, ...] = ()
    revision: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------- queue and metrics


def queue_depth(tx: Tx) -> int:
    """Messages waiting to be sent (status ``queued``, held ones included)."""
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM messages WHERE status = 'queued'").first()["n"])


def sent_counts(tx: Tx, *, since: float) -> dict[str, SentCounts]:
    """Per modem: parts handed to the network since ``since`` and in total."""
    rows = tx.exec_driver_sql(
        "SELECT modem, SUM(CASE WHEN at >= ? THEN 1 ELSE 0 END) AS recent, COUNT(*) AS total "
        "FROM send_log GROUP BY modem",
        (since,),
    ).all()
    return {r["modem"]: SentCounts(int(r["recent"] or 0), int(r["total"])) for r in rows}


def inbound_total(tx: Tx) -> int:
    """Received SMS ever stored (inbound rows are never deleted)."""
    if tx.postgres:
        # A sequence also advances for an insert that hit ON CONFLICT (the same PDU read
        # twice), so MAX(id) would overcount: count the rows (an index-only scan).
        sql = "SELECT COUNT(*) AS n FROM inbound"
    else:
        # Rowids are handed out as MAX(id) + 1 and rows are never deleted: MAX(id) is the
        # count, read from the end of the primary key instead of a scan.
        sql = "SELECT COALESCE(MAX(id), 0) AS n FROM inbound"
    return int(tx.exec_driver_sql(sql).first()["n"])


def webhook_failures(tx: Tx) -> WebhookFailures:
    """Failing deliveries and failed attempts in the webhook outbox (a delivered row's
    attempts but the last one failed)."""
    row = tx.exec_driver_sql(
        "SELECT COALESCE(SUM(CASE WHEN delivered_at IS NULL AND attempts > 0 THEN 1 ELSE 0 END), 0) AS failing, "
        "COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN attempts "
        "WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0) AS failed_attempts FROM webhook_outbox"
    ).first()
    return WebhookFailures(int(row["failing"]), int(row["failed_attempts"]))


def get_opt_out(tx: Tx, number: str) -> OptOutView | None:
    """The suppression-list entry of ``number`` (None when it is not opted out)."""
    row = tx.exec_driver_sql(
        "SELECT number, created_at, source FROM opt_outs WHERE number = ?", (number,)
    ).first()
    if row is None:
        return None
    return OptOutView(row["number"], as_datetime(row["created_at"]), row["source"])  # type: ignore[arg-type]


def batch_exists(tx: Tx, idempotency_key: str) -> bool:
    """Whether an enqueue with this idempotency key was already stored."""
    return tx.exec_driver_sql(
        "SELECT 1 AS found FROM batches WHERE idempotency_key = ?", (idempotency_key,)
    ).first() is not None


def suppressed_at_enqueue(tx: Tx, message_ids: Sequence[int]) -> set[int]:
    """Which of ``message_ids`` were refused at enqueue because the number had opted out
    (what the first answer to their send request said)."""
    if not message_ids:
        return set()
    rows = tx.exec_driver_sql(
        "SELECT message_id FROM events WHERE kind = 'suppressed' AND message_id BETWEEN ? AND ? "
        "AND detail LIKE '%\"enqueue\"%'",
        (min(message_ids), max(message_ids)),
    ).all()
    wanted = set(message_ids)
    return {r["message_id"] for r in rows if r["message_id"] in wanted}


# ---------------------------------------------------------------------- dashboard and pages


def today_counts(tx: Tx, *, since: float) -> TodayCounts:
    """Messages waiting now, and sent / delivered / failed / suppressed / received since
    ``since`` (each an index read: the status index for waiting, ``ix_messages_updated``
    for the rest, since a message sent or delivered since then was also updated since)."""
    waiting = {
        r["status"]: int(r["n"]) for r in tx.exec_driver_sql(
            "SELECT status, COUNT(*) AS n FROM messages WHERE status IN ('queued', 'sending') GROUP BY status"
        )
    }
    row = tx.exec_driver_sql(
        "SELECT COALESCE(SUM(CASE WHEN sent_at >= ? THEN 1 ELSE 0 END), 0) AS sent, "
        "COALESCE(SUM(CASE WHEN delivered_at >= ? THEN 1 ELSE 0 END), 0) AS delivered, "
        "COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, "
        "COALESCE(SUM(CASE WHEN status = 'suppressed' THEN 1 ELSE 0 END), 0) AS suppressed "
        "FROM messages WHERE updated_at >= ?",
        (since, since, since),
    ).first()
    received = tx.exec_driver_sql(
        "SELECT COUNT(*) AS n FROM inbound WHERE received_at >= ?", (since,)
    ).first()["n"]
    return TodayCounts(
        queued=waiting.get("queued", 0), sending=waiting.get("sending", 0), sent=int(row["sent"]),
        delivered=int(row["delivered"]), failed=int(row["failed"]), suppressed=int(row["suppressed"]),
        received=int(received),
    )


def broadcast_problems(tx: Tx, broadcast_id: int, *, limit: int = 50) -> list[ProblemMessage]:
    """The first ``limit`` messages of a broadcast that failed, expired or are unknown."""
    rows = tx.exec_driver_sql(
        "SELECT id, recipient, status, error FROM messages WHERE broadcast_id = ? "
        "AND status IN ('failed', 'unknown', 'expired') ORDER BY id LIMIT ?",
        (broadcast_id, limit),
    ).all()
    return [ProblemMessage(r["id"], r["recipient"], r["status"], r["error"]) for r in rows]


# ---------------------------------------------------------------------- health


def due_backlog(tx: Tx, modem: str, *, due_before: float, skip_held: bool = True) -> DueBacklog:
    """Queued messages due before ``due_before`` that ``modem`` could take (pinned to it
    or to none); ``skip_held=False`` for a schema without the ``held`` column."""
    held = " AND held = 0" if skip_held else ""
    row = tx.exec_driver_sql(
        "SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM messages WHERE status = 'queued' AND due_at <= ? "
        f"AND (modem IS NULL OR modem = ?){held}",
        (due_before, modem),
    ).first()
    oldest = row["oldest"]
    return DueBacklog(int(row["n"]), None if oldest is None else float(oldest))


def last_send_at(tx: Tx, modem: str) -> float | None:
    """When ``modem`` last handed a part to the network (None: never)."""
    at = tx.exec_driver_sql("SELECT MAX(at) AS last_at FROM send_log WHERE modem = ?", (modem,)).first()["last_at"]
    return None if at is None else float(at)


def table_exists(tx: Tx, table: str) -> bool:
    if tx.postgres:
        sql = ("SELECT 1 AS found FROM information_schema.tables "
               "WHERE table_schema = current_schema() AND table_name = ?")
    else:
        sql = "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?"
    return tx.exec_driver_sql(sql, (table,)).first() is not None


def has_column(tx: Tx, table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (a schema older than the code may lack it)."""
    if tx.postgres:
        sql = ("SELECT 1 AS found FROM information_schema.columns "
               "WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?")
    else:
        sql = "SELECT 1 AS found FROM pragma_table_info(?) WHERE name = ?"
    return tx.exec_driver_sql(sql, (table, column)).first() is not None


# ---------------------------------------------------------------------- database checks


def schema_revision(tx: Tx) -> str | None:
    """The alembic revision the database is at (None: no appliance schema yet)."""
    if not table_exists(tx, "alembic_version"):
        return None
    row = tx.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row["version_num"])


def check_integrity(tx: Tx, *, quick: bool = False) -> IntegrityReport:
    """SQLite: ``PRAGMA integrity_check`` (or the faster ``quick_check``), then the schema
    revision when the file is sound. PostgreSQL keeps its own pages consistent: the
    check is that the server answers, and the schema revision."""
    if tx.postgres:
        tx.exec_driver_sql("SELECT 1 AS ok").first()
        return IntegrityReport((), schema_revision(tx))
    pragma = "quick_check" if quick else "integrity_check"
    lines = tuple(str(r[pragma]) for r in tx.exec_driver_sql(f"PRAGMA {pragma}").all())
    if lines != ("ok",):
        return IntegrityReport(lines, None)
    return IntegrityReport((), schema_revision(tx))


def count_messages(tx: Tx) -> int:
    """Messages stored (0 when the database has no appliance schema)."""
    if not table_exists(tx, "messages"):
        return 0
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM messages").first()["n"])
