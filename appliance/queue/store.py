"""The durable queue's API: :class:`Queue`.

The REST layer calls ``enqueue``, ``get``, ``list``, ``cancel``, ``resend``, ``stats``,
``budget``, the inbound and opt-out methods and ``apply_status_report``; the dispatcher
calls ``recover``, ``claim`` and the ``part_*`` transitions. Every method is one short
transaction; writes use ``BEGIN IMMEDIATE``. Phone numbers arrive already in E.164.
Times are UNIX seconds in the database and timezone-aware UTC datetimes in the views.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from appliance.pdu import PduError, plan
from appliance.queue import scheduler
from appliance.queue.db import Tx, make_engine, migrate, read_tx, write_tx
from appliance.queue.errors import DuplicateIdempotencyKey, InvalidRequest, InvalidState, NotFound
from appliance.queue.quiet import QuietHours
from appliance.queue.ratelimit import BudgetView, RateLimits, SendBudget
from appliance.queue.scheduler import PRIORITIES, PRIORITY_NAMES, Backoff, Claim, ClaimedPart, Recovery

__all__ = [
    "EventView",
    "InboundFragmentView",
    "InboundView",
    "MessageView",
    "ModemView",
    "OptOutView",
    "Page",
    "PartView",
    "Queue",
    "ReportMatch",
    "StoredInbound",
]

_log = logging.getLogger(__name__)

DEFAULT_REPORT_WINDOW_S = 72 * 3600.0
EXPIRY_SWEEP_S = 1.0


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | float | int | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


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
    is filled by :meth:`Queue.get` (parts exist once the message was first claimed)."""

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


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a newest-first listing; pass ``next_cursor`` to get the next one."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class InboundView:
    id: int
    modem: str
    sender: str
    body: str
    received_at: datetime
    parts: int
    metadata: dict[str, Any] | None
    complete: bool = True  # False: parts were missing when the reassembly timeout passed
    keyword: str | None = None  # stop / start / help when the text was one


@dataclass(frozen=True, slots=True)
class OptOutView:
    number: str
    created_at: datetime
    source: str


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


@dataclass(frozen=True, slots=True)
class ReportMatch:
    """Which part a status report matched and what it did to the message."""

    message_id: int
    part_seq: int
    outcome: str  # "delivered" / "pending" / "failed"
    message_status: str


_MSG_COLS = (
    "id, recipient, body, status, priority, encoding, parts, modem, attempts, resends, created_at, "
    "updated_at, send_at, expires_at, sent_at, delivered_at, error, metadata_json"
)
_INSERT_MSG = (
    "INSERT INTO messages (id, batch_id, recipient, body, encoding, parts, priority, status, created_at, "
    "updated_at, send_at, due_at, expires_at, attempts, max_attempts, resends, error, metadata_json, "
    "modem, ignore_opt_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)"
)


def _message_view(r: Sequence[Any], parts: tuple[PartView, ...] = ()) -> MessageView:
    return MessageView(
        id=r[0], to=r[1], body=r[2], status=r[3], priority=PRIORITY_NAMES.get(r[4], str(r[4])),
        encoding=r[5], parts=r[6], modem=r[7], attempts=r[8], resends=r[9],
        created_at=_dt(r[10]), updated_at=_dt(r[11]),  # type: ignore[arg-type]
        send_at=_dt(r[12]), expires_at=_dt(r[13]), sent_at=_dt(r[14]), delivered_at=_dt(r[15]),
        error=r[16], metadata=json.loads(r[17]) if r[17] else None, part_details=parts,
    )


def _encode_cursor(kind: str, key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, key]).encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_kind, key = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("cursor is not one this server handed out; start again without it") from exc
    if got_kind != kind:
        raise InvalidRequest("cursor belongs to a different listing; start again without it")
    return key


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


def _same_number(a: str, b: str) -> bool:
    """E.164 vs whatever a network put in a status report (national form, no '+')."""
    da, db = _digits(a), _digits(b)
    if not da or not db:
        return False
    if da == db:
        return True
    short, long_ = sorted((da, db), key=len)
    return len(short) >= 7 and long_.endswith(short)


class Queue:
    """The durable SMS queue on one SQLite file.

    ``Queue(url_or_engine)`` migrates the schema to the newest revision unless
    ``migrate=False``. ``clock`` returns UNIX seconds (tests pass a fake).
    ``max_attempts``/``backoff`` govern temporary failures; ``max_parts`` refuses longer
    bodies at enqueue; ``report_window_s`` is how old a part may be for a status report to
    match it. ``quiet_hours`` (a :class:`QuietHours`, or None) keeps ``marketing``
    messages waiting inside its window; it may be replaced at any time.
    """

    def __init__(
        self,
        db: Engine | str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
        backoff: Backoff = Backoff(),
        max_parts: int = 10,
        report_window_s: float = DEFAULT_REPORT_WINDOW_S,
        migrate_schema: bool = True,
        quiet_hours: QuietHours | None = None,
    ) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_parts = max_parts
        self.report_window_s = report_window_s
        self.quiet_hours = quiet_hours
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._last_sweep = float("-inf")
        if migrate_schema:
            migrate(self.engine)

    # ------------------------------------------------------------------ notifications

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after new work is committed (enqueue, resend); returns an
        unsubscribe function. Callbacks must be quick (set an event)."""
        with self._listeners_lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def notify(self) -> None:
        """Tell the subscribers new work may be claimable (e.g. a broadcast was resumed)."""
        self._notify()

    def _notify(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb()
            except Exception:  # a listener's bug must not fail the enqueue that committed
                _log.exception("queue listener failed")

    # ------------------------------------------------------------------ enqueue

    def enqueue(
        self,
        recipients: Sequence[str],
        body: str,
        *,
        priority: str = "normal",
        send_at: datetime | float | None = None,
        validity_s: float | None = None,
        idempotency_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        modem: str | None = None,
        ignore_opt_out: bool = False,
    ) -> list[MessageView]:
        """Queue ``body`` to every recipient (E.164); one message per recipient.

        Opted-out recipients are stored as ``suppressed``. A repeated ``idempotency_key``
        with the same request returns the original messages; with a different request it
        raises :class:`DuplicateIdempotencyKey`. ``modem`` prefers that modem (a reply goes
        out through the modem its question came in on; a retry may fail over).
        ``ignore_opt_out`` is for the one confirmation a STOP gets, never for content.
        """
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients:
            raise InvalidRequest("to: give at least one recipient")
        if priority not in PRIORITIES:
            raise InvalidRequest(f"priority: {priority!r} is not one of high, normal, low")
        if not isinstance(body, str) or body == "":
            raise InvalidRequest("body: the message text is empty")
        if validity_s is not None and validity_s <= 0:
            raise InvalidRequest("validity_s: must be a positive number of seconds")
        try:
            p = plan(body)
        except PduError as exc:
            raise InvalidRequest(f"body: {exc}") from exc
        if p.total > self.max_parts:
            raise InvalidRequest(
                f"body: needs {p.total} SMS parts; at most {self.max_parts} are allowed"
            )
        now = self.clock()
        send_ts = _ts(send_at)
        start = send_ts if send_ts is not None else now
        expires = start + validity_s if validity_s is not None else None
        meta_json = json.dumps(metadata, separators=(",", ":"), sort_keys=True) if metadata else None
        prio = PRIORITIES[priority]
        fingerprint = hashlib.sha256(
            json.dumps([list(recipients), body, priority, send_ts, validity_s, meta_json, modem,
                        ignore_opt_out]).encode()
        ).hexdigest()

        with write_tx(self.engine) as conn:
            if idempotency_key is not None:
                prior = conn.exec_driver_sql(
                    "SELECT id, fingerprint FROM batches WHERE idempotency_key = ?", (idempotency_key,)
                ).first()
                if prior is not None:
                    if prior[1] != fingerprint:
                        raise DuplicateIdempotencyKey(
                            f"idempotency key {idempotency_key!r} was already used for a different "
                            "request; use a new key for a new request"
                        )
                    rows = conn.exec_driver_sql(
                        f"SELECT {_MSG_COLS} FROM messages WHERE batch_id = ? ORDER BY id", (prior[0],)
                    ).all()
                    return [_message_view(r) for r in rows]
            batch_id = conn.exec_driver_sql(
                "INSERT INTO batches (idempotency_key, fingerprint, created_at, count) VALUES (?, ?, ?, ?) "
                "RETURNING id",
                (idempotency_key, fingerprint, now, len(recipients)),
            ).scalar_one()
            opted = set() if ignore_opt_out else self._opted_out_among(conn, recipients)
            base = conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM messages").scalar_one()
            enc, total, maxa = p.encoding, p.total, self.max_attempts
            rows_in = [
                (
                    base + i, batch_id, to, body, enc, total, prio,
                    "suppressed" if to in opted else "queued",
                    now, now, send_ts, start, expires, maxa,
                    "recipient opted out" if to in opted else None, meta_json, modem,
                    int(ignore_opt_out),
                )
                for i, to in enumerate(recipients, start=1)
            ]
            conn.exec_driver_sql(_INSERT_MSG, rows_in)
            if opted:
                conn.exec_driver_sql(
                    "INSERT INTO events (at, kind, message_id, detail) VALUES (?, 'suppressed', ?, ?)",
                    [(now, r[0], '{"at": "enqueue"}') for r in rows_in if r[7] == "suppressed"],
                )
        self._notify()
        created, send_dt, exp_dt = _dt(now), _dt(send_ts), _dt(expires)
        meta = json.loads(meta_json) if meta_json else None
        return [
            MessageView(
                id=r[0], to=r[2], body=body, status=r[7], priority=priority, encoding=enc, parts=total,
                modem=None, attempts=0, resends=0, created_at=created, updated_at=created,  # type: ignore[arg-type]
                send_at=send_dt, expires_at=exp_dt, sent_at=None, delivered_at=None, error=r[14],
                metadata=meta,
            )
            for r in rows_in
        ]

    def enqueue_many(
        self,
        items: Sequence[tuple[str, str] | tuple[str, str, str, int]],
        *,
        broadcast_id: int | None = None,
        kind: str = "transactional",
        priority: str = "normal",
        send_at: datetime | float | None = None,
        validity_s: float | None = None,
        held: bool = False,
        guard: Callable[[Tx, int], None] | None = None,
    ) -> tuple[int, int, int]:
        """Queue a different body per recipient in one transaction (a broadcast).

        ``items`` are ``(to, body)`` or ``(to, body, encoding, parts)`` where the last two
        are what :func:`appliance.pdu.plan` said of ``body`` (saves planning it twice).
        Opted-out recipients are stored ``suppressed``, as :meth:`enqueue` does. ``held``
        stores them held (a broadcast paused before it started). ``guard(tx, batch_id)``
        runs inside the transaction before the rows go in (raise to abort, e.g. the
        broadcast is no longer a draft). Returns ``(batch_id, first_id, last_id)``; the
        messages have consecutive ids.
        """
        if not items:
            raise InvalidRequest("to: give at least one recipient")
        if priority not in PRIORITIES:
            raise InvalidRequest(f"priority: {priority!r} is not one of high, normal, low")
        if kind not in ("transactional", "marketing"):
            raise InvalidRequest(f"kind: {kind!r} is not one of transactional, marketing")
        if validity_s is not None and validity_s <= 0:
            raise InvalidRequest("validity_s: must be a positive number of seconds")
        planned: list[tuple[str, str, str, int]] = []
        for item in items:
            if len(item) == 4:
                planned.append(item)  # type: ignore[arg-type]
                continue
            to, body = item  # type: ignore[misc]
            if not body:
                raise InvalidRequest(f"body: the message text to {to} is empty")
            try:
                p = plan(body)
            except PduError as exc:
                raise InvalidRequest(f"body: the message to {to}: {exc}") from exc
            planned.append((to, body, p.encoding, p.total))
        too_long = next((p for p in planned if p[3] > self.max_parts), None)
        if too_long is not None:
            raise InvalidRequest(
                f"body: the message to {too_long[0]} needs {too_long[3]} SMS parts; "
                f"at most {self.max_parts} are allowed"
            )
        now = self.clock()
        send_ts = _ts(send_at)
        start = send_ts if send_ts is not None else now
        expires = start + validity_s if validity_s is not None else None
        prio = PRIORITIES[priority]
        maxa = self.max_attempts
        with write_tx(self.engine) as conn:
            batch_id = conn.exec_driver_sql(
                "INSERT INTO batches (idempotency_key, fingerprint, created_at, count) VALUES (NULL, ?, ?, ?) "
                "RETURNING id",
                (f"broadcast:{broadcast_id}", now, len(planned)),
            ).scalar_one()
            if guard is not None:
                guard(conn, batch_id)
            opted = self._opted_out_among(conn, [p[0] for p in planned])
            base = conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM messages").scalar_one()
            rows_in = [
                (
                    base + i, batch_id, to, body, enc, total, prio,
                    "suppressed" if to in opted else "queued",
                    now, now, send_ts, start, expires, maxa,
                    "recipient opted out" if to in opted else None, broadcast_id, kind, int(held),
                )
                for i, (to, body, enc, total) in enumerate(planned, start=1)
            ]
            conn.exec_driver_sql(
                "INSERT INTO messages (id, batch_id, recipient, body, encoding, parts, priority, status, "
                "created_at, updated_at, send_at, due_at, expires_at, attempts, max_attempts, resends, error, "
                "broadcast_id, kind, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)",
                rows_in,
            )
            if opted:
                conn.exec_driver_sql(
                    "INSERT INTO events (at, kind, message_id, detail) VALUES (?, 'suppressed', ?, ?)",
                    [(now, r[0], '{"at": "enqueue"}') for r in rows_in if r[7] == "suppressed"],
                )
        self._notify()
        return batch_id, base + 1, base + len(planned)

    @staticmethod
    def _opted_out_among(conn: Tx, numbers: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(numbers))
        for i in range(0, len(unique), 5000):
            chunk = unique[i:i + 5000]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in conn.exec_driver_sql(
                f"SELECT number FROM opt_outs WHERE number IN ({marks})", tuple(chunk)
            ))
        return found

    # ------------------------------------------------------------------ read

    def get(self, message_id: int) -> MessageView:
        """The message with its parts; :class:`NotFound` if there is none."""
        with read_tx(self.engine) as conn:
            row = conn.exec_driver_sql(f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,)).first()
            if row is None:
                raise NotFound(f"message {message_id} does not exist")
            parts = conn.exec_driver_sql(
                "SELECT seq, state, modem, mr, submitted_at, sent_at, delivered_at, report_status, error "
                "FROM parts WHERE message_id = ? ORDER BY seq",
                (message_id,),
            ).all()
        return _message_view(row, tuple(
            PartView(p[0], p[1], p[2], p[3], _dt(p[4]), _dt(p[5]), _dt(p[6]), p[7], p[8]) for p in parts
        ))

    def list(
        self, *, status: str | None = None, to: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Messages newest first, filtered by ``status`` and/or recipient ``to``."""
        if status is not None and status not in scheduler.MESSAGE_STATES:
            raise InvalidRequest(f"status: {status!r} is not one of {', '.join(scheduler.MESSAGE_STATES)}")
        rows, nxt = self._newest_first(
            f"SELECT {_MSG_COLS} FROM messages", "m", {"status": status, "recipient": to}, limit, cursor
        )
        return Page([_message_view(r) for r in rows], nxt)

    def _newest_first(
        self, select: str, kind: str, equal: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        """One page of ``select`` by descending id: rows whose columns equal the non-None
        values of ``equal``, after ``cursor`` (an opaque ``kind`` cursor); the next cursor."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        after = _decode_cursor(kind, cursor)
        where = [f"{column} = ?" for column, value in equal.items() if value is not None]
        args: list[Any] = [value for value in equal.values() if value is not None]
        if after is not None:
            where.append("id < ?")
            args.append(int(after))
        sql = select + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        args.append(limit + 1)
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(sql, tuple(args)).all()
        nxt = _encode_cursor(kind, rows[limit - 1][0]) if len(rows) > limit else None
        return rows[:limit], nxt

    def stats(self) -> dict[str, int]:
        """Number of messages in each state (every state present, zeros included)."""
        counts = dict.fromkeys(scheduler.MESSAGE_STATES, 0)
        with read_tx(self.engine) as conn:
            for status, n in conn.exec_driver_sql("SELECT status, COUNT(*) FROM messages GROUP BY status"):
                counts[status] = n
        return counts

    def events(self, message_id: int | None = None, *, limit: int = 1000) -> list[EventView]:
        """The audit trail, oldest first (of one message, or the latest ``limit`` overall)."""
        with read_tx(self.engine) as conn:
            if message_id is not None:
                rows = conn.exec_driver_sql(
                    "SELECT id, at, kind, message_id, part_id, modem, detail FROM events "
                    "WHERE message_id = ? ORDER BY id LIMIT ?", (message_id, limit)
                ).all()
            else:
                rows = conn.exec_driver_sql(
                    "SELECT * FROM (SELECT id, at, kind, message_id, part_id, modem, detail FROM events "
                    "ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,)
                ).all()
        return [
            EventView(r[0], _dt(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None)  # type: ignore[arg-type]
            for r in rows
        ]

    # ------------------------------------------------------------------ operator actions

    def cancel(self, message_id: int, *, by: str = "api") -> MessageView:
        """Cancel a queued message; :class:`InvalidState` once it is sending or done."""
        now = self.clock()
        with write_tx(self.engine) as conn:
            row = conn.exec_driver_sql("SELECT status FROM messages WHERE id = ?", (message_id,)).first()
            if row is None:
                raise NotFound(f"message {message_id} does not exist")
            if row[0] != "queued":
                raise InvalidState(f"message {message_id} is {row[0]}; only a queued message can be cancelled")
            conn.exec_driver_sql(
                "UPDATE messages SET status = 'cancelled', updated_at = ?, error = 'cancelled' WHERE id = ?",
                (now, message_id),
            )
            conn.exec_driver_sql(
                "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", (message_id,)
            )
            scheduler._event(conn, now, "cancelled", message_id, detail={"by": by})
        return self.get(message_id)

    def resend(self, message_id: int, *, by: str = "operator") -> MessageView:
        """Queue an ``unknown`` or ``failed`` message again as a new attempt (audited).

        The previous parts (states, modem, TP-MRs) are kept in the ``resent`` event.
        """
        now = self.clock()
        with write_tx(self.engine) as conn:
            row = conn.exec_driver_sql(
                "SELECT status, send_at, created_at, expires_at, error FROM messages WHERE id = ?", (message_id,)
            ).first()
            if row is None:
                raise NotFound(f"message {message_id} does not exist")
            status, send_at, created_at, expires_at, error = row
            if status not in ("unknown", "failed"):
                raise InvalidState(
                    f"message {message_id} is {status}; only unknown or failed messages can be resent"
                )
            old_parts = conn.exec_driver_sql(
                "SELECT seq, state, modem, mr, sent_at, error FROM parts WHERE message_id = ? ORDER BY seq",
                (message_id,),
            ).all()
            validity = None if expires_at is None else expires_at - (send_at if send_at is not None else created_at)
            conn.exec_driver_sql("DELETE FROM parts WHERE message_id = ?", (message_id,))
            conn.exec_driver_sql(
                "UPDATE messages SET status = 'queued', attempts = 0, resends = resends + 1, modem = NULL, "
                "claimed_at = NULL, concat_ref = NULL, sent_at = NULL, delivered_at = NULL, error = NULL, "
                "due_at = ?, expires_at = ?, updated_at = ? WHERE id = ?",
                (now, None if validity is None else now + validity, now, message_id),
            )
            scheduler._event(conn, now, "resent", message_id, detail={
                "by": by, "previous_status": status, "previous_error": error,
                "previous_parts": [
                    {"seq": p[0], "state": p[1], "modem": p[2], "mr": p[3], "sent_at": p[4], "error": p[5]}
                    for p in old_parts
                ],
            })
        self._notify()
        return self.get(message_id)

    # ------------------------------------------------------------------ budgets and modems

    def send_times(self, modem: str, *, since: float) -> list[float]:
        """When ``modem`` handed parts to the network since ``since`` (from the send log)."""
        with read_tx(self.engine) as conn:
            return [r[0] for r in conn.exec_driver_sql(
                "SELECT at FROM send_log WHERE modem = ? AND at > ? ORDER BY at", (modem, since)
            )]

    def budget(self, modem: str, limits: RateLimits, *, now: float | None = None) -> BudgetView:
        """Parts left in the minute/hour/day windows and the next allowed send time."""
        now = self.clock() if now is None else now
        budget = SendBudget(limits, self.send_times(modem, since=now - max(limits.windows)))
        return budget.view(modem, now)

    def upsert_modem(self, name: str, *, imei: str | None = None, iccid: str | None = None,
                     model: str | None = None, state: str | None = None) -> None:
        """Remember a modem's identity and last state (fields given as None are kept)."""
        now = self.clock()
        with write_tx(self.engine) as conn:
            scheduler._ensure_modem(conn, name, now)
            conn.exec_driver_sql(
                "UPDATE modems SET imei = COALESCE(?, imei), iccid = COALESCE(?, iccid), "
                "model = COALESCE(?, model), state = COALESCE(?, state), updated_at = ? WHERE name = ?",
                (imei, iccid, model, state, now, name),
            )

    def modems(self) -> list[ModemView]:
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                "SELECT name, imei, iccid, model, state, updated_at FROM modems ORDER BY name"
            ).all()
        return [ModemView(r[0], r[1], r[2], r[3], r[4], _dt(r[5])) for r in rows]  # type: ignore[arg-type]

    # ------------------------------------------------------------------ inbound and consent

    def record_inbound(
        self, modem: str, sender: str, body: str, *, received_at: datetime | float | None = None,
        parts: int = 1, pdu_hex: str | None = None, metadata: dict[str, Any] | None = None,
    ) -> InboundView:
        """Store a received (already reassembled) SMS durably."""
        at = _ts(received_at) if received_at is not None else self.clock()
        meta_json = json.dumps(metadata) if metadata else None
        with write_tx(self.engine) as conn:
            new_id = conn.exec_driver_sql(
                "INSERT INTO inbound (modem, sender, body, received_at, parts, pdu_hex, metadata_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (modem, sender, body, at, parts, pdu_hex, meta_json),
            ).scalar_one()
        return InboundView(new_id, modem, sender, body, _dt(at), parts, metadata)  # type: ignore[arg-type]

    def list_inbound(self, *, limit: int = 50, cursor: str | None = None, sender: str | None = None) -> Page:
        """Received messages, newest first."""
        rows, nxt = self._newest_first(
            "SELECT id, modem, sender, body, received_at, parts, metadata_json, complete, keyword FROM inbound",
            "i", {"sender": sender}, limit, cursor,
        )
        items = [
            InboundView(r[0], r[1], r[2], r[3], _dt(r[4]), r[5], json.loads(r[6]) if r[6] else None,  # type: ignore[arg-type]
                        bool(r[7]), r[8])
            for r in rows
        ]
        return Page(items, nxt)

    def opt_out(self, number: str, *, source: str, note: str | None = None) -> bool:
        """Add ``number`` to the suppression list; False if it was already on it. Logged.

        In the same transaction every message still queued to ``number`` becomes
        ``suppressed``; one already claimed is stopped before its first part by the check in
        :func:`scheduler.begin_part`, which takes the same write lock.
        """
        now = self.clock()
        with write_tx(self.engine) as conn:
            added = conn.exec_driver_sql(
                "INSERT INTO opt_outs (number, created_at, source) VALUES (?, ?, ?) ON CONFLICT(number) DO NOTHING",
                (number, now, source),
            ).rowcount
            conn.exec_driver_sql(
                "INSERT INTO consent_log (number, action, source, at, note) VALUES (?, 'opt_out', ?, ?, ?)",
                (number, source, now, note),
            )
            suppressed = conn.exec_driver_sql(
                "UPDATE messages SET status = 'suppressed', error = 'recipient opted out', updated_at = ? "
                "WHERE recipient = ? AND status = 'queued' AND NOT ignore_opt_out RETURNING id",
                (now, number),
            ).all()
            if suppressed:
                conn.exec_driver_sql(
                    "INSERT INTO events (at, kind, message_id, detail) VALUES (?, 'suppressed', ?, ?)",
                    [(now, r[0], '{"at": "opt-out"}') for r in suppressed],
                )
        return bool(added)

    def opt_in(self, number: str, *, source: str, note: str | None = None) -> bool:
        """Remove ``number`` from the suppression list; False if it was not on it. Logged."""
        now = self.clock()
        with write_tx(self.engine) as conn:
            removed = conn.exec_driver_sql("DELETE FROM opt_outs WHERE number = ?", (number,)).rowcount
            conn.exec_driver_sql(
                "INSERT INTO consent_log (number, action, source, at, note) VALUES (?, 'opt_in', ?, ?, ?)",
                (number, source, now, note),
            )
        return bool(removed)

    def is_opted_out(self, number: str) -> bool:
        with read_tx(self.engine) as conn:
            return conn.exec_driver_sql("SELECT 1 FROM opt_outs WHERE number = ?", (number,)).first() is not None

    def list_opt_outs(self, *, limit: int = 100, cursor: str | None = None) -> Page:
        """The suppression list, ordered by number."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        after = _decode_cursor("o", cursor)
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                "SELECT number, created_at, source FROM opt_outs WHERE number > ? ORDER BY number LIMIT ?",
                (after or "", limit + 1),
            ).all()
        items = [OptOutView(r[0], _dt(r[1]), r[2]) for r in rows[:limit]]  # type: ignore[arg-type]
        return Page(items, _encode_cursor("o", items[-1].number) if len(rows) > limit else None)

    def consent_log(self, number: str) -> list[tuple[datetime, str, str, str | None]]:
        """``(at, action, source, note)`` of every consent change of ``number``, oldest first."""
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                "SELECT at, action, source, note FROM consent_log WHERE number = ? ORDER BY at, id", (number,)
            ).all()
        return [(_dt(r[0]), r[1], r[2], r[3]) for r in rows]  # type: ignore[misc]

    # ------------------------------------------------------------------ status reports

    def apply_status_report(
        self, modem: str, reference: int, recipient: str, status: int, *, at: float | None = None
    ) -> ReportMatch | None:
        """Match a status report on (modem, TP-MR, recipient) within the report window.

        The newest matching part wins (TP-MR wraps at 256). A completed TP-ST delivers the
        part (the message when all parts are); a temporary one keeps it waiting; a permanent
        one fails part and message. None if no part matched.
        """
        from appliance.pdu.status import status_outcome

        now = self.clock() if at is None else at
        outcome = status_outcome(status)
        with write_tx(self.engine) as conn:
            candidates = conn.exec_driver_sql(
                "SELECT p.id, p.message_id, p.seq, m.recipient, m.status FROM parts p "
                "JOIN messages m ON m.id = p.message_id "
                "WHERE p.modem = ? AND p.mr = ? AND p.sent_at >= ? AND p.state IN ('sent', 'delivered', 'failed') "
                "ORDER BY p.sent_at DESC",
                (modem, reference % 256, now - self.report_window_s),
            ).all()
            match = next((c for c in candidates if _same_number(c[3], recipient)), None)
            if match is None:
                scheduler._event(conn, now, "report_unmatched", None, modem=modem,
                                 detail={"mr": reference, "recipient": recipient, "status": status})
                return None
            part_id, mid, seq, _to, mstatus = match
            if outcome == "delivered":
                conn.exec_driver_sql(
                    "UPDATE parts SET state = 'delivered', delivered_at = ?, report_status = ? WHERE id = ?",
                    (now, status, part_id),
                )
                remaining = conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM parts WHERE message_id = ? AND state != 'delivered'", (mid,)
                ).scalar_one()
                if remaining == 0 and mstatus == "sent":
                    conn.exec_driver_sql(
                        "UPDATE messages SET status = 'delivered', delivered_at = ?, updated_at = ? WHERE id = ?",
                        (now, now, mid),
                    )
                    scheduler._event(conn, now, "delivered", mid, modem=modem)
                    mstatus = "delivered"
            elif outcome == "pending":
                conn.exec_driver_sql("UPDATE parts SET report_status = ? WHERE id = ?", (status, part_id))
            else:
                error = f"undelivered: the network reports status 0x{status:02X} for part {seq}"
                conn.exec_driver_sql(
                    "UPDATE parts SET state = 'failed', report_status = ?, error = ? WHERE id = ?",
                    (status, error, part_id),
                )
                if mstatus in ("sending", "sent", "delivered"):
                    conn.exec_driver_sql(
                        "UPDATE messages SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                        (error, now, mid),
                    )
                    scheduler._event(conn, now, "undelivered", mid, part_id=part_id, modem=modem,
                                     detail={"status": status})
                    mstatus = "failed"
        return ReportMatch(mid, seq, outcome, mstatus)

    def apply_status_report_event(self, event: Any) -> ReportMatch | None:
        """:meth:`apply_status_report` for an :class:`appliance.modem.StatusReportEvent`."""
        report = event.report
        return self.apply_status_report(event.modem, report.reference, report.recipient, report.status)

    # ------------------------------------------------------------------ dispatcher side

    def recover(self) -> Recovery:
        """Crash recovery; run once at start-up before any worker claims."""
        with write_tx(self.engine) as conn:
            result = scheduler.recover(conn, self.clock())
        if result.unknown or result.requeued:
            _log.warning(
                "recovery: %d message(s) left mid-send are now unknown; %d claim(s) went back to the queue",
                len(result.unknown), len(result.requeued),
            )
        return result

    def claim(self, modem: str, *, max_parts: int, now: float | None = None) -> Claim | None:
        """Claim the next message ``modem`` may send now (at most ``max_parts`` parts)."""
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        marketing = quiet is None or not quiet.contains(now)
        # Sweeping expired messages costs a statement: at most once a second is enough (a
        # claimed message's own validity is checked again before its first part leaves).
        sweep = not (0 <= now - self._last_sweep < EXPIRY_SWEEP_S)
        # Not fsynced: a claim lost in a power cut is what start-up recovery undoes anyway;
        # the part's "submitting" commit that follows is durable and syncs this one too.
        with write_tx(self.engine, durable=False) as conn:
            claim = scheduler.claim_next(conn, modem, max_parts=max_parts, now=now, sweep=sweep,
                                         marketing=marketing)
        if sweep:
            self._last_sweep = now
        return claim

    def next_wakeup(self, modem: str, *, now: float | None = None) -> float | None:
        """The earliest due or expiry time of queued work ``modem`` could take (None: none).

        Held messages are not work. Inside quiet hours marketing messages are not work
        until the window ends: then the window's end is their wake-up time.
        """
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        in_quiet = quiet is not None and quiet.contains(now)
        with read_tx(self.engine) as conn:
            if in_quiet:  # transactional work only: few rows at night, whatever waits for morning
                due = conn.exec_driver_sql(
                    "SELECT MIN(due_at) FROM messages INDEXED BY ix_messages_claim_tx "
                    "WHERE status = 'queued' AND held = 0 AND kind != 'marketing' AND (modem IS NULL OR modem = ?)",
                    (modem,),
                ).scalar()
            else:
                due = conn.exec_driver_sql(
                    "SELECT due_at FROM messages INDEXED BY ix_messages_queued_due "
                    "WHERE status = 'queued' AND held = 0 AND (modem IS NULL OR modem = ?) "
                    "ORDER BY due_at LIMIT 1", (modem,)
                ).scalar()
            if in_quiet and quiet is not None and conn.exec_driver_sql(
                "SELECT 1 FROM messages INDEXED BY ix_messages_queued_due "
                "WHERE status = 'queued' AND held = 0 AND kind = 'marketing' AND (modem IS NULL OR modem = ?) "
                "LIMIT 1", (modem,)
            ).first():
                end = quiet.ends_at(now)
                due = end if due is None else min(due, end)
            exp = conn.exec_driver_sql(
                "SELECT expires_at FROM messages INDEXED BY ix_messages_queued_expiry "
                "WHERE status = 'queued' AND expires_at IS NOT NULL "
                "ORDER BY expires_at LIMIT 1"
            ).scalar()
        times = [t for t in (due, exp) if t is not None]
        return min(times) if times else None

    def begin_part(self, claim: Claim, part: ClaimedPart, now: float) -> str:
        with write_tx(self.engine) as conn:
            return scheduler.begin_part(conn, claim, part, now)

    def part_sent(self, claim: Claim, part: ClaimedPart, mr: int, now: float) -> bool:
        with write_tx(self.engine) as conn:
            return scheduler.part_sent(conn, claim, part, mr, now)

    def part_sent_and_next(
        self, claim: Claim, part: ClaimedPart, mr: int, now: float, *, max_parts: int
    ) -> Claim | None:
        """:meth:`part_sent`, then in the same durable transaction claim the next message the
        modem may send now (at most ``max_parts`` parts) and commit its first part
        ``submitting`` (opt-out and validity checked as :meth:`begin_part` does).

        A busy worker so pays one fsync per part instead of two. The returned claim's first
        part is already begun (its ``submitted_at`` is ``now``); None when there is no work
        or the message it found was suppressed or expired instead.
        """
        quiet = self.quiet_hours
        marketing = quiet is None or not quiet.contains(now)
        with write_tx(self.engine) as conn:
            scheduler.part_sent(conn, claim, part, mr, now)
            nxt = scheduler.claim_next(conn, claim.modem, max_parts=max_parts, now=now, sweep=False,
                                       marketing=marketing)
            if nxt is not None and scheduler.begin_part(conn, nxt, nxt.parts[0], now) != "go":
                nxt = None
        return nxt

    def part_unknown(self, claim: Claim, part: ClaimedPart, error: str) -> None:
        with write_tx(self.engine) as conn:
            scheduler.part_unknown(conn, claim, part, self.clock(), error)

    def part_failed(self, claim: Claim, part: ClaimedPart | None, error: str) -> None:
        with write_tx(self.engine) as conn:
            scheduler.part_failed(conn, claim, part, self.clock(), error)

    def part_retry(self, claim: Claim, part: ClaimedPart, error: str, *, forget_send: bool) -> str:
        delay = self.backoff.delay(claim.attempts + 1)
        with write_tx(self.engine) as conn:
            return scheduler.part_retry(conn, claim, part, self.clock(), error, delay=delay,
                                        forget_send=forget_send)

    def release(self, claim: Claim, reason: str, *, part: ClaimedPart | None = None) -> None:
        with write_tx(self.engine) as conn:
            scheduler.release(conn, claim, self.clock(), reason, part=part)
        self._notify()

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ inbound storage (reassembly, keywords)

    def store_inbound(
        self, modem: str, sender: str, body: str, *, digest: str, received_at: float | None = None,
        parts: int = 1, complete: bool = True, keyword: str | None = None, handled: bool = False,
        pdu_hex: str | None = None, metadata: dict[str, Any] | None = None,
        fragments: Sequence[InboundFragmentView] = (),
    ) -> StoredInbound:
        """Store a received SMS once: ``digest`` names the PDU(s) it came from, and a second
        call with the same digest returns the row the first stored (``created=False``).

        ``handled=False`` leaves ``handled_at`` NULL until :meth:`mark_inbound_handled`
        (keyword actions still to do). ``fragments`` are the :meth:`store_inbound_fragment`
        rows it was reassembled from: they are deleted in the same transaction and their
        digests remembered, so a re-read of one of them is ignored.
        """
        at = self.clock() if received_at is None else received_at
        meta_json = json.dumps(metadata, separators=(",", ":"), sort_keys=True) if metadata else None
        with write_tx(self.engine) as conn:
            new_id = conn.exec_driver_sql(
                "INSERT INTO inbound (modem, sender, body, received_at, parts, pdu_hex, metadata_json, digest, "
                "complete, keyword, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(digest) DO NOTHING RETURNING id",
                (modem, sender, body, at, parts, pdu_hex, meta_json, digest, int(complete), keyword,
                 at if handled else None),
            ).scalar()
            created = new_id is not None
            if not created:
                new_id = conn.exec_driver_sql("SELECT id FROM inbound WHERE digest = ?", (digest,)).scalar()
            if fragments:
                ids = [f.id for f in fragments]
                marks = ",".join("?" * len(ids))
                gone = conn.exec_driver_sql(
                    f"DELETE FROM inbound_fragments WHERE id IN ({marks})", tuple(ids)
                ).rowcount
                if created and gone != len(ids):
                    raise InvalidState(
                        "the parts of this multipart message were already taken by another reassembly"
                    )
                conn.exec_driver_sql(
                    "INSERT INTO inbound_pdus (digest, inbound_id, received_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(digest) DO NOTHING",
                    [(f.digest, new_id, at) for f in fragments],
                )
            row = conn.exec_driver_sql(f"SELECT {_INBOUND_COLS} FROM inbound WHERE id = ?", (new_id,)).first()
        return _stored_inbound(row, created)

    def store_inbound_fragment(
        self, modem: str, sender: str, *, ref: int, total: int, seq: int, body: str, pdu_hex: str,
        digest: str, received_at: float | None = None,
    ) -> list[InboundFragmentView] | None:
        """Keep one part of a multipart SMS (once per ``digest``) until its siblings arrive.

        Parts belong together by (modem, sender, ref, total). Returns every stored part of
        the group, in ``seq`` order, once parts 1..total are all there (also when this part
        was a repeat: a crash may have come between storing the last part and assembling);
        ``None`` while parts are missing or when this PDU already went into a stored message.
        """
        at = self.clock() if received_at is None else received_at
        with write_tx(self.engine) as conn:
            if conn.exec_driver_sql("SELECT 1 FROM inbound_pdus WHERE digest = ?", (digest,)).first():
                return None
            conn.exec_driver_sql(
                "INSERT INTO inbound_fragments (modem, sender, ref, total, seq, body, pdu_hex, digest, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING",
                (modem, sender, ref, total, seq, body, pdu_hex, digest, at),
            )
            rows = conn.exec_driver_sql(
                f"SELECT {_FRAGMENT_COLS} FROM inbound_fragments "
                "WHERE sender = ? AND ref = ? AND total = ? AND modem = ? ORDER BY seq, id",
                (sender, ref, total, modem),
            ).all()
        group = [InboundFragmentView(*r) for r in rows]
        if {f.seq for f in group} >= set(range(1, total + 1)):
            return group
        return None

    def stale_inbound_fragments(self, before: float) -> list[list[InboundFragmentView]]:
        """Groups of stored parts whose first part arrived before ``before`` (seq order)."""
        with read_tx(self.engine) as conn:
            keys = conn.exec_driver_sql(
                "SELECT modem, sender, ref, total FROM inbound_fragments "
                "GROUP BY modem, sender, ref, total HAVING MIN(received_at) < ?",
                (before,),
            ).all()
            groups = []
            for modem, sender, ref, total in keys:
                rows = conn.exec_driver_sql(
                    f"SELECT {_FRAGMENT_COLS} FROM inbound_fragments "
                    "WHERE sender = ? AND ref = ? AND total = ? AND modem = ? ORDER BY seq, id",
                    (sender, ref, total, modem),
                ).all()
                groups.append([InboundFragmentView(*r) for r in rows])
        return groups

    def get_inbound_record(self, inbound_id: int) -> StoredInbound:
        """One inbound row with its handling state; :class:`NotFound` if there is none."""
        with read_tx(self.engine) as conn:
            row = conn.exec_driver_sql(f"SELECT {_INBOUND_COLS} FROM inbound WHERE id = ?", (inbound_id,)).first()
        if row is None:
            raise NotFound(f"inbound message {inbound_id} does not exist")
        return _stored_inbound(row, False)

    def list_unhandled_inbound(self, *, limit: int = 100) -> list[StoredInbound]:
        """Inbound rows whose keyword actions are not recorded as done, oldest first."""
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_INBOUND_COLS} FROM inbound INDEXED BY ix_inbound_unhandled "
                "WHERE handled_at IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).all()
        return [_stored_inbound(r, False) for r in rows]

    def mark_inbound_handled(self, inbound_id: int, *, at: float | None = None) -> bool:
        """Record that the keyword actions of ``inbound_id`` are done; False if they already were."""
        now = self.clock() if at is None else at
        with write_tx(self.engine) as conn:
            return bool(conn.exec_driver_sql(
                "UPDATE inbound SET handled_at = ? WHERE id = ? AND handled_at IS NULL", (now, inbound_id)
            ).rowcount)

    def prune_inbound_pdus(self, before: float) -> int:
        """Forget digests of parts consumed before ``before`` (a re-read comes within days)."""
        with write_tx(self.engine) as conn:
            return conn.exec_driver_sql("DELETE FROM inbound_pdus WHERE received_at < ?", (before,)).rowcount


_INBOUND_COLS = (
    "id, modem, sender, body, received_at, parts, complete, keyword, handled_at, metadata_json, digest"
)
_FRAGMENT_COLS = "id, modem, sender, ref, total, seq, body, digest, received_at"


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """An inbound row as the inbound handler sees it (times in UNIX seconds).

    ``created`` is False when the row was already there (the same PDU read again).
    """

    id: int
    modem: str
    sender: str
    body: str
    received_at: float
    parts: int
    complete: bool
    keyword: str | None
    handled_at: float | None
    metadata: dict[str, Any] | None
    digest: str | None
    created: bool = False


@dataclass(frozen=True, slots=True)
class InboundFragmentView:
    """One stored part of a multipart SMS waiting for its siblings."""

    id: int
    modem: str
    sender: str
    ref: int
    total: int
    seq: int
    body: str
    digest: str
    received_at: float


def _stored_inbound(r: Sequence[Any], created: bool) -> StoredInbound:
    return StoredInbound(
        id=r[0], modem=r[1], sender=r[2], body=r[3], received_at=r[4], parts=r[5], complete=bool(r[6]),
        keyword=r[7], handled_at=r[8], metadata=json.loads(r[9]) if r[9] else None, digest=r[10],
        created=created,
    )
