"""Read-only queries the API and the metrics need beyond :class:`~appliance.queue.Queue`'s
methods: send-log counters, inbound and webhook totals, one opt-out, the statuses a send
request first answered with. Each is one short read transaction on the queue's engine
(the SQL is in :mod:`appliance.db.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from appliance.db import stats as stats_db
from appliance.db.consent import OptOutView
from appliance.db.engine import read_tx
from appliance.db.stats import SentCounts, WebhookFailures

__all__ = ["SentCounts", "StoreStats", "WebhookFailures"]


class StoreStats:
    """The queries, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> int:
        """The queue depth (messages ``queued``); raises if the database is unusable."""
        with read_tx(self.engine) as tx:
            return stats_db.queue_depth(tx)

    def sent_counts(self, *, since: float) -> dict[str, SentCounts]:
        with read_tx(self.engine) as tx:
            return stats_db.sent_counts(tx, since=since)

    def inbound_total(self) -> int:
        with read_tx(self.engine) as tx:
            return stats_db.inbound_total(tx)

    def webhook_failures(self) -> WebhookFailures:
        with read_tx(self.engine) as tx:
            return stats_db.webhook_failures(tx)

    def opt_out(self, number: str) -> OptOutView | None:
        with read_tx(self.engine) as tx:
            return stats_db.get_opt_out(tx, number)

    def batch_exists(self, idempotency_key: str) -> bool:
        with read_tx(self.engine) as tx:
            return stats_db.batch_exists(tx, idempotency_key)

    def suppressed_at_enqueue(self, message_ids: Sequence[int]) -> set[int]:
        """Which of ``message_ids`` were refused at enqueue because the number had opted out
        (what the first answer to their send request said)."""
        with read_tx(self.engine) as tx:
            return stats_db.suppressed_at_enqueue(tx, message_ids)
