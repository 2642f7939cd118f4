"""Messages, their parts as the API shows them, batches, events, modems and the send log.

Every function takes an open :class:`~appliance.db.engine.Tx`; the caller (the queue)
decides the transaction's bounds. Rows are read by column name into frozen dataclasses.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from appliance.db.engine import Tx
from appliance.db.errors import InvalidRequest, InvalidState, NotFound
from appliance.db.rows import Page, as_datetime, decode_cursor, encode_cursor, load_json
from appliance.db.states import MESSAGE_STATES, PRIORITY_NAMES, MessageStatus

__all__ = [
    "EventView",
    "MessageView",
    "ModemView",
    "NewMessage",
    "PartView",
    "ReportMatch",
    "add_event",
    "add_events",
    "batch_messages",
    "cancel_queued",
    "count_by_status",
    "ensure_modem",
    "find_batch",
    "get_message",
    "insert_batch",
    "insert_messages",
    "list_events",
    "list_messages",
    "list_modems",
    "match_status_report",
    "message_status",
    "newest_first",
    "resend",
    "send_recipients",
    "send_times",
    "upsert_modem",
]


@dataclass(frozen=True, slots=True)
class PartView:
    seq: int
    state: str
    modem: str | None
    mr: int | None
    submitted_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    report_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message as the API shows it. ``parts`` is the number of parts; ``part_details``
    is filled by :func:`get_message` (parts exist once the message was first claimed)."""

    id: int
    to: str
    body: str
    status: str
    priority: str
    encoding: str
    parts: int
    modem: str | None
    attempts: int
    resends: int
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None
    expires_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    error: str | None
    metadata: dict[str, Any] | None
    part_details: tuple[PartView, ...] = ()
    redacted_at: datetime | None = None  # the body was erased then (retention, a privacy request)

    @property
    def redacted(self) -> bool:
        """Was the body erased (it reads as empty)?"""
        return self.redacted_at is not None


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    at: datetime
    kind: str
    message_id: int | None
    part_id: int | None
    modem: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ModemView:
    name: str
    imei: str | None
    iccid: str | None
    model: str | None
    state: str | None
    updated_at: datetime
    node: str | None = None


@dataclass(frozen=True, slots=True)
class ReportMatch:
    """Which part a status report matched and what it did to the message."""

    message_id: int
    part_seq: int
    outcome: str  # "delivered" / "pending" / "failed"
    message_status: str


class NewMessage(NamedTuple):
    """The columns of one message to insert (:func:`insert_messages`)."""

    id: int
    batch_id: int
    recipient: str
    body: str
    encoding: str
    parts: int
    priority: int
    status: str
    created_at: float
    updated_at: float
    send_at: float | None
    due_at: float
    expires_at: float | None
    max_attempts: int
    error: str | None
    metadata_json: str | None = None
    modem: str | None = None
    ignore_opt_out: int = 0
    broadcast_id: int | None = None
    kind: str = "transactional"
    held: int = 0
    shift_tables: str | None = None
    attempts: int = 0
    resends: int = 0
    sticky_sim: str | None = None  # sticky sender: the SIM the recipient knows


_NEW_MESSAGE_COLUMNS = NewMessage._fields
_MSG_COLS = (
    "id, recipient, body, status, priority, encoding, parts, modem, attempts, resends, created_at, "
    "updated_at, send_at, expires_at, sent_at, delivered_at, error, metadata_json, redacted_at"
)


def _message_view(r: Any, parts: tuple[PartView, ...] = ()) -> MessageView:
    return MessageView(
        id=r["id"], to=r["recipient"], body=r["body"], status=r["status"],
        priority=PRIORITY_NAMES.get(r["priority"], str(r["priority"])), encoding=r["encoding"],
        parts=r["parts"], modem=r["modem"], attempts=r["attempts"], resends=r["resends"],
        created_at=as_datetime(r["created_at"]), updated_at=as_datetime(r["updated_at"]),  # type: ignore[arg-type]
        send_at=as_datetime(r["send_at"]), expires_at=as_datetime(r["expires_at"]),
        sent_at=as_datetime(r["sent_at"]), delivered_at=as_datetime(r["delivered_at"]),
        error=r["error"], metadata=load_json(r["metadata_json"]), part_details=parts,
        redacted_at=as_datetime(r["redacted_at"]),
    )


def new_message_views(rows: Sequence[NewMessage], priority: str) -> list[MessageView]:
    """The views of messages just inserted together (without reading them back): one
    enqueue shares its times and metadata, so each is converted once."""
    times: dict[float | None, datetime | None] = {}
    metas: dict[str | None, Any] = {}

    def dt(ts: float | None) -> datetime | None:
        if ts not in times:
            times[ts] = as_datetime(ts)
        return times[ts]

    def meta(text: str | None) -> Any:
        if text not in metas:
            metas[text] = load_json(text)
        return metas[text]

    return [
        MessageView(
            id=m.id, to=m.recipient, body=m.body, status=m.status, priority=priority, encoding=m.encoding,
            parts=m.parts, modem=None, attempts=0, resends=0, created_at=dt(m.created_at),  # type: ignore[arg-type]
            updated_at=dt(m.created_at), send_at=dt(m.send_at), expires_at=dt(m.expires_at),  # type: ignore[arg-type]
            sent_at=None, delivered_at=None, error=m.error, metadata=meta(m.metadata_json),
        )
        for m in rows
    ]


# ---------------------------------------------------------------------- events


def add_event(tx: Tx, at: float, kind: str, message_id: int | None, *, part_id: int | None = None,
              modem: str | None = None, detail: object = None) -> None:
    """Append one event (the message's history; webhooks are made from these)."""
    tx.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id, part_id, modem, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (at, kind, message_id, part_id, modem, None if detail is None else json.dumps(detail)),
    )


def add_events(tx: Tx, at: float, kind: str, message_ids: Iterable[int], detail: object = None) -> None:
    """The same event for many messages."""
    text = None if detail is None else json.dumps(detail)
    tx.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id, detail) VALUES (?, ?, ?, ?)",
        [(at, kind, mid, text) for mid in message_ids],
    )


def list_events(tx: Tx, message_id: int | None = None, *, limit: int = 1000) -> list[EventView]:
    """The history, oldest first (of one message, or the latest ``limit`` overall)."""
    if message_id is not None:
        rows = tx.exec_driver_sql(
            "SELECT id, at, kind, message_id, part_id, modem, detail FROM events "
            "WHERE message_id = ? ORDER BY id LIMIT ?", (message_id, limit)
        ).all()
    else:
        rows = tx.exec_driver_sql(
            "SELECT * FROM (SELECT id, at, kind, message_id, part_id, modem, detail FROM events "
            "ORDER BY id DESC LIMIT ?) AS latest ORDER BY id", (limit,)
        ).all()
    return [
        EventView(r["id"], as_datetime(r["at"]), r["kind"], r["message_id"], r["part_id"], r["modem"],  # type: ignore[arg-type]
                  load_json(r["detail"]))
        for r in rows
    ]


# ---------------------------------------------------------------------- batches and inserts


def find_batch(tx: Tx, idempotency_key: str) -> tuple[int, str] | None:
    """``(batch id, request fingerprint)`` of an earlier enqueue with this key."""
    row = tx.exec_driver_sql(
        "SELECT id, fingerprint FROM batches WHERE idempotency_key = ?", (idempotency_key,)
    ).first()
    return None if row is None else (row["id"], row["fingerprint"])


def batch_messages(tx: Tx, batch_id: int) -> list[MessageView]:
    rows = tx.exec_driver_sql(f"SELECT {_MSG_COLS} FROM messages WHERE batch_id = ? ORDER BY id", (batch_id,)).all()
    return [_message_view(r) for r in rows]


def insert_batch(tx: Tx, idempotency_key: str | None, fingerprint: str, now: float, count: int) -> int:
    return int(tx.exec_driver_sql(
        "INSERT INTO batches (idempotency_key, fingerprint, created_at, count) VALUES (?, ?, ?, ?) RETURNING id",
        (idempotency_key, fingerprint, now, count),
    ).scalar_one())


def reserve_message_ids(tx: Tx, n: int) -> int:
    """The first of ``n`` consecutive message ids for :func:`insert_messages`."""
    return tx.reserve_ids("messages", n)


def insert_messages(tx: Tx, rows: Sequence[NewMessage]) -> None:
    """Insert messages (ids from :func:`reserve_message_ids`) in one go."""
    tx.insert_rows("messages", _NEW_MESSAGE_COLUMNS, rows)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- reads


def get_message(tx: Tx, message_id: int) -> MessageView:
    """The message with its parts; :class:`NotFound` if there is none."""
    row = tx.exec_driver_sql(f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,)).first()
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    parts = tx.exec_driver_sql(
        "SELECT seq, state, modem, mr, submitted_at, sent_at, delivered_at, report_status, error "
        "FROM parts WHERE message_id = ? ORDER BY seq",
        (message_id,),
    ).all()
    return _message_view(row, tuple(
        PartView(p["seq"], p["state"], p["modem"], p["mr"], as_datetime(p["submitted_at"]), as_datetime(p["sent_at"]),
                 as_datetime(p["delivered_at"]), p["report_status"], p["error"])
        for p in parts
    ))


def message_status(tx: Tx, message_id: int) -> str | None:
    return tx.exec_driver_sql("SELECT status FROM messages WHERE id = ?", (message_id,)).scalar()


def newest_first(
    tx: Tx, select: str, kind: str, equal: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``select`` by descending id: rows whose columns equal the non-None
    values of ``equal``, after ``cursor`` (an opaque ``kind`` cursor); the next cursor."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest(field="limit", detail="must be between 1 and 1000")
    after = decode_cursor(kind, cursor)
    where = [f"{column} = ?" for column, value in equal.items() if value is not None]
    args: list[Any] = [value for value in equal.values() if value is not None]
    if after is not None:
        where.append("id < ?")
        args.append(int(after))
    sql = select + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    args.append(limit + 1)
    rows = tx.exec_driver_sql(sql, tuple(args)).all()
    nxt = encode_cursor(kind, rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], nxt


def list_messages(tx: Tx, *, status: str | None, to: str | None, limit: int, cursor: str | None) -> Page:
    """Messages newest first, filtered by ``status`` and/or recipient ``to``."""
    if status is not None and status not in MESSAGE_STATES:
        raise InvalidRequest(field="status", detail=f"{status!r} is not one of {', '.join(MESSAGE_STATES)}")
    rows, nxt = newest_first(tx, f"SELECT {_MSG_COLS} FROM messages", "m", {"status": status, "recipient": to},
                             limit, cursor)
    return Page([_message_view(r) for r in rows], nxt)


def count_by_status(tx: Tx) -> dict[str, int]:
    """Number of messages in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATES, 0)
    for r in tx.exec_driver_sql("SELECT status, COUNT(*) AS n FROM messages GROUP BY status"):
        counts[r["status"]] = int(r["n"])
    return counts


# ---------------------------------------------------------------------- operator actions


def cancel_queued(tx: Tx, message_id: int, now: float, *, by: str) -> None:
    """Cancel a queued message; :class:`InvalidState` once it is sending or done."""
    status = message_status(tx, message_id)
    if status is None:
        raise NotFound(f"message {message_id} does not exist")
    if status != MessageStatus.QUEUED:
        raise InvalidState(f"message {message_id} is {status}; only a queued message can be cancelled")
    tx.exec_driver_sql(
        "UPDATE messages SET status = 'cancelled', updated_at = ?, error = 'cancelled' WHERE id = ? "
        "AND status = 'queued'",
        (now, message_id),
    )
    tx.exec_driver_sql("UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", (message_id,))
    add_event(tx, now, "cancelled", message_id, detail={"by": by})


def resend(tx: Tx, message_id: int, now: float, *, by: str) -> None:
    """Queue an ``unknown`` or ``failed`` message again as a new attempt (audited): the
    previous parts (states, modem, TP-MRs) are kept in the ``resent`` event."""
    row = tx.exec_driver_sql(
        "SELECT status, send_at, created_at, expires_at, error FROM messages WHERE id = ?", (message_id,)
    ).first()
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    status = row["status"]
    if status not in (MessageStatus.UNKNOWN, MessageStatus.FAILED):
        raise InvalidState(f"message {message_id} is {status}; only unknown or failed messages can be resent")
    old_parts = tx.exec_driver_sql(
        "SELECT seq, state, modem, mr, sent_at, error FROM parts WHERE message_id = ? ORDER BY seq", (message_id,)
    ).all()
    start = row["send_at"] if row["send_at"] is not None else row["created_at"]
    validity = None if row["expires_at"] is None else row["expires_at"] - start
    tx.exec_driver_sql("DELETE FROM parts WHERE message_id = ?", (message_id,))
    tx.exec_driver_sql(
        "UPDATE messages SET status = 'queued', attempts = 0, resends = resends + 1, modem = NULL, "
        "claimed_at = NULL, concat_ref = NULL, sent_at = NULL, delivered_at = NULL, error = NULL, "
        "due_at = ?, expires_at = ?, updated_at = ? WHERE id = ?",
        (now, None if validity is None else now + validity, now, message_id),
    )
    add_event(tx, now, "resent", message_id, detail={
        "by": by, "previous_status": status, "previous_error": row["error"],
        "previous_parts": [
            {"seq": p["seq"], "state": p["state"], "modem": p["modem"], "mr": p["mr"], "sent_at": p["sent_at"],
             "error": p["error"]}
            for p in old_parts
        ],
    })


# ---------------------------------------------------------------------- modems and the send log


def send_times(tx: Tx, sim: str, *, since: float) -> list[float]:
    """When the SIM ``sim`` (its ICCID, or the modem's name when it has none) handed parts
    to the network since ``since`` — on any node (the send log is shared)."""
    return [r["at"] for r in tx.exec_driver_sql(
        "SELECT at FROM send_log WHERE sim = ? AND at > ? ORDER BY at", (sim, since)
    )]


def send_recipients(tx: Tx, sim: str, *, since: float) -> set[str]:
    """The distinct numbers the SIM ``sim`` sent parts to since ``since`` (send log rows
    whose message is still stored)."""
    return {r["recipient"] for r in tx.exec_driver_sql(
        "SELECT DISTINCT m.recipient FROM send_log s JOIN messages m ON m.id = s.message_id "
        "WHERE s.sim = ? AND s.at > ?", (sim, since)
    )}


def ensure_modem(tx: Tx, modem: str, now: float) -> None:
    tx.exec_driver_sql(
        "INSERT INTO modems (name, updated_at, next_concat_ref) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
        (modem, now, random.randrange(256)),
    )


def upsert_modem(tx: Tx, name: str, now: float, *, imei: str | None = None, iccid: str | None = None,
                 model: str | None = None, state: str | None = None, node: str | None = None) -> None:
    """Remember a modem's identity, last state and node (fields given as None are kept)."""
    ensure_modem(tx, name, now)
    tx.exec_driver_sql(
        "UPDATE modems SET imei = COALESCE(?, imei), iccid = COALESCE(?, iccid), model = COALESCE(?, model), "
        "state = COALESCE(?, state), node = COALESCE(?, node), updated_at = ? WHERE name = ?",
        (imei, iccid, model, state, node, now, name),
    )


def list_modems(tx: Tx) -> list[ModemView]:
    rows = tx.exec_driver_sql(
        "SELECT name, imei, iccid, model, state, updated_at, node FROM modems ORDER BY name"
    ).all()
    return [
        ModemView(r["name"], r["imei"], r["iccid"], r["model"], r["state"], as_datetime(r["updated_at"]),  # type: ignore[arg-type]
                  r["node"])
        for r in rows
    ]


# ---------------------------------------------------------------------- status reports


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


def same_number(a: str, b: str) -> bool:
    """E.164 vs whatever a network put in a status report (national form, no '+')."""
    da, db = _digits(a), _digits(b)
    if not da or not db:
        return False
    if da == db:
        return True
    short, long_ = sorted((da, db), key=len)
    return len(short) >= 7 and long_.endswith(short)


def match_status_report(
    tx: Tx, modem: str, reference: int, recipient: str, status: int, outcome: str, *, now: float, window_s: float
) -> ReportMatch | None:
    """Apply a status report matched on (modem, TP-MR, recipient) within ``window_s``.

    The newest matching part wins (TP-MR wraps at 256). ``outcome`` ``delivered`` delivers
    the part (the message when all parts are); ``pending`` keeps it waiting; ``failed``
    fails part and message. None (and a ``report_unmatched`` event) if no part matched.
    """
    candidates = tx.exec_driver_sql(
        "SELECT p.id, p.message_id, p.seq, m.recipient, m.status FROM parts p "
        "JOIN messages m ON m.id = p.message_id "
        "WHERE p.modem = ? AND p.mr = ? AND p.sent_at >= ? AND p.state IN ('sent', 'delivered', 'failed') "
        "ORDER BY p.sent_at DESC",
        (modem, reference % 256, now - window_s),
    ).all()
    match = next((c for c in candidates if same_number(c["recipient"], recipient)), None)
    if match is None:
        add_event(tx, now, "report_unmatched", None, modem=modem,
                  detail={"mr": reference, "recipient": recipient, "status": status})
        return None
    part_id, mid, seq, mstatus = match["id"], match["message_id"], match["seq"], match["status"]
    if outcome == "delivered":
        tx.exec_driver_sql(
            "UPDATE parts SET state = 'delivered', delivered_at = ?, report_status = ? WHERE id = ?",
            (now, status, part_id),
        )
        remaining = tx.exec_driver_sql(
            "SELECT COUNT(*) FROM parts WHERE message_id = ? AND state != 'delivered'", (mid,)
        ).scalar_one()
        if remaining == 0 and mstatus == MessageStatus.SENT:
            tx.exec_driver_sql(
                "UPDATE messages SET status = 'delivered', delivered_at = ?, updated_at = ? WHERE id = ?",
                (now, now, mid),
            )
            add_event(tx, now, "delivered", mid, modem=modem)
            mstatus = MessageStatus.DELIVERED
    elif outcome == "pending":
        tx.exec_driver_sql("UPDATE parts SET report_status = ? WHERE id = ?", (status, part_id))
    else:
        error = f"undelivered: the network reports status 0x{status:02X} for part {seq}"
        tx.exec_driver_sql(
            "UPDATE parts SET state = 'failed', report_status = ?, error = ? WHERE id = ?", (status, error, part_id)
        )
        if mstatus in (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED):
            tx.exec_driver_sql(
                "UPDATE messages SET status = 'failed', error = ?, updated_at = ? WHERE id = ?", (error, now, mid)
            )
            add_event(tx, now, "undelivered", mid, part_id=part_id, modem=modem, detail={"status": status})
            mstatus = MessageStatus.FAILED
    return ReportMatch(mid, seq, outcome, str(mstatus))
