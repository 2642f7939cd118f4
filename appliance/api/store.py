"""Read-only queries the API and the metrics need beyond :class:`~appliance.queue.Queue`'s
methods: send-log counters, inbound and webhook totals, one opt-out, the statuses a send
request first answered with. Each is one short read transaction on the queue's engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from appliance.queue import OptOutView
from appliance.db.engine import read_tx

__all__ = ["SentCounts", "StoreStats", "WebhookFailures"]


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


class StoreStats:
    """The queries, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> int:
        """The queue depth (messages ``queued``); raises if the database is unusable."""
        with read_tx(self.engine) as tx:
            depth: int = tx.exec_driver_sql(
                "SELECT COUNT(*) FROM messages WHERE status = 'queued'"
            ).scalar_one()
        return depth

    def sent_counts(self, *, since: float) -> dict[str, SentCounts]:
        with read_tx(self.engine) as tx:
            rows = tx.exec_driver_sql(
                "SELECT modem, SUM(at >= ?), COUNT(*) FROM send_log GROUP BY modem", (since,)
            ).all()
        return {r[0]: SentCounts(int(r[1] or 0), int(r[2])) for r in rows}

    def inbound_total(self) -> int:
        with read_tx(self.engine) as tx:
            # MAX(id) is the count of rows ever stored (rowids are not reused without
            # deletes), and an index lookup instead of a scan.
            return int(tx.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM inbound").scalar_one())

    def webhook_failures(self) -> WebhookFailures:
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                "SELECT COALESCE(SUM(delivered_at IS NULL AND attempts > 0), 0), "
                "COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN attempts "
                "ELSE MAX(attempts - 1, 0) END), 0) FROM webhook_outbox"
            ).first()
        return WebhookFailures(int(row[0]), int(row[1]))

    def opt_out(self, number: str) -> OptOutView | None:
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                "SELECT number, created_at, source FROM opt_outs WHERE number = ?", (number,)
            ).first()
        if row is None:
            return None
        return OptOutView(row[0], datetime.fromtimestamp(row[1], UTC), row[2])

    def batch_exists(self, idempotency_key: str) -> bool:
        with read_tx(self.engine) as tx:
            return tx.exec_driver_sql(
                "SELECT 1 FROM batches WHERE idempotency_key = ?", (idempotency_key,)
            ).first() is not None

    def suppressed_at_enqueue(self, message_ids: Sequence[int]) -> set[int]:
        """Which of ``message_ids`` were refused at enqueue because the number had opted out
        (what the first answer to their send request said)."""
        if not message_ids:
            return set()
        with read_tx(self.engine) as tx:
            rows = tx.exec_driver_sql(
                "SELECT message_id FROM events WHERE kind = 'suppressed' AND message_id BETWEEN ? AND ? "
                "AND detail LIKE '%\"enqueue\"%'",
                (min(message_ids), max(message_ids)),
            ).all()
        wanted = set(message_ids)
        return {r[0] for r in rows if r[0] in wanted}
