"""The inbound handler: every received SMS stored once, multipart reassembled, keywords acted on.

:class:`InboundService` is what a :class:`~appliance.modem.ManagedModem` calls with each
SMS-DELIVER (``on_sms``) and status report (``on_status_report``), on the modem's thread.
When :meth:`InboundService.handle_sms` returns, the message is durably stored (the driver then
deletes it from the modem); when it raises, the modem keeps it and hands it over again later.

Stored once
    A PDU is identified by ``sha256(modem + "\\n" + PDU hex)``: the same stored PDU read twice
    (a crash between our commit and the modem's delete, or one SMS seen in two storages of a
    modem) is one message. The modem is part of the digest because an SMS-DELIVER does not
    name its recipient: a sender texting the same words to two of our SIMs in the same second
    sends two identical PDUs, and those are two messages.

Multipart
    Parts wait in ``inbound_fragments`` keyed by (modem, sender, ref, total). When parts
    1..total are there they become one ``inbound`` row (``parts=total``, its digest the
    sha256 of the parts' digests in order) and the parts are deleted in that transaction.
    Parts older than ``reassembly_timeout_s`` are flushed by :meth:`InboundService.sweep` as
    what arrived, ``complete=False`` (metadata ``missing`` lists the absent part numbers).

Keywords (docs/architecture.md, "Interfaces"), on complete messages from phone numbers
    STOP → opt-out (consent log source ``sms:<inbound id>``) and one confirmation through the
    modem it came in on, which may reach the number although it is now opted out. A STOP from
    a number that is already opted out is logged again but gets no second confirmation (as
    Twilio does): the choice is taken when the row is stored and kept in its metadata
    (``reply``), so a crash and a re-run do not change it. START → opt-in and a reply under
    the normal rules (the number is allowed again by then). HELP → the help reply under the
    normal rules (an opted-out number's HELP reply is stored ``suppressed``).

Crash safety
    A keyword row is stored with ``handled_at`` NULL; the actions run (each idempotent: the
    opt-out is skipped when the consent log already has this row's source, the reply carries
    the idempotency key ``inbound-<id>-reply``); then ``handled_at`` is set. :meth:`start` and
    the service's thread re-run the actions of rows left unhandled.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from appliance.inbound.keywords import Keyword, KeywordTable
from appliance.numbers import InvalidNumber, mask, to_e164
from appliance.pdu.address import is_phone_number
from appliance.queue.errors import DuplicateIdempotencyKey, InvalidRequest
from appliance.queue.store import InboundFragmentView, Queue, StoredInbound

if TYPE_CHECKING:
    from appliance.modem.types import InboundSms, StatusReportEvent

__all__ = ["InboundService", "pdu_digest"]

_log = logging.getLogger(__name__)

PDU_MEMORY_S = 90 * 86400.0
"""How long digests of reassembled parts are kept to recognise a re-read part."""


def pdu_digest(modem: str, pdu_hex: str) -> str:
    """The identity of one received PDU on one modem (see the module doc)."""
    return hashlib.sha256(f"{modem}\n{pdu_hex.strip().upper()}".encode()).hexdigest()


def _group_digest(parts: Sequence[InboundFragmentView]) -> str:
    return hashlib.sha256("\n".join(p.digest for p in parts).encode()).hexdigest()


class InboundService:
    """Stores received SMS, reassembles multipart ones and acts on keywords (module doc).

    ``default_region`` reads senders without ``+`` as national numbers of that region
    (``None``: senders are kept as the network gave them). ``interval_s`` is how often the
    background thread sweeps timed-out parts and retries unhandled rows.
    """

    def __init__(
        self,
        queue: Queue,
        *,
        keywords: KeywordTable | None = None,
        reassembly_timeout_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        default_region: str | None = None,
        interval_s: float = 5.0,
    ) -> None:
        self.queue = queue
        self.keywords = keywords if keywords is not None else KeywordTable()
        self.reassembly_timeout_s = reassembly_timeout_s
        self.clock = clock
        self.default_region = default_region
        self.interval_s = interval_s
        self._lock = threading.RLock()  # one handler at a time: modem threads and the sweeper
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Re-run the actions of rows a crash left unhandled, then start the sweeper thread."""
        if self._thread is not None:
            return
        self.retry_unhandled()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="inbound", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (quickly: set an event) after an inbound row is handled."""
        self._listeners.append(callback)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.sweep()
                self.retry_unhandled()
            except Exception:  # noqa: BLE001 - keep sweeping; the next round retries
                _log.exception("inbound sweep failed; retrying in %.0f s", self.interval_s)

    # ------------------------------------------------------------------ modem callbacks

    def handle_sms(self, event: InboundSms) -> None:
        """Store ``event`` durably (once) and act on its keyword; raise to keep it on the modem."""
        msg = event.message
        sender = self._sender(msg.sender)
        pdu_hex = event.pdu_hex.strip().upper()
        digest = pdu_digest(event.modem, pdu_hex)
        now = self.clock()
        concat = msg.concat
        with self._lock:
            if concat is not None and concat[1] > 1 and 1 <= concat[2] <= concat[1]:
                ref, total, seq = concat
                group = self.queue.store_inbound_fragment(
                    event.modem, sender, ref=ref, total=total, seq=seq, body=msg.text, pdu_hex=pdu_hex,
                    digest=digest, received_at=now,
                )
                if group is None:
                    _log.debug("[%s] part %d/%d of ref %d from %s kept for reassembly",
                               event.modem, seq, total, ref, mask(sender))
                    return
                record = self._assemble(group, complete=True, extra=_deliver_meta(msg))
            else:
                record = self._store(event.modem, sender, msg.text, digest=digest, received_at=now,
                                     parts=1, complete=True, pdu_hex=pdu_hex, extra=_deliver_meta(msg))
            if record.handled_at is None:
                self._act(record)

    def handle_status_report(self, event: StatusReportEvent) -> None:
        """Apply a status report to the part it answers (unmatched ones are logged as events)."""
        self.queue.apply_status_report_event(event)

    # ------------------------------------------------------------------ periodic work

    def sweep(self, now: float | None = None) -> int:
        """Store parts waiting longer than the reassembly timeout as incomplete messages.

        Returns how many messages were stored. A group found complete (a crash between its
        last part and the assembly) is stored complete.
        """
        now = self.clock() if now is None else now
        stored = 0
        with self._lock:
            for group in self.queue.stale_inbound_fragments(now - self.reassembly_timeout_s):
                total = group[0].total
                complete = {p.seq for p in group} >= set(range(1, total + 1))
                record = self._assemble(group, complete=complete, extra=None)
                if record.created:
                    stored += 1
                    if not complete:
                        _log.warning("[%s] multipart message from %s (ref %d) stored incomplete: "
                                     "parts %s of %d never arrived", record.modem, mask(record.sender),
                                     group[0].ref, (record.metadata or {}).get("missing"), total)
                if record.handled_at is None:
                    self._act(record)
            self.queue.prune_inbound_pdus(now - PDU_MEMORY_S)
        return stored

    def retry_unhandled(self) -> int:
        """Do the keyword actions of every row left unhandled; returns how many were done."""
        done = 0
        with self._lock:
            for record in self.queue.list_unhandled_inbound():
                self._act(record)
                done += 1
        return done

    # ------------------------------------------------------------------ internals

    def _sender(self, raw: str) -> str:
        if self.default_region is None or not is_phone_number(raw):
            return raw
        try:
            return to_e164(raw, self.default_region)
        except InvalidNumber:
            return raw  # a short code or a number phonenumbers does not know: keep it as given

    def _store(self, modem: str, sender: str, body: str, *, digest: str, received_at: float, parts: int,
               complete: bool, pdu_hex: str | None, extra: dict[str, Any] | None,
               fragments: Sequence[InboundFragmentView] = ()) -> StoredInbound:
        metadata = dict(extra or {})
        keyword: str | None = None
        match = self.keywords.classify(body) if complete and is_phone_number(sender) else None
        if match is not None:
            keyword = match.keyword.value
            metadata["language"] = match.language.name
            # A repeated STOP gets no second confirmation; decided now, kept for re-runs.
            metadata["reply"] = not (match.keyword is Keyword.STOP and self.queue.is_opted_out(sender))
        return self.queue.store_inbound(
            modem, sender, body, digest=digest, received_at=received_at, parts=parts, complete=complete,
            keyword=keyword, handled=keyword is None, pdu_hex=pdu_hex, metadata=metadata or None,
            fragments=fragments,
        )

    def _assemble(self, group: Sequence[InboundFragmentView], *, complete: bool,
                  extra: dict[str, Any] | None) -> StoredInbound:
        first = group[0]
        by_seq: dict[int, InboundFragmentView] = {}
        for part in group:
            by_seq.setdefault(part.seq, part)  # a repeated part number: the first one counts
        chosen = [by_seq[s] for s in sorted(by_seq)]
        metadata = dict(extra or {})
        if not complete:
            metadata["total"] = first.total
            metadata["missing"] = [s for s in range(1, first.total + 1) if s not in by_seq]
        return self._store(
            first.modem, first.sender, "".join(p.body for p in chosen), digest=_group_digest(chosen),
            received_at=max(p.received_at for p in group), parts=len(chosen), complete=complete,
            pdu_hex=None, extra=metadata, fragments=group,
        )

    def _act(self, record: StoredInbound) -> None:
        """The keyword actions of ``record`` (idempotent), then mark it handled."""
        meta = record.metadata or {}
        if record.keyword is not None:
            keyword = Keyword(record.keyword)
            source = f"sms:{record.id}"
            if keyword is not Keyword.HELP and not any(
                entry[2] == source for entry in self.queue.consent_log(record.sender)
            ):
                if keyword is Keyword.STOP:
                    self.queue.opt_out(record.sender, source=source, note=record.body)
                    _log.info("[%s] %s opted out by SMS (inbound %d)", record.modem, mask(record.sender), record.id)
                else:
                    self.queue.opt_in(record.sender, source=source, note=record.body)
                    _log.info("[%s] %s opted in by SMS (inbound %d)", record.modem, mask(record.sender), record.id)
            if meta.get("reply", True):
                self._reply(record, keyword, meta.get("language"))
        self.queue.mark_inbound_handled(record.id)
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # noqa: BLE001 - a listener's bug must not fail the handling
                _log.exception("inbound listener failed")

    def _reply(self, record: StoredInbound, keyword: Keyword, language: str | None) -> None:
        match = self.keywords.classify(record.body)
        text = match.reply if match is not None and match.keyword is keyword \
            else self.keywords.reply_for(keyword, language)
        try:
            self.queue.enqueue(
                [record.sender], text, modem=record.modem, ignore_opt_out=keyword is Keyword.STOP,
                idempotency_key=f"inbound-{record.id}-reply", priority="high",
            )
        except DuplicateIdempotencyKey:
            pass  # queued before a crash, with a reply text configured differently then
        except InvalidRequest as exc:
            _log.error("[%s] the %s reply to %s cannot be sent: %s (check the [keywords] replies)",
                       record.modem, keyword.value.upper(), mask(record.sender), exc)


def _deliver_meta(msg: Any) -> dict[str, Any]:
    """What an SMS-DELIVER tells beyond sender and text (kept in the row's metadata)."""
    meta: dict[str, Any] = {"encoding": msg.encoding}
    if msg.smsc:
        meta["smsc"] = msg.smsc
    if msg.timestamp is not None:
        meta["sent_at"] = msg.timestamp.isoformat()
    if msg.flash:
        meta["flash"] = True
    return meta
