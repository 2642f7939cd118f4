"""The webhook outbox: durable rows, one per (event, receiver URL), kept until delivered.

:meth:`Outbox.pump` turns new rows of the queue into outbox rows in one transaction with its
cursors (table ``cursors``), so a crash neither loses an event nor makes it twice:

- ``inbound`` rows once handled (``handled_at`` set: their keyword actions are done) →
  event ``inbound``, id ``inb_<inbound id>``. The cursor stops before the first unhandled
  row, so a row handled late is not skipped.
- ``events`` rows of the kinds in :data:`STATUS_KINDS` → event ``status``, id ``evt_<event id>``.

Cursors start at 0: the first pump on a database turns its whole history into events.
Event ids are stable and ``(event_id, url)`` is unique, so a repeated pump is harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from appliance.db.engine import Tx, read_tx, write_tx

__all__ = ["EVENTS_CURSOR", "INBOUND_CURSOR", "STATUS_KINDS", "Outbox", "OutboxEntry", "iso"]

STATUS_KINDS = frozenset(
    {"sent", "delivered", "undelivered", "failed", "unknown", "expired", "suppressed", "cancelled"}
)
INBOUND_CURSOR = "webhooks.inbound"
EVENTS_CURSOR = "webhooks.events"


def iso(ts: float) -> str:
    """UNIX seconds as ISO 8601 UTC (``2026-01-02T03:04:05.678000Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One delivery of one event to one receiver. ``payload`` is the exact JSON body."""

    id: int
    event_id: str
    url: str
    event: str
    payload: str
    created_at: float
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    last_error: str | None


_COLS = "id, event_id, url, event, payload, created_at, attempts, next_attempt_at, delivered_at, last_error"
_INSERT = (
    "INSERT INTO webhook_outbox (event_id, url, event, payload, created_at, attempts, next_attempt_at) "
    "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT(event_id, url) DO NOTHING"
)


class Outbox:
    """The outbox table on the queue's engine (see the module doc)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # ------------------------------------------------------------------ pump

    def has_new(self) -> bool:
        """Cheap check (one read): is there anything :meth:`pump` would move?"""
        with read_tx(self.engine) as conn:
            inbound_at = _cursor(conn, INBOUND_CURSOR)
            events_at = _cursor(conn, EVENTS_CURSOR)
            handled = conn.exec_driver_sql(
                "SELECT handled_at IS NOT NULL FROM inbound WHERE id > ? ORDER BY id LIMIT 1", (inbound_at,)
            ).scalar()
            newest = conn.exec_driver_sql("SELECT MAX(id) FROM events").scalar()
        return bool(handled) or (newest is not None and newest > events_at)

    def pump(self, subscriptions: Mapping[str, Sequence[str]], *, batch: int = 500) -> int:
        """Move up to ``batch`` new rows of each source into the outbox, one row per URL
        subscribed to the event type (``{"inbound": [url, ...], "status": [...]}``).
        Returns how many outbox rows were made."""
        now = self.clock()
        made = 0
        with write_tx(self.engine) as conn:
            inbound_at = _cursor(conn, INBOUND_CURSOR)
            rows = conn.exec_driver_sql(
                "SELECT id, modem, sender, body, received_at, parts, complete, keyword, handled_at "
                "FROM inbound WHERE id > ? ORDER BY id LIMIT ?",
                (inbound_at, batch),
            ).all()
            urls = list(dict.fromkeys(subscriptions.get("inbound", ())))
            for r in rows:
                if r[8] is None:
                    break  # keyword actions pending: its event (and later ones) wait
                event_id = f"inb_{r[0]}"
                payload = _json({
                    "id": event_id, "type": "inbound", "created_at": iso(r[4]),
                    "data": {"id": r[0], "from": r[2], "body": r[3], "received_at": iso(r[4]),
                             "parts": r[5], "complete": bool(r[6]), "keyword": r[7], "modem": r[1]},
                })
                made += _insert(conn, event_id, urls, "inbound", payload, now)
                inbound_at = r[0]
            _set_cursor(conn, INBOUND_CURSOR, inbound_at)

            events_at = _cursor(conn, EVENTS_CURSOR)
            rows = conn.exec_driver_sql(
                "SELECT e.id, e.at, e.kind, e.message_id, e.modem, e.detail, m.recipient, m.error, m.modem "
                "FROM events e LEFT JOIN messages m ON m.id = e.message_id "
                "WHERE e.id > ? ORDER BY e.id LIMIT ?",
                (events_at, batch),
            ).all()
            urls = list(dict.fromkeys(subscriptions.get("status", ())))
            for r in rows:
                events_at = r[0]
                if r[2] not in STATUS_KINDS or r[3] is None or not urls:
                    continue
                detail = _detail(r[5])
                error = detail.get("error") if isinstance(detail.get("error"), str) else None
                if error is None and r[2] != "sent" and r[2] != "delivered":
                    error = r[7]
                event_id = f"evt_{r[0]}"
                payload = _json({
                    "id": event_id, "type": "status", "created_at": iso(r[1]),
                    "data": {"message_id": r[3], "to": r[6], "status": r[2], "modem": r[4] or r[8],
                             "error": error, "at": iso(r[1])},
                })
                made += _insert(conn, event_id, urls, "status", payload, now)
            _set_cursor(conn, EVENTS_CURSOR, events_at)
        return made

    # ------------------------------------------------------------------ delivery rows

    def due(self, url: str, *, now: float | None = None, limit: int = 20) -> list[OutboxEntry]:
        """Undelivered rows for ``url`` whose next attempt is due, in the order they were made."""
        now = self.clock() if now is None else now
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_COLS} FROM webhook_outbox INDEXED BY ix_webhook_outbox_due "
                "WHERE delivered_at IS NULL AND next_attempt_at <= ? AND url = ? "
                "ORDER BY id LIMIT ?",
                (now, url, limit),
            ).all()
        return [OutboxEntry(*r) for r in rows]

    def next_due(self, url: str) -> float | None:
        """When the next undelivered row for ``url`` is due (None: nothing pending)."""
        with read_tx(self.engine) as conn:
            return conn.exec_driver_sql(
                "SELECT MIN(next_attempt_at) FROM webhook_outbox WHERE delivered_at IS NULL AND url = ?", (url,)
            ).scalar()

    def mark_delivered(self, entry_id: int, *, attempts: int, at: float | None = None) -> None:
        at = self.clock() if at is None else at
        with write_tx(self.engine) as conn:
            conn.exec_driver_sql(
                "UPDATE webhook_outbox SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?",
                (at, attempts, entry_id),
            )

    def mark_failed(self, entry_id: int, *, attempts: int, next_attempt_at: float, error: str) -> None:
        """Record a failed attempt; ``next_attempt_at = inf`` parks the row (given up)."""
        with write_tx(self.engine) as conn:
            conn.exec_driver_sql(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (attempts, next_attempt_at, error[:500], entry_id),
            )

    def entries(self, *, url: str | None = None, event_id: str | None = None,
                pending: bool | None = None, limit: int = 1000) -> list[OutboxEntry]:
        """Outbox rows (oldest first), filtered by receiver, event id and delivered or not."""
        where, args = [], []
        if url is not None:
            where.append("url = ?")
            args.append(url)
        if event_id is not None:
            where.append("event_id = ?")
            args.append(event_id)
        if pending is not None:
            where.append("delivered_at IS NULL" if pending else "delivered_at IS NOT NULL")
        sql = f"SELECT {_COLS} FROM webhook_outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        with read_tx(self.engine) as conn:
            return [OutboxEntry(*r) for r in conn.exec_driver_sql(sql, tuple(args)).all()]

    def prune(self, before: float) -> int:
        """Delete rows delivered before ``before``; returns how many."""
        with write_tx(self.engine) as conn:
            return conn.exec_driver_sql(
                "DELETE FROM webhook_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?", (before,)
            ).rowcount


def _cursor(conn: Tx, name: str) -> int:
    value = conn.exec_driver_sql("SELECT value FROM cursors WHERE name = ?", (name,)).scalar()
    return int(value) if value is not None else 0


def _set_cursor(conn: Tx, name: str, value: int) -> None:
    conn.exec_driver_sql(
        "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def _insert(conn: Tx, event_id: str, urls: Sequence[str], event: str, payload: str, now: float) -> int:
    if not urls:
        return 0
    result = conn.exec_driver_sql(_INSERT, [(event_id, url, event, payload, now, now) for url in urls])
    return max(result.rowcount, 0)


def _detail(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
