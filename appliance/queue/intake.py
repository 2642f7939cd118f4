"""The queue's intake: enqueue (one body or a broadcast), read, operator actions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from appliance.db import consent, messages, sticky
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.errors import DuplicateIdempotencyKey, InvalidRequest
from appliance.db.messages import EventView, MessageView, NewMessage
from appliance.db.rows import Page, as_timestamp, dump_json
from appliance.db.states import PRIORITIES, MessageStatus
from appliance.pdu import PduError, plan
from appliance.queue.base import QueueBase

__all__ = ["Intake"]

# Plain strings for bulk inserts: the driver adapts a str subclass (the enum) more slowly.
_QUEUED = MessageStatus.QUEUED.value
_SUPPRESSED = MessageStatus.SUPPRESSED.value


class Intake(QueueBase):
    """Messages in (``enqueue``, ``enqueue_many``), read back (``get``, ``list``,
    ``stats``, ``events``) and acted on by an operator (``cancel``, ``resend``)."""

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
        self.notify()
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
        self.notify()
        return batch_id, first, first + len(planned) - 1

    def _known_sims(self, tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
        return sticky.last_sims(tx, numbers) if self.sticky_sender and numbers else {}

    def known_sims(self, numbers: Sequence[str]) -> dict[str, str]:
        """The SIM each of ``numbers`` knows: the one that last texted it or that it last
        wrote to (numbers with neither are left out). docs/architecture.md, "Sticky sender"."""
        with read_tx(self.engine) as tx:
            return sticky.last_sims(tx, numbers)

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
        self.notify()
        return self.get(message_id)
