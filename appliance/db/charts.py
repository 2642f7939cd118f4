"""What the charts draw: messages sent / delivered / failed and replies received per day.

One statement per table over a bounded window (``ix_messages_updated`` for messages: a
message sent, delivered or failed in the window was also last updated in it;
``ix_inbound_received`` for replies), bucketed by the caller's day boundaries so local
days (and their DST changes) come out right on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.db.engine import Tx

__all__ = ["DayCounts", "daily_counts"]


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One day from ``start`` (UNIX seconds) to ``end``: messages ``sent``, ``delivered``,
    ``failed`` in it and ``replies`` (inbound texts) received in it."""

    start: float
    end: float
    sent: int
    delivered: int
    failed: int
    replies: int


def daily_counts(tx: Tx, bounds: Sequence[float]) -> list[DayCounts]:
    """Counts per day for consecutive days; ``bounds`` are their n+1 ascending edges."""
    if len(bounds) < 2:
        return []
    days = list(zip(bounds[:-1], bounds[1:], strict=True))
    cols: list[str] = []
    params: list[float] = []
    for i, (start, end) in enumerate(days):
        cols.append(f"COALESCE(SUM(CASE WHEN sent_at >= ? AND sent_at < ? THEN 1 ELSE 0 END), 0) AS s{i}")
        cols.append(f"COALESCE(SUM(CASE WHEN delivered_at >= ? AND delivered_at < ? THEN 1 ELSE 0 END), 0) AS d{i}")
        cols.append(f"COALESCE(SUM(CASE WHEN status = 'failed' AND updated_at >= ? AND updated_at < ? "
                    f"THEN 1 ELSE 0 END), 0) AS f{i}")
        params += [start, end, start, end, start, end]
    row = tx.exec_driver_sql(
        f"SELECT {', '.join(cols)} FROM messages WHERE updated_at >= ?", (*params, bounds[0])
    ).first()
    rcols = [f"COALESCE(SUM(CASE WHEN received_at >= ? AND received_at < ? THEN 1 ELSE 0 END), 0) AS r{i}"
             for i in range(len(days))]
    rparams = [edge for day in days for edge in day]
    replies = tx.exec_driver_sql(
        f"SELECT {', '.join(rcols)} FROM inbound WHERE received_at >= ? AND received_at < ?",
        (*rparams, bounds[0], bounds[-1]),
    ).first()
    return [
        DayCounts(start, end, int(row[f"s{i}"]), int(row[f"d{i}"]), int(row[f"f{i}"]), int(replies[f"r{i}"]))
        for i, (start, end) in enumerate(days)
    ]
