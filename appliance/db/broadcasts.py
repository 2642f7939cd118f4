"""Broadcasts: the stored row, its life-cycle transitions and the counts of its messages.

The transitions (start, pause, resume, cancel) are safe when two nodes act on the same
broadcast at once: start is a conditional ``UPDATE ... WHERE status = 'draft'``; pause,
resume, cancel and reject lock the broadcast's row first (``FOR UPDATE`` on PostgreSQL, SQLite's
write lock otherwise), so they run one after the other and each sees the state the
previous one left. A broadcast ``awaiting_approval`` has no messages yet (they are made
when an admin approves it), so no node can send anything of it while it waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.db.engine import Tx
from appliance.db.errors import InvalidState, NotFound
from appliance.db.messages import add_event
from appliance.db.sending import cancel_broadcast_messages, hold_broadcast_messages
from appliance.db.states import MESSAGE_STATES

__all__ = [
    "BroadcastRecord",
    "BroadcastStats",
    "broadcast_stats",
    "cancel_broadcast",
    "get_broadcast",
    "insert_broadcast",
    "list_broadcasts",
    "mark_awaiting_approval",
    "mark_started",
    "pause_broadcast",
    "reject_broadcast",
    "resume_broadcast",
]


@dataclass(frozen=True, slots=True)
class BroadcastRecord:
    """A broadcast as stored: ``status`` is ``draft``, ``awaiting_approval``, ``running``,
    ``paused`` or ``cancelled``; times are UNIX seconds; ``priority`` is the number (0 high
    … 2 low); ``requested_by`` asked for a start that waits for approval, ``reviewed_by``
    approved or rejected it (``web:NAME`` / ``api:KEY``)."""

    id: int
    name: str
    template: str
    kind: str
    status: str
    audience_json: str
    priority: int
    send_at: float | None
    validity_s: float | None
    allow_missing: bool
    footer: str | None
    created_by: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    paused_at: float | None
    cancelled_at: float | None
    recipients: int
    parts: int
    requested_by: str | None = None
    requested_at: float | None = None
    reviewed_by: str | None = None
    reviewed_at: float | None = None


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    """Counts of the broadcast's messages by status, replies from its recipients since it
    started, and messages sent per hour (UTC hour → count)."""

    total: int
    by_status: dict[str, int]
    parts_sent: int
    replies: int
    per_hour: list[tuple[datetime, int]]

    @property
    def remaining(self) -> int:
        return self.by_status.get("queued", 0) + self.by_status.get("sending", 0)

    @property
    def done(self) -> int:
        return self.total - self.remaining


_COLS = (
    "id, name, template, kind, status, audience_json, priority, send_at, validity_s, allow_missing, footer, "
    "created_by, created_at, updated_at, started_at, paused_at, cancelled_at, recipients, parts, "
    "requested_by, requested_at, reviewed_by, reviewed_at"
)


def _record(r: Any) -> BroadcastRecord:
    return BroadcastRecord(
        id=r["id"], name=r["name"], template=r["template"], kind=r["kind"], status=r["status"],
        audience_json=r["audience_json"], priority=r["priority"], send_at=r["send_at"],
        validity_s=r["validity_s"], allow_missing=bool(r["allow_missing"]), footer=r["footer"],
        created_by=r["created_by"], created_at=r["created_at"], updated_at=r["updated_at"],
        started_at=r["started_at"], paused_at=r["paused_at"], cancelled_at=r["cancelled_at"],
        recipients=r["recipients"], parts=r["parts"], requested_by=r["requested_by"],
        requested_at=r["requested_at"], reviewed_by=r["reviewed_by"], reviewed_at=r["reviewed_at"],
    )


def insert_broadcast(
    tx: Tx, *, name: str, template: str, kind: str, audience_json: str, priority: int, send_at: float | None,
    validity_s: float | None, allow_missing: bool, created_by: str | None, now: float,
) -> int:
    """Store a draft; returns its id."""
    return int(tx.exec_driver_sql(
        "INSERT INTO broadcasts (name, template, kind, status, audience_json, priority, send_at, validity_s, "
        "allow_missing, created_by, created_at, updated_at, recipients, parts) "
        "VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, 0, 0) RETURNING id",
        (name, template, kind, audience_json, priority, send_at, validity_s, int(allow_missing), created_by,
         now, now),
    ).scalar_one())


def get_broadcast(tx: Tx, broadcast_id: int) -> BroadcastRecord:
    """The stored broadcast; :class:`NotFound` if there is none."""
    row = tx.exec_driver_sql(f"SELECT {_COLS} FROM broadcasts WHERE id = ?", (broadcast_id,)).first()
    if row is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    return _record(row)


def list_broadcasts(tx: Tx, *, limit: int) -> list[BroadcastRecord]:
    """The newest ``limit`` broadcasts, newest first."""
    return [_record(r) for r in tx.exec_driver_sql(
        f"SELECT {_COLS} FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,)
    )]


def mark_started(
    tx: Tx, broadcast_id: int, now: float, *, batch_id: int, recipients: int, parts: int, footer: str | None,
    allow_missing: bool, approved_by: str | None = None,
) -> None:
    """A draft becomes ``running`` (its messages go in in the same transaction); with
    ``approved_by``, a broadcast ``awaiting_approval`` does, unless ``approved_by`` is who
    asked for it. :class:`InvalidState` when it is not (or no longer) in that state: started,
    approved or cancelled meanwhile, perhaps by another node."""
    if approved_by is None:
        changed = tx.exec_driver_sql(
            "UPDATE broadcasts SET status = 'running', started_at = ?, updated_at = ?, batch_id = ?, "
            "recipients = ?, parts = ?, footer = ?, allow_missing = ? WHERE id = ? AND status = 'draft'",
            (now, now, batch_id, recipients, parts, footer, int(allow_missing), broadcast_id),
        ).rowcount
    else:
        changed = tx.exec_driver_sql(
            "UPDATE broadcasts SET status = 'running', started_at = ?, updated_at = ?, batch_id = ?, "
            "recipients = ?, parts = ?, footer = ?, allow_missing = ?, reviewed_by = ?, reviewed_at = ? "
            "WHERE id = ? AND status = 'awaiting_approval' AND requested_by IS NOT NULL AND requested_by != ?",
            (now, now, batch_id, recipients, parts, footer, int(allow_missing), approved_by, now, broadcast_id,
             approved_by),
        ).rowcount
    if not changed:
        raise InvalidState(f"broadcast {broadcast_id} was already started (or cancelled)")


def mark_awaiting_approval(
    tx: Tx, broadcast_id: int, now: float, *, requested_by: str, recipients: int, parts: int,
    allow_missing: bool,
) -> None:
    """A draft waits for an admin's approval (no message is made until then);
    :class:`InvalidState` when it is no longer a draft."""
    changed = tx.exec_driver_sql(
        "UPDATE broadcasts SET status = 'awaiting_approval', requested_by = ?, requested_at = ?, updated_at = ?, "
        "recipients = ?, parts = ?, allow_missing = ? WHERE id = ? AND status = 'draft'",
        (requested_by, now, now, recipients, parts, int(allow_missing), broadcast_id),
    ).rowcount
    if not changed:
        raise InvalidState(f"broadcast {broadcast_id} was already started (or cancelled)")


def reject_broadcast(tx: Tx, broadcast_id: int, now: float, *, by: str) -> None:
    """A broadcast awaiting approval is refused: it becomes ``cancelled`` (it has no
    messages). :class:`InvalidState` unless it is awaiting approval."""
    _lock_status(tx, broadcast_id, ("awaiting_approval",), "rejected")
    tx.exec_driver_sql(
        "UPDATE broadcasts SET status = 'cancelled', cancelled_at = ?, updated_at = ?, reviewed_by = ?, "
        "reviewed_at = ? WHERE id = ?",
        (now, now, by, now, broadcast_id),
    )


def _lock_status(tx: Tx, broadcast_id: int, allowed: tuple[str, ...], verb: str) -> str:
    """The broadcast's status, its row locked until the transaction ends; refused unless
    the status is one of ``allowed``."""
    lock = " FOR UPDATE" if tx.postgres else ""
    status = tx.exec_driver_sql(f"SELECT status FROM broadcasts WHERE id = ?{lock}", (broadcast_id,)).scalar()
    if status is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    if status not in allowed:
        raise InvalidState(f"broadcast {broadcast_id} is {status}; only a {' or '.join(allowed)} one can be {verb}")
    return str(status)


def pause_broadcast(tx: Tx, broadcast_id: int, now: float) -> None:
    """A running broadcast becomes ``paused``: its messages not yet claimed are held
    (those sending finish). :class:`InvalidState` unless it is running."""
    _lock_status(tx, broadcast_id, ("running",), "paused")
    hold_broadcast_messages(tx, broadcast_id, held=True)
    tx.exec_driver_sql(
        "UPDATE broadcasts SET status = 'paused', paused_at = ?, updated_at = ? WHERE id = ?",
        (now, now, broadcast_id),
    )
    add_event(tx, now, "broadcast_paused", None, detail={"broadcast_id": broadcast_id})


def resume_broadcast(tx: Tx, broadcast_id: int, now: float) -> None:
    """A paused broadcast runs again: its held messages may be claimed.
    :class:`InvalidState` unless it is paused."""
    _lock_status(tx, broadcast_id, ("paused",), "resumed")
    hold_broadcast_messages(tx, broadcast_id, held=False)
    tx.exec_driver_sql(
        "UPDATE broadcasts SET status = 'running', paused_at = NULL, updated_at = ? WHERE id = ?",
        (now, broadcast_id),
    )
    add_event(tx, now, "broadcast_resumed", None, detail={"broadcast_id": broadcast_id})


def cancel_broadcast(tx: Tx, broadcast_id: int, now: float, *, by: str) -> None:
    """Cancel a draft, running or paused broadcast and every message of it still queued
    (those sending finish). :class:`InvalidState` once cancelled."""
    _lock_status(tx, broadcast_id, ("draft", "awaiting_approval", "running", "paused"), "cancelled")
    tx.exec_driver_sql(
        "UPDATE broadcasts SET status = 'cancelled', cancelled_at = ?, updated_at = ? WHERE id = ?",
        (now, now, broadcast_id),
    )
    cancel_broadcast_messages(tx, broadcast_id, now, by=by)


def broadcast_stats(
    tx: Tx, broadcast_id: int, *, started_at: float | None, replies: bool = True, hours: bool = True,
) -> BroadcastStats:
    """Counts of the broadcast's messages; ``replies`` counts inbound messages from its
    recipients since ``started_at``; ``hours=False`` leaves ``per_hour`` empty (the
    costliest count)."""
    by_status = dict.fromkeys(MESSAGE_STATES, 0)
    for r in tx.exec_driver_sql(
        "SELECT status, COUNT(*) AS n FROM messages WHERE broadcast_id = ? GROUP BY status", (broadcast_id,)
    ):
        by_status[r["status"]] = int(r["n"])
    parts_sent = tx.exec_driver_sql(
        "SELECT COALESCE(SUM(parts), 0) AS n FROM messages "
        "WHERE broadcast_id = ? AND status IN ('sent', 'delivered')",
        (broadcast_id,),
    ).scalar_one()
    per_hour: list[tuple[datetime, int]] = []
    if hours:
        # The UTC hour of each send: whole hours since the epoch (times are positive, so
        # SQLite's truncating CAST and PostgreSQL's floor agree).
        hour = "floor(sent_at / 3600)" if tx.postgres else "CAST(sent_at / 3600 AS INTEGER)"
        per_hour = [
            (datetime.fromtimestamp(int(r["h"]) * 3600, UTC), int(r["n"]))
            for r in tx.exec_driver_sql(
                f"SELECT {hour} AS h, COUNT(*) AS n FROM messages "
                f"WHERE broadcast_id = ? AND sent_at IS NOT NULL GROUP BY {hour} ORDER BY h",
                (broadcast_id,),
            )
        ]
    got_replies = 0
    if replies and started_at is not None:
        # Per reply since the start, is its sender a recipient? One lookup in the
        # recipient index each ("sender IN (every recipient)" built a 100,000-row list on
        # every call: 64 ms). The unary + keeps SQLite from walking the broadcast index
        # instead, once per reply (seconds).
        got_replies = tx.exec_driver_sql(
            "SELECT COUNT(*) AS n FROM inbound i WHERE i.received_at >= ? AND EXISTS "
            "(SELECT 1 FROM messages m WHERE m.recipient = i.sender AND +m.broadcast_id = ?)",
            (started_at, broadcast_id),
        ).scalar_one()
    return BroadcastStats(
        total=sum(by_status.values()), by_status=by_status, parts_sent=int(parts_sent), replies=int(got_replies),
        per_hour=per_hour,
    )
