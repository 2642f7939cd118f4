"""The queue's inbox: received messages (stored once, reassembled, keyword state) and
consent (the suppression list and its log)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from appliance.db import consent, inbound, sticky
from appliance.db.consent import ConsentEntry
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.inbound import InboundFragmentView, InboundView, StoredInbound
from appliance.db.rows import Page, as_timestamp, dump_json
from appliance.queue.base import QueueBase

__all__ = ["Inbox"]


class Inbox(QueueBase):
    """Received SMS (``record_inbound``, ``store_inbound``, fragments, handling state)
    and opt-outs (``opt_out``, ``opt_in``, the suppression list, ``consent_log``)."""

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
