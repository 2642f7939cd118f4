"""The durable queue's API: :class:`Queue`.

The REST layer calls ``enqueue``, ``get``, ``list``, ``cancel``, ``resend``, ``stats``,
``budget``, the inbound and opt-out methods and ``apply_status_report``; the dispatcher
calls ``recover``, ``claim`` and the ``part_*`` transitions. Every method is one short
transaction through :mod:`appliance.db` (which holds the SQL, for SQLite and
PostgreSQL alike). Phone numbers arrive already in E.164. Times are UNIX seconds in the
database and timezone-aware UTC datetimes in the views.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from appliance.db import consent, inbound, messages, notify, sending, sticky
from appliance.db import nodes as nodes_db
from appliance.db.consent import ConsentEntry, OptOutView
from appliance.db.engine import Tx, make_engine, read_tx, write_tx
from appliance.db.errors import DuplicateIdempotencyKey, InvalidRequest, QueueError
from appliance.db.inbound import InboundFragmentView, InboundView, StoredInbound
from appliance.db.messages import EventView, MessageView, ModemView, NewMessage, PartView, ReportMatch
from appliance.db.migrate import migrate
from appliance.db.nodes import NodeView
from appliance.db.rows import Page, as_timestamp, dump_json
from appliance.db.sending import Backoff, Claim, ClaimedPart, Recovery
from appliance.db.sticky import Sticky
from appliance.db.states import PRIORITIES, MessageStatus
from appliance.pdu import PduError, plan
from appliance.queue.quiet import QuietHours
from appliance.queue.ratelimit import BudgetView, RateLimits, SendBudget

__all__ = [
    "ConsentEntry",
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
# Plain strings for bulk inserts: the driver adapts a str subclass (the enum) more slowly.
_QUEUED = MessageStatus.QUEUED.value
_SUPPRESSED = MessageStatus.SUPPRESSED.value
EXPIRY_SWEEP_S = 1.0


class Queue:
    """The durable SMS queue on one SQLite file.

    ``Queue(url_or_engine)`` migrates the schema to the newest revision unless
    ``migrate=False``. ``clock`` returns UNIX seconds (tests pass a fake).
    ``max_attempts``/``backoff`` govern temporary failures; ``max_parts`` refuses longer
    bodies at enqueue; ``report_window_s`` is how old a part may be for a status report to
    match it. ``quiet_hours`` (a :class:`QuietHours`, or None) keeps ``marketing``
    messages waiting inside its window; it may be replaced at any time.
    ``sticky_sender`` marks each new message with the SIM its recipient knows, which the
    dispatcher lets wait for that SIM for at most ``sticky_wait_s`` (docs/architecture.md,
    "Sticky sender").
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
        national_languages: Sequence[str] = (),
        sticky_sender: bool = True,
        sticky_wait_s: float = 600.0,
    ) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_parts = max_parts
        self.report_window_s = report_window_s
        self.quiet_hours = quiet_hours
        self.national_languages = tuple(national_languages)
        self.sticky_sender = sticky_sender
        self.sticky_wait_s = sticky_wait_s
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
        if self.engine.dialect.name == "postgresql":
            try:  # the other nodes' workers too (appliance.db.notify.WorkListener)
                with write_tx(self.engine) as tx:
                    notify.announce_work(tx)
            except QueueError as exc:  # they find the work at their next wake-up anyway
                _log.warning("could not wake the other nodes: %s", exc)
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
        within: Callable[[Tx, list[int]], None] | None = None,
    ) -> list[MessageView]:
        """Queue ``body`` to every recipient (E.164); one message per recipient.

        Opted-out recipients are stored as ``suppressed``. A repeated ``idempotency_key``
        with the same request returns the original messages (on any node); with a different
        request it raises :class:`DuplicateIdempotencyKey`. ``modem`` prefers that modem (a
        reply goes out through the modem its question came in on; a retry may fail over).
        ``ignore_opt_out`` is for the one confirmation a STOP gets, never for content.
        ``within(tx, ids)`` runs in the enqueue's transaction once the new messages are in
        (records that must exist exactly when the messages do; not called on a replay).
        """
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients:
            raise InvalidRequest(field="to", detail="give at least one recipient")
        if priority not in PRIORITIES:
            raise InvalidRequest(field="priority", detail=f"{priority!r} is not one of high, normal, low")
        if not isinstance(body, str) or body == "":
            raise InvalidRequest(field="body", detail="the message text is empty")
        if validity_s is not None and validity_s <= 0:
            raise InvalidRequest(field="validity_s", detail="must be a positive number of seconds")
        try:
            p = plan(body, national_languages=self.national_languages)
        except PduError as exc:
            raise InvalidRequest(field="body", detail=str(exc)) from exc
        if p.total > self.max_parts:
            raise InvalidRequest(
                field="body", detail=f"needs {p.total} SMS parts; at most {self.max_parts} are allowed"
            )
        now = self.clock()
        send_ts = as_timestamp(send_at)
        start = send_ts if send_ts is not None else now
        expires = start + validity_s if validity_s is not None else None
        meta_json = dump_json(metadata)
        prio = PRIORITIES[priority]
        fingerprint = hashlib.sha256(
            json.dumps([list(recipients), body, priority, send_ts, validity_s, meta_json, modem,
                        ignore_opt_out]).encode()
        ).hexdigest()

        with write_tx(self.engine) as tx:
            if idempotency_key is not None:
                tx.lock(f"idempotency:{idempotency_key}")  # two nodes with one key: one enqueues
                prior = messages.find_batch(tx, idempotency_key)
                if prior is not None:
                    if prior[1] != fingerprint:
                        raise DuplicateIdempotencyKey(
                            f"idempotency key {idempotency_key!r} was already used for a different "
                            "request; use a new key for a new request"
                        )
                    return messages.batch_messages(tx, prior[0])
            batch_id = messages.insert_batch(tx, idempotency_key, fingerprint, now, len(recipients))
            opted = set() if ignore_opt_out else consent.opted_out_among(tx, recipients)
            # A modem asked for (a reply to where the question came in) wins over the mark.
            known = self._known_sims(tx, [to for to in recipients if to not in opted]) if modem is None else {}
            first = messages.reserve_message_ids(tx, len(recipients))
            tables, encoding, total = p.tables.key or None, p.encoding, p.total
            rows = [
                NewMessage(
                    id=first + i, batch_id=batch_id, recipient=to, body=body, encoding=encoding, parts=total,
                    priority=prio, status=_SUPPRESSED if to in opted else _QUEUED,
                    created_at=now, updated_at=now, send_at=send_ts, due_at=start, expires_at=expires,
                    max_attempts=self.max_attempts, error="recipient opted out" if to in opted else None,
                    metadata_json=meta_json, modem=modem, ignore_opt_out=int(ignore_opt_out),
                    shift_tables=tables, sticky_sim=known.get(to),
                )
                for i, to in enumerate(recipients)
            ]
            messages.insert_messages(tx, rows)
            if opted:
                messages.add_events(tx, now, "suppressed", [r.id for r in rows if r.recipient in opted],
                                    {"at": "enqueue"})
            if within is not None:
                within(tx, [r.id for r in rows])
        self._notify()
        return messages.new_message_views(rows, priority)

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
            raise InvalidRequest(field="to", detail="give at least one recipient")
        if priority not in PRIORITIES:
            raise InvalidRequest(field="priority", detail=f"{priority!r} is not one of high, normal, low")
        if kind not in ("transactional", "marketing"):
            raise InvalidRequest(field="kind", detail=f"{kind!r} is not one of transactional, marketing")
        if validity_s is not None and validity_s <= 0:
            raise InvalidRequest(field="validity_s", detail="must be a positive number of seconds")
        planned: list[tuple[str, str, str, int, str | None]] = []
        for item in items:
            if len(item) == 4 and not self.national_languages:
                planned.append((*item, None))  # type: ignore[arg-type]
                continue
            to, body = item[0], item[1]
            if not body:
                raise InvalidRequest(field="body", detail=f"the message text to {to} is empty")
            try:
                p = plan(body, national_languages=self.national_languages)
            except PduError as exc:
                raise InvalidRequest(field="body", detail=f"the message to {to}: {exc}") from exc
            planned.append((to, body, p.encoding, p.total, p.tables.key or None))
        too_long = next((p for p in planned if p[3] > self.max_parts), None)
        if too_long is not None:
            raise InvalidRequest(
                field="body", detail=f"the message to {too_long[0]} needs {too_long[3]} SMS parts; "
                f"at most {self.max_parts} are allowed"
            )
        now = self.clock()
        send_ts = as_timestamp(send_at)
        start = send_ts if send_ts is not None else now
        expires = start + validity_s if validity_s is not None else None
        prio = PRIORITIES[priority]
        with write_tx(self.engine) as tx:
            batch_id = messages.insert_batch(tx, None, f"broadcast:{broadcast_id}", now, len(planned))
            if guard is not None:
                guard(tx, batch_id)
            opted = consent.opted_out_among(tx, [p[0] for p in planned])
            known = self._known_sims(tx, [p[0] for p in planned if p[0] not in opted])
            first = messages.reserve_message_ids(tx, len(planned))
            rows = [
                NewMessage(
                    id=first + i, batch_id=batch_id, recipient=to, body=body, encoding=enc, parts=total,
                    priority=prio, status=_SUPPRESSED if to in opted else _QUEUED,
                    created_at=now, updated_at=now, send_at=send_ts, due_at=start, expires_at=expires,
                    max_attempts=self.max_attempts, error="recipient opted out" if to in opted else None,
                    broadcast_id=broadcast_id, kind=kind, held=int(held), shift_tables=tables,
                    sticky_sim=known.get(to),
                )
                for i, (to, body, enc, total, tables) in enumerate(planned)
            ]
            messages.insert_messages(tx, rows)
            if opted:
                messages.add_events(tx, now, "suppressed", [r.id for r in rows if r.recipient in opted],
                                    {"at": "enqueue"})
        self._notify()
        return batch_id, first, first + len(planned) - 1

    def _known_sims(self, tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
        return sticky.last_sims(tx, numbers) if self.sticky_sender and numbers else {}

    def known_sims(self, numbers: Sequence[str]) -> dict[str, str]:
        """The SIM each of ``numbers`` knows: the one that last texted it or that it last
        wrote to (numbers with neither are left out). docs/architecture.md, "Sticky sender"."""
        with read_tx(self.engine) as tx:
            return sticky.last_sims(tx, numbers)

    def online_sims(self, *, besides: str) -> set[str]:
        """SIMs online in the modems of live nodes other than node ``besides``."""
        with read_tx(self.engine) as tx:
            return sticky.online_sims(tx, besides=besides)

    # ------------------------------------------------------------------ read

    def get(self, message_id: int) -> MessageView:
        """The message with its parts; :class:`NotFound` if there is none."""
        with read_tx(self.engine) as tx:
            return messages.get_message(tx, message_id)

    def list(
        self, *, status: str | None = None, to: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Messages newest first, filtered by ``status`` and/or recipient ``to``."""
        with read_tx(self.engine) as tx:
            return messages.list_messages(tx, status=status, to=to, limit=limit, cursor=cursor)

    def stats(self) -> dict[str, int]:
        """Number of messages in each state (every state present, zeros included)."""
        with read_tx(self.engine) as tx:
            return messages.count_by_status(tx)

    def events(self, message_id: int | None = None, *, limit: int = 1000) -> list[EventView]:
        """The history, oldest first (of one message, or the latest ``limit`` overall)."""
        with read_tx(self.engine) as tx:
            return messages.list_events(tx, message_id, limit=limit)

    # ------------------------------------------------------------------ operator actions

    def cancel(self, message_id: int, *, by: str = "api") -> MessageView:
        """Cancel a queued message; :class:`InvalidState` once it is sending or done."""
        with write_tx(self.engine) as tx:
            messages.cancel_queued(tx, message_id, self.clock(), by=by)
        return self.get(message_id)

    def resend(self, message_id: int, *, by: str = "operator") -> MessageView:
        """Queue an ``unknown`` or ``failed`` message again as a new attempt (audited)."""
        with write_tx(self.engine) as tx:
            messages.resend(tx, message_id, self.clock(), by=by)
        self._notify()
        return self.get(message_id)

    # ------------------------------------------------------------------ budgets and modems

    def send_times(self, sim: str, *, since: float) -> list[float]:
        """When the SIM ``sim`` (ICCID, or a modem name) handed parts to the network since
        ``since``, on any node (from the shared send log)."""
        with read_tx(self.engine) as tx:
            return messages.send_times(tx, sim, since=since)

    def send_recipients(self, sim: str, *, since: float) -> set[str]:
        """The distinct numbers the SIM ``sim`` sent parts to since ``since`` (send log)."""
        with read_tx(self.engine) as tx:
            return messages.send_recipients(tx, sim, since=since)

    def budget(self, modem: str, limits: RateLimits, *, now: float | None = None, sim: str | None = None) -> BudgetView:
        """Parts left in the minute/hour/day windows and the next allowed send time."""
        now = self.clock() if now is None else now
        budget = SendBudget(limits, self.send_times(sim or modem, since=now - max(limits.windows)))
        return budget.view(modem, now)

    def upsert_modem(self, name: str, *, imei: str | None = None, iccid: str | None = None,
                     model: str | None = None, state: str | None = None, node: str | None = None) -> None:
        """Remember a modem's identity, last state and node (fields given as None are kept)."""
        with write_tx(self.engine) as tx:
            messages.upsert_modem(tx, name, self.clock(), imei=imei, iccid=iccid, model=model, state=state,
                                  node=node)

    def modems(self) -> list[ModemView]:
        with read_tx(self.engine) as tx:
            return messages.list_modems(tx)

    def nodes(self) -> list[NodeView]:
        """Every node that ever used this database, with its state by the database's clock."""
        with read_tx(self.engine) as tx:
            return nodes_db.list_nodes(tx)

    # ------------------------------------------------------------------ inbound and consent

    def record_inbound(
        self, modem: str, sender: str, body: str, *, received_at: datetime | float | None = None,
        parts: int = 1, pdu_hex: str | None = None, metadata: dict[str, Any] | None = None,
    ) -> InboundView:
        """Store a received (already reassembled) SMS durably."""
        at = as_timestamp(received_at) if received_at is not None else self.clock()
        with write_tx(self.engine) as tx:
            new_id = inbound.record_inbound(tx, modem, sender, body, at, parts=parts, pdu_hex=pdu_hex,  # type: ignore[arg-type]
                                            metadata_json=json.dumps(metadata) if metadata else None)
            sticky.note_inbound_sim(tx, new_id, modem)
        return self.get_inbound(new_id)

    def get_inbound(self, inbound_id: int) -> InboundView:
        """One received message as the API shows it; :class:`NotFound` if there is none."""
        record = self.get_inbound_record(inbound_id)
        from appliance.db.rows import as_datetime

        return InboundView(record.id, record.modem, record.sender, record.body,
                           as_datetime(record.received_at), record.parts, record.metadata,  # type: ignore[arg-type]
                           record.complete, record.keyword)

    def list_inbound(self, *, limit: int = 50, cursor: str | None = None, sender: str | None = None) -> Page:
        """Received messages, newest first."""
        with read_tx(self.engine) as tx:
            return inbound.list_inbound(tx, limit=limit, cursor=cursor, sender=sender)

    def opt_out(self, number: str, *, source: str, note: str | None = None,
                within: Callable[[Tx, bool], None] | None = None) -> bool:
        """Add ``number`` to the suppression list; False if it was already on it. Logged;
        messages still queued to it become ``suppressed`` in the same transaction.
        ``within(tx, added)`` runs in that transaction too (an audit line)."""
        with write_tx(self.engine) as tx:
            added = consent.add_opt_out(tx, number, self.clock(), source=source, note=note)
            if within is not None:
                within(tx, added)
            return added

    def opt_in(self, number: str, *, source: str, note: str | None = None,
               within: Callable[[Tx, bool], None] | None = None) -> bool:
        """Remove ``number`` from the suppression list; False if it was not on it. Logged.
        ``within(tx, removed)`` runs in the same transaction."""
        with write_tx(self.engine) as tx:
            removed = consent.remove_opt_out(tx, number, self.clock(), source=source, note=note)
            if within is not None:
                within(tx, removed)
            return removed

    def is_opted_out(self, number: str) -> bool:
        with read_tx(self.engine) as tx:
            return consent.is_opted_out(tx, number)

    def opted_out_among(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` are on the suppression list."""
        with read_tx(self.engine) as tx:
            return consent.opted_out_among(tx, numbers)

    def list_opt_outs(self, *, limit: int = 100, cursor: str | None = None) -> Page:
        """The suppression list, ordered by number."""
        with read_tx(self.engine) as tx:
            return consent.list_opt_outs(tx, limit=limit, cursor=cursor)

    def consent_log(self, number: str) -> list[ConsentEntry]:
        """``(at, action, source, note)`` of every consent change of ``number``, oldest first."""
        with read_tx(self.engine) as tx:
            return consent.consent_log(tx, number)

    # ------------------------------------------------------------------ status reports

    def apply_status_report(
        self, modem: str, reference: int, recipient: str, status: int, *, at: float | None = None
    ) -> ReportMatch | None:
        """Match a status report on (modem, TP-MR, recipient) within the report window.

        A completed TP-ST delivers the part (the message when all parts are); a temporary
        one keeps it waiting; a permanent one fails part and message. None if no part matched.
        """
        from appliance.pdu.status import status_outcome

        now = self.clock() if at is None else at
        with write_tx(self.engine) as tx:
            return messages.match_status_report(tx, modem, reference, recipient, status, status_outcome(status),
                                                now=now, window_s=self.report_window_s)

    def apply_status_report_event(self, event: Any) -> ReportMatch | None:
        """:meth:`apply_status_report` for an :class:`appliance.modem.StatusReportEvent`."""
        report = event.report
        return self.apply_status_report(event.modem, report.reference, report.recipient, report.status)

    # ------------------------------------------------------------------ dispatcher side

    def recover(self, modems: Sequence[str] | None = None, *, by: str = "start-up") -> Recovery:
        """Crash recovery; run before any worker claims. ``modems`` limits it to those
        modems' work (one node of several); None recovers everything."""
        with write_tx(self.engine) as tx:
            result = sending.recover(tx, self.clock(), modems=modems, by=by)
        if result.unknown or result.requeued:
            _log.warning(
                "recovery (%s): %d message(s) left mid-send are now unknown; %d claim(s) went back to the queue",
                by, len(result.unknown), len(result.requeued),
            )
            self._notify()
        return result

    def claim(self, modem: str, *, max_parts: int, now: float | None = None, sim: str | None = None,
              recipients: Collection[str] | None = None, sticky: Sticky | None = None) -> Claim | None:
        """Claim the next message ``modem`` may send now (at most ``max_parts`` parts);
        ``sim`` is the key its parts are logged under (the SIM's ICCID); with
        ``recipients``, only a message to one of those numbers; ``sticky`` as in
        :func:`appliance.db.sending.claim_next`."""
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        marketing = quiet is None or not quiet.contains(now)
        # Sweeping expired messages costs a statement: at most once a second is enough (a
        # claimed message's own validity is checked again before its first part leaves).
        sweep = not (0 <= now - self._last_sweep < EXPIRY_SWEEP_S)
        # Not fsynced: a claim lost in a power cut is what start-up recovery undoes anyway;
        # the part's "submitting" commit that follows is durable and syncs this one too.
        with write_tx(self.engine, durable=False, pipeline=True) as tx:
            claim = sending.claim_next(tx, modem, max_parts=max_parts, now=now, sweep=sweep,
                                       marketing=marketing, sim=sim, recipients=recipients, sticky=sticky)
        if sweep:
            self._last_sweep = now
        return claim

    def next_wakeup(self, modem: str, *, now: float | None = None, sticky: Sticky | None = None) -> float | None:
        """The earliest due or expiry time of queued work ``modem`` could take (None: none).

        Held messages are not work. Inside quiet hours marketing messages are not work
        until the window ends: then the window's end is their wake-up time.
        """
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        in_quiet = quiet is not None and quiet.contains(now)
        with read_tx(self.engine) as tx:
            due, marketing_waits, exp = sending.next_times(tx, modem, transactional_only=in_quiet, sticky=sticky)
        if in_quiet and quiet is not None and marketing_waits:
            end = quiet.ends_at(now)
            due = end if due is None else min(due, end)
        times = [t for t in (due, exp) if t is not None]
        return min(times) if times else None

    def begin_part(self, claim: Claim, part: ClaimedPart, now: float) -> str:
        with write_tx(self.engine, pipeline=True) as tx:
            return sending.begin_part(tx, claim, part, now)

    def part_sent(self, claim: Claim, part: ClaimedPart, mr: int, now: float) -> bool:
        with write_tx(self.engine, pipeline=True) as tx:
            return sending.part_sent(tx, claim, part, mr, now)

    def part_sent_and_next(
        self, claim: Claim, part: ClaimedPart, mr: int, now: float, *, max_parts: int,
        recipients: Collection[str] | None = None, sticky: Sticky | None = None,
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
        with write_tx(self.engine, pipeline=True) as tx:
            sending.part_sent(tx, claim, part, mr, now)
            nxt = sending.claim_next(tx, claim.modem, max_parts=max_parts, now=now, sweep=False,
                                     marketing=marketing, sim=claim.sim, recipients=recipients, sticky=sticky)
            if nxt is not None and sending.begin_part(tx, nxt, nxt.parts[0], now) != "go":
                nxt = None
        return nxt

    def part_unknown(self, claim: Claim, part: ClaimedPart, error: str) -> None:
        with write_tx(self.engine) as tx:
            sending.part_unknown(tx, claim, part, self.clock(), error)

    def part_failed(self, claim: Claim, part: ClaimedPart | None, error: str) -> None:
        with write_tx(self.engine) as tx:
            sending.part_failed(tx, claim, part, self.clock(), error)

    def part_retry(self, claim: Claim, part: ClaimedPart, error: str, *, forget_send: bool) -> str:
        delay = self.backoff.delay(claim.attempts + 1)
        with write_tx(self.engine) as tx:
            return sending.part_retry(tx, claim, part, self.clock(), error, delay=delay, forget_send=forget_send)

    def release(self, claim: Claim, reason: str, *, part: ClaimedPart | None = None) -> None:
        with write_tx(self.engine) as tx:
            sending.release(tx, claim, self.clock(), reason, part=part)
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
        with write_tx(self.engine) as tx:
            stored = inbound.store_inbound(
                tx, modem, sender, body, digest=digest, at=at, parts=parts, complete=complete, keyword=keyword,
                handled=handled, pdu_hex=pdu_hex, metadata_json=dump_json(metadata), fragments=fragments,
            )
            if stored.created:  # the SIM it reached: sticky sender
                sticky.note_inbound_sim(tx, stored.id, modem)
            return stored

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
        with write_tx(self.engine) as tx:
            group = inbound.store_fragment(tx, modem, sender, ref=ref, total=total, seq=seq, body=body,
                                           pdu_hex=pdu_hex, digest=digest, at=at)
        if group is not None and {f.seq for f in group} >= set(range(1, total + 1)):
            return group
        return None

    def stale_inbound_fragments(self, before: float) -> list[list[InboundFragmentView]]:
        """Groups of stored parts whose first part arrived before ``before`` (seq order)."""
        with read_tx(self.engine) as tx:
            return inbound.stale_fragment_groups(tx, before)

    def get_inbound_record(self, inbound_id: int) -> StoredInbound:
        """One inbound row with its handling state; :class:`NotFound` if there is none."""
        with read_tx(self.engine) as tx:
            return inbound.get_inbound(tx, inbound_id)

    def list_unhandled_inbound(self, *, limit: int = 100) -> list[StoredInbound]:
        """Inbound rows whose keyword actions are not recorded as done, oldest first."""
        with read_tx(self.engine) as tx:
            return inbound.list_unhandled(tx, limit=limit)

    def mark_inbound_handled(self, inbound_id: int, *, at: float | None = None) -> bool:
        """Record that the keyword actions of ``inbound_id`` are done; False if they already were."""
        with write_tx(self.engine) as tx:
            return inbound.mark_handled(tx, inbound_id, self.clock() if at is None else at)

    def prune_inbound_pdus(self, before: float) -> int:
        """Forget digests of parts consumed before ``before`` (a re-read comes within days)."""
        with write_tx(self.engine) as tx:
            return inbound.prune_consumed_pdus(tx, before)
