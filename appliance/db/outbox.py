"""The webhook outbox: cursors over the sources of events, deliveries (one row per event
and receiver URL) and their leases.

Several nodes may deliver from one outbox: :func:`lease_due` hands each due row to one
node for a while (``leased_by``, ``next_attempt_at`` = the lease's end), skipping rows
another node is leasing at that moment. Making deliveries is idempotent (``(event_id,
url)`` is unique and inserts skip a conflict) and callers hold :func:`lock_cursors`
while they move a cursor, so two nodes pumping at once make each delivery once.

On PostgreSQL ids are handed out before commit, so a row with a smaller id can become
visible after a larger one. :func:`gap_mark` and :func:`writers_done` let the pump wait
until every transaction that might still fill a gap in the ids has ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from appliance.db.engine import Tx
from appliance.db.rows import matching

__all__ = [
    "InboundSource",
    "NewDelivery",
    "OutboxEntry",
    "StatusSource",
    "add_deliveries",
    "events_after",
    "first_inbound_handled",
    "gap_mark",
    "inbound_after",
    "lease_due",
    "lease_due_events",
    "list_due",
    "list_entries",
    "lock_cursors",
    "mark_delivered",
    "mark_failed",
    "newest_event_id",
    "next_due",
    "next_due_events",
    "prune_delivered",
    "read_cursor",
    "release",
    "release_node",
    "set_cursor",
    "writers_done",
]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One delivery of one event to one receiver. ``payload`` is the exact JSON body;
    ``leased_by`` is the node attempting it (until ``next_attempt_at``) or, once
    delivered, the node that delivered it."""

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
    leased_by: str | None = None


@dataclass(frozen=True, slots=True)
class InboundSource:
    """A received message as its ``inbound`` event shows it (``handled_at`` None: its
    keyword actions are still pending)."""

    id: int
    modem: str
    sender: str
    body: str
    received_at: float
    parts: int
    complete: bool
    keyword: str | None
    handled_at: float | None


@dataclass(frozen=True, slots=True)
class StatusSource:
    """An event row with its message's recipient, error and modem (None when the event
    has no message or the message is gone)."""

    id: int
    at: float
    kind: str
    message_id: int | None
    modem: str | None
    detail: str | None
    recipient: str | None
    message_error: str | None
    message_modem: str | None


class NewDelivery(NamedTuple):
    """One outbox row to make: ``event`` (``inbound``/``status``) ``event_id`` to ``url``."""

    event_id: str
    url: str
    event: str
    payload: str


_COLS = "id, event_id, url, event, payload, created_at, attempts, next_attempt_at, delivered_at, last_error, leased_by"


def _entry(r: Any) -> OutboxEntry:
    return OutboxEntry(
        id=r["id"], event_id=r["event_id"], url=r["url"], event=r["event"], payload=r["payload"],
        created_at=r["created_at"], attempts=r["attempts"], next_attempt_at=r["next_attempt_at"],
        delivered_at=r["delivered_at"], last_error=r["last_error"], leased_by=r["leased_by"],
    )


# ---------------------------------------------------------------------- cursors and sources


def lock_cursors(tx: Tx) -> None:
    """Hold the outbox's cursors until the transaction ends (one pump at a time across
    nodes; SQLite's write lock already does it)."""
    tx.lock("outbox:cursor")


def read_cursor(tx: Tx, name: str) -> int:
    """The cursor's position (0 before its first move)."""
    value = tx.exec_driver_sql("SELECT value FROM cursors WHERE name = ?", (name,)).scalar()
    return int(value) if value is not None else 0


def set_cursor(tx: Tx, name: str, value: int) -> None:
    tx.exec_driver_sql(
        "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def first_inbound_handled(tx: Tx, after: int) -> bool:
    """Is the first inbound row after id ``after`` handled (its event can be made)?"""
    return bool(tx.exec_driver_sql(
        "SELECT CASE WHEN handled_at IS NULL THEN 0 ELSE 1 END AS handled FROM inbound WHERE id > ? "
        "ORDER BY id LIMIT 1",
        (after,),
    ).scalar())


def newest_event_id(tx: Tx) -> int | None:
    value = tx.exec_driver_sql("SELECT MAX(id) AS newest FROM events").scalar()
    return None if value is None else int(value)


def inbound_after(tx: Tx, after: int, *, limit: int) -> list[InboundSource]:
    """Up to ``limit`` inbound rows after id ``after``, in id order."""
    return [
        InboundSource(
            id=r["id"], modem=r["modem"], sender=r["sender"], body=r["body"], received_at=r["received_at"],
            parts=r["parts"], complete=bool(r["complete"]), keyword=r["keyword"], handled_at=r["handled_at"],
        )
        for r in tx.exec_driver_sql(
            "SELECT id, modem, sender, body, received_at, parts, complete, keyword, handled_at "
            "FROM inbound WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
    ]


def events_after(tx: Tx, after: int, *, limit: int) -> list[StatusSource]:
    """Up to ``limit`` event rows after id ``after``, in id order, with their messages."""
    return [
        StatusSource(
            id=r["id"], at=r["at"], kind=r["kind"], message_id=r["message_id"], modem=r["modem"],
            detail=r["detail"], recipient=r["recipient"], message_error=r["message_error"],
            message_modem=r["message_modem"],
        )
        for r in tx.exec_driver_sql(
            "SELECT e.id, e.at, e.kind, e.message_id, e.modem, e.detail, m.recipient, "
            "m.error AS message_error, m.modem AS message_modem "
            "FROM events e LEFT JOIN messages m ON m.id = e.message_id "
            "WHERE e.id > ? ORDER BY e.id LIMIT ?",
            (after, limit),
        )
    ]


def gap_mark(tx: Tx) -> float | None:
    """PostgreSQL: the database's time now, to pass to :func:`writers_done` later. None on
    SQLite, where writers commit one after the other and ids never appear out of order."""
    if not tx.postgres:
        return None
    return tx.now()


def writers_done(tx: Tx, mark: float | None) -> bool:
    """Has every writing transaction on this database that began before ``mark`` (from
    :func:`gap_mark`) ended? A transaction that drew an id before ``mark`` and has not
    committed is one of them. Call it before this transaction writes anything."""
    if mark is None or not tx.postgres:
        return True
    # Other databases on the server do not count; a session whose start is unknown
    # (track_activities off) does, to be safe.
    running = tx.exec_driver_sql(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
        "AND (xact_start IS NULL OR xact_start < to_timestamp(?))",
        (mark,),
    ).scalar_one()
    return int(running) == 0


# ---------------------------------------------------------------------- deliveries


def add_deliveries(tx: Tx, rows: Sequence[NewDelivery], now: float) -> int:
    """Make the outbox rows not made yet (an existing ``(event_id, url)`` is left as it
    is); returns how many were made. They are due at once."""
    if not rows:
        return 0
    result = tx.exec_driver_sql(
        "INSERT INTO webhook_outbox (event_id, url, event, payload, created_at, attempts, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (event_id, url) DO NOTHING",
        [(r.event_id, r.url, r.event, r.payload, now, now) for r in rows],
    )
    return max(result.rowcount, 0)


def lease_due(tx: Tx, url: str, node: str, *, now: float, until: float, limit: int) -> list[OutboxEntry]:
    """Lease up to ``limit`` undelivered rows for ``url`` due at ``now`` to ``node`` until
    ``until`` (their ``next_attempt_at``); oldest first. Rows another node is leasing at
    this moment are skipped, so each row goes to one node."""
    skip = " FOR UPDATE SKIP LOCKED" if tx.postgres else ""
    rows = tx.exec_driver_sql(
        f"UPDATE webhook_outbox SET leased_by = ?, next_attempt_at = ? WHERE id IN ("
        "SELECT id FROM webhook_outbox INDEXED BY ix_webhook_outbox_due "
        f"WHERE delivered_at IS NULL AND next_attempt_at <= ? AND url = ? ORDER BY id LIMIT ?{skip}"
        f") RETURNING {_COLS}",
        (node, until, now, url, limit),
    ).all()
    return sorted((_entry(r) for r in rows), key=lambda e: e.id)


def lease_due_events(tx: Tx, events: Sequence[str], node: str, *, now: float, until: float,
                     limit: int) -> list[OutboxEntry]:
    """As :func:`lease_due`, for the rows of the event kinds ``events`` whatever their URL
    (deliveries whose receiver is named per event, e.g. a Twilio ``StatusCallback``)."""
    skip = " FOR UPDATE SKIP LOCKED" if tx.postgres else ""
    marks = ", ".join("?" for _ in events)
    rows = tx.exec_driver_sql(
        f"UPDATE webhook_outbox SET leased_by = ?, next_attempt_at = ? WHERE id IN ("
        "SELECT id FROM webhook_outbox INDEXED BY ix_webhook_outbox_due "
        f"WHERE delivered_at IS NULL AND next_attempt_at <= ? AND event IN ({marks}) ORDER BY id LIMIT ?{skip}"
        f") RETURNING {_COLS}",
        (node, until, now, *events, limit),
    ).all()
    return sorted((_entry(r) for r in rows), key=lambda e: e.id)


def next_due_events(tx: Tx, events: Sequence[str]) -> float | None:
    """When the next undelivered row of the event kinds ``events`` is due (None: none)."""
    marks = ", ".join("?" for _ in events)
    value = tx.exec_driver_sql(
        f"SELECT MIN(next_attempt_at) AS next_at FROM webhook_outbox WHERE delivered_at IS NULL AND event IN ({marks})",
        tuple(events),
    ).scalar()
    return None if value is None else float(value)


def release(tx: Tx, ids: Sequence[int], node: str, *, next_attempt_at: float) -> int:
    """Give back rows ``node`` leased and did not attempt: due again at ``next_attempt_at``
    (for any node). Rows no longer leased by ``node`` are left alone."""
    if not ids:
        return 0
    result = tx.exec_driver_sql(
        "UPDATE webhook_outbox SET leased_by = NULL, next_attempt_at = ? "
        "WHERE id = ? AND leased_by = ? AND delivered_at IS NULL",
        [(next_attempt_at, i, node) for i in ids],
    )
    return max(result.rowcount, 0)


def release_node(tx: Tx, node: str, now: float) -> int:
    """Give back every lease ``node`` still holds (it restarted: what it was attempting
    is due again at once rather than when the lease would have ended)."""
    return tx.exec_driver_sql(
        "UPDATE webhook_outbox SET leased_by = NULL, next_attempt_at = ? "
        "WHERE leased_by = ? AND delivered_at IS NULL AND next_attempt_at > ?",
        (now, node, now),
    ).rowcount


def list_due(tx: Tx, url: str, *, now: float, limit: int) -> list[OutboxEntry]:
    """Undelivered rows for ``url`` due at ``now``, oldest first (a read: nothing leased)."""
    return [_entry(r) for r in tx.exec_driver_sql(
        f"SELECT {_COLS} FROM webhook_outbox INDEXED BY ix_webhook_outbox_due "
        "WHERE delivered_at IS NULL AND next_attempt_at <= ? AND url = ? ORDER BY id LIMIT ?",
        (now, url, limit),
    )]


def next_due(tx: Tx, url: str) -> float | None:
    """When the next undelivered row for ``url`` is due (None: nothing pending)."""
    value = tx.exec_driver_sql(
        "SELECT MIN(next_attempt_at) AS next_at FROM webhook_outbox WHERE delivered_at IS NULL AND url = ?", (url,)
    ).scalar()
    return None if value is None else float(value)


def mark_delivered(tx: Tx, entry_id: int, *, attempts: int, at: float) -> None:
    """The receiver took it (the first delivery's time and attempts are kept)."""
    tx.exec_driver_sql(
        "UPDATE webhook_outbox SET delivered_at = ?, attempts = ?, last_error = NULL "
        "WHERE id = ? AND delivered_at IS NULL",
        (at, attempts, entry_id),
    )


def mark_failed(tx: Tx, entry_id: int, *, attempts: int, next_attempt_at: float, error: str,
                node: str | None = None) -> None:
    """Record a failed attempt and end the lease; ``next_attempt_at = inf`` parks the
    row. With ``node``, a row another node has leased since is left alone."""
    sql = (
        "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, leased_by = NULL "
        "WHERE id = ? AND delivered_at IS NULL"
    )
    args: tuple[Any, ...] = (attempts, next_attempt_at, error[:500], entry_id)
    if node is not None:
        sql += " AND (leased_by IS NULL OR leased_by = ?)"
        args += (node,)
    tx.exec_driver_sql(sql, args)


def list_entries(tx: Tx, *, url: str | None = None, event_id: str | None = None, pending: bool | None = None,
                 limit: int = 1000) -> list[OutboxEntry]:
    """Outbox rows (oldest first), filtered by receiver, event id and delivered or not."""
    where, args = matching(("url = ?", url), ("event_id = ?", event_id))
    if pending is not None:
        where.append("delivered_at IS NULL" if pending else "delivered_at IS NOT NULL")
    sql = f"SELECT {_COLS} FROM webhook_outbox"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    return [_entry(r) for r in tx.exec_driver_sql(sql, tuple(args))]


def prune_delivered(tx: Tx, before: float) -> int:
    """Delete rows delivered before ``before``; returns how many."""
    return tx.exec_driver_sql(
        "DELETE FROM webhook_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?", (before,)
    ).rowcount
