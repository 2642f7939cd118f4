"""The webhook outbox: durable rows, one per (event, receiver URL), kept until delivered.

:meth:`Outbox.pump` turns new rows of the queue into outbox rows in one transaction with its
cursors (table ``cursors``), so a crash neither loses an event nor makes it twice:

- ``inbound`` rows once handled (``handled_at`` set: their keyword actions are done) →
  event ``inbound``, id ``inb_<inbound id>``. The cursor stops before the first unhandled
  row, so a row handled late is not skipped.
- ``events`` rows of the kinds in :data:`STATUS_KINDS` → event ``status``, id ``evt_<event id>``;
  rows of the kinds in :data:`MODEM_KINDS` (no message) → an event of that type
  (``modem.balance_low``, ``modem.paused``, ``modem.resumed``), id ``evt_<event id>``.

Cursors start at 0: the first pump on a database turns its whole history into events.
Event ids are stable and ``(event_id, url)`` is unique, so a repeated pump is harmless; the
pump holds the cursors' lock, so nodes sharing a database pump one at a time.

On PostgreSQL a row can become visible after one with a larger id (ids are handed out
before commit). The pump does not move a cursor past such a gap until every writing
transaction on the database that began before it first saw the gap has ended (the gap was
then a rollback, or its row is visible now) — or, at the latest, after :data:`GAP_TIMEOUT_S`.

Delivery rows are leased (:meth:`Outbox.lease`): each attempt is made by one node.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from appliance.db import outbox as outbox_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.outbox import InboundSource, NewDelivery, OutboxEntry, StatusSource

__all__ = ["EVENTS_CURSOR", "GAP_TIMEOUT_S", "INBOUND_CURSOR", "MODEM_KINDS", "STATUS_KINDS", "Outbox", "OutboxEntry", "iso"]

_log = logging.getLogger(__name__)

STATUS_KINDS = frozenset(
    {"sent", "delivered", "undelivered", "failed", "unknown", "expired", "suppressed", "cancelled"}
)
MODEM_KINDS = frozenset({"modem.balance_low", "modem.paused", "modem.resumed"})
INBOUND_CURSOR = "webhooks.inbound"
EVENTS_CURSOR = "webhooks.events"
GAP_TIMEOUT_S = 300.0
"""How long the pump waits at most for a gap in the ids to fill (a transaction open longer
than this is not one of the appliance's)."""
# Between an id being drawn and its transaction getting a transaction id lie microseconds;
# waiting this long after first seeing a gap covers them.
_GAP_MIN_WAIT_S = 0.5
_Source = TypeVar("_Source", InboundSource, StatusSource)


def iso(ts: float) -> str:
    """UNIX seconds as ISO 8601 UTC (``2026-01-02T03:04:05.678000Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Outbox:
    """The outbox table on the queue's engine (see the module doc)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        # (cursor, first missing id) → (gap_mark, monotonic time) when first seen
        self._gaps: dict[tuple[str, int], tuple[float | None, float]] = {}

    # ------------------------------------------------------------------ pump

    def has_new(self) -> bool:
        """Cheap check (one read): is there anything :meth:`pump` would move?"""
        with read_tx(self.engine) as tx:
            handled = outbox_db.first_inbound_handled(tx, outbox_db.read_cursor(tx, INBOUND_CURSOR))
            events_at = outbox_db.read_cursor(tx, EVENTS_CURSOR)
            newest = outbox_db.newest_event_id(tx)
        return handled or (newest is not None and newest > events_at)

    def pump(self, subscriptions: Mapping[str, Sequence[str]], *, batch: int = 500) -> int:
        """Move up to ``batch`` new rows of each source into the outbox, one row per URL
        subscribed to the event type (``{"inbound": [url, ...], "status": [...]}``).
        Returns how many outbox rows were made."""
        now = self.clock()
        with write_tx(self.engine) as tx:
            outbox_db.lock_cursors(tx)
            # Reads first: the gap checks must run before this transaction writes.
            settled = self._settled_gaps(tx)
            inbound_at = outbox_db.read_cursor(tx, INBOUND_CURSOR)
            inbound = self._contiguous(tx, INBOUND_CURSOR, inbound_at,
                                       outbox_db.inbound_after(tx, inbound_at, limit=batch), settled)
            events_at = outbox_db.read_cursor(tx, EVENTS_CURSOR)
            events = self._contiguous(tx, EVENTS_CURSOR, events_at,
                                      outbox_db.events_after(tx, events_at, limit=batch), settled)

            new: list[NewDelivery] = []
            urls = list(dict.fromkeys(subscriptions.get("inbound", ())))
            for r in inbound:
                if r.handled_at is None:
                    break  # keyword actions pending: its event (and later ones) wait
                new.extend(NewDelivery(f"inb_{r.id}", url, "inbound", _inbound_payload(r)) for url in urls)
                inbound_at = r.id
            urls = list(dict.fromkeys(subscriptions.get("status", ())))
            for e in events:
                events_at = e.id
                if e.kind in STATUS_KINDS and e.message_id is not None and urls:
                    new.extend(NewDelivery(f"evt_{e.id}", url, "status", _status_payload(e)) for url in urls)
                elif e.kind in MODEM_KINDS and e.message_id is None:
                    hooks = list(dict.fromkeys(subscriptions.get(e.kind, ())))
                    new.extend(NewDelivery(f"evt_{e.id}", url, e.kind, _modem_payload(e)) for url in hooks)
            made = outbox_db.add_deliveries(tx, new, now)
            outbox_db.set_cursor(tx, INBOUND_CURSOR, inbound_at)
            outbox_db.set_cursor(tx, EVENTS_CURSOR, events_at)
        if self._gaps:
            self._forget_gaps(INBOUND_CURSOR, inbound_at)
            self._forget_gaps(EVENTS_CURSOR, events_at)
        return made

    def _settled_gaps(self, tx: Tx) -> set[tuple[str, int]]:
        """The gaps seen before whose possible writers have all ended since."""
        settled: set[tuple[str, int]] = set()
        if not self._gaps:
            return settled
        now = time.monotonic()
        finished: dict[float | None, bool] = {}
        for key, (mark, seen) in self._gaps.items():
            waited = now - seen
            if waited >= GAP_TIMEOUT_S:
                _log.warning("webhook pump: %s id %d is still missing after %.0f s; going on without it",
                             key[0], key[1], waited)
                settled.add(key)
            elif waited >= _GAP_MIN_WAIT_S:
                if mark not in finished:
                    finished[mark] = outbox_db.writers_done(tx, mark)
                if finished[mark]:
                    settled.add(key)
        return settled

    def _contiguous(self, tx: Tx, cursor: str, after: int, rows: list[_Source],
                    settled: set[tuple[str, int]]) -> list[_Source]:
        """``rows`` up to the first gap in their ids that may still fill (PostgreSQL).
        Every new gap is noted, so a batch's gaps settle together."""
        if not tx.postgres:
            return rows
        end = len(rows)
        mark: float | None = None
        expected = after + 1
        for i, r in enumerate(rows):
            if r.id != expected:
                key = (cursor, expected)
                if key not in settled:
                    if key not in self._gaps:
                        if mark is None:
                            mark = outbox_db.gap_mark(tx)
                        self._gaps[key] = (mark, time.monotonic())
                    end = min(end, i)
            expected = r.id + 1
        return rows[:end]

    def _forget_gaps(self, cursor: str, at: int) -> None:
        """The cursor is past these gaps now."""
        for key in [k for k in self._gaps if k[0] == cursor and k[1] <= at]:
            del self._gaps[key]

    # ------------------------------------------------------------------ delivery rows

    def lease(self, url: str, node: str, *, lease_s: float, limit: int = 20) -> list[OutboxEntry]:
        """Lease the due rows of ``url`` (up to ``limit``, oldest first) to ``node`` for
        ``lease_s`` seconds: no other node attempts them meanwhile."""
        now = self.clock()
        with write_tx(self.engine) as tx:
            return outbox_db.lease_due(tx, url, node, now=now, until=now + lease_s, limit=limit)

    def release(self, entry_ids: Sequence[int], node: str, *, next_attempt_at: float | None = None) -> int:
        """Give back leased rows not attempted, due again at ``next_attempt_at`` (now)."""
        if not entry_ids:
            return 0
        at = self.clock() if next_attempt_at is None else next_attempt_at
        with write_tx(self.engine) as tx:
            return outbox_db.release(tx, entry_ids, node, next_attempt_at=at)

    def release_node(self, node: str) -> int:
        """Give back every lease ``node`` holds (it restarted); returns how many."""
        with write_tx(self.engine) as tx:
            return outbox_db.release_node(tx, node, self.clock())

    def due(self, url: str, *, now: float | None = None, limit: int = 20) -> list[OutboxEntry]:
        """Undelivered rows for ``url`` whose next attempt is due, in the order they were
        made (a read: see :meth:`lease` to attempt them)."""
        now = self.clock() if now is None else now
        with read_tx(self.engine) as tx:
            return outbox_db.list_due(tx, url, now=now, limit=limit)

    def next_due(self, url: str) -> float | None:
        """When the next undelivered row for ``url`` is due (None: nothing pending)."""
        with read_tx(self.engine) as tx:
            return outbox_db.next_due(tx, url)

    def mark_delivered(self, entry_id: int, *, attempts: int, at: float | None = None) -> None:
        at = self.clock() if at is None else at
        with write_tx(self.engine) as tx:
            outbox_db.mark_delivered(tx, entry_id, attempts=attempts, at=at)

    def mark_failed(self, entry_id: int, *, attempts: int, next_attempt_at: float, error: str,
                    node: str | None = None) -> None:
        """Record a failed attempt; ``next_attempt_at = inf`` parks the row (given up).
        With ``node``, a row another node has leased since is left alone."""
        with write_tx(self.engine) as tx:
            outbox_db.mark_failed(tx, entry_id, attempts=attempts, next_attempt_at=next_attempt_at, error=error,
                                  node=node)

    def entries(self, *, url: str | None = None, event_id: str | None = None,
                pending: bool | None = None, limit: int = 1000) -> list[OutboxEntry]:
        """Outbox rows (oldest first), filtered by receiver, event id and delivered or not."""
        with read_tx(self.engine) as tx:
            return outbox_db.list_entries(tx, url=url, event_id=event_id, pending=pending, limit=limit)

    def prune(self, before: float) -> int:
        """Delete rows delivered before ``before``; returns how many."""
        with write_tx(self.engine) as tx:
            return outbox_db.prune_delivered(tx, before)


def _inbound_payload(r: InboundSource) -> str:
    event_id = f"inb_{r.id}"
    return _json({
        "id": event_id, "type": "inbound", "created_at": iso(r.received_at),
        "data": {"id": r.id, "from": r.sender, "body": r.body, "received_at": iso(r.received_at),
                 "parts": r.parts, "complete": r.complete, "keyword": r.keyword, "modem": r.modem},
    })


def _status_payload(e: StatusSource) -> str:
    detail = _detail(e.detail)
    error = detail.get("error") if isinstance(detail.get("error"), str) else None
    if error is None and e.kind != "sent" and e.kind != "delivered":
        error = e.message_error
    return _json({
        "id": f"evt_{e.id}", "type": "status", "created_at": iso(e.at),
        "data": {"message_id": e.message_id, "to": e.recipient, "status": e.kind, "modem": e.modem or e.message_modem,
                 "error": error, "at": iso(e.at)},
    })


def _modem_payload(e: StatusSource) -> str:
    return _json({
        "id": f"evt_{e.id}", "type": e.kind, "created_at": iso(e.at),
        "data": {"modem": e.modem, **_detail(e.detail), "at": iso(e.at)},
    })


def _detail(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
