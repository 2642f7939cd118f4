"""Twilio-style webhooks from the durable outbox: status callbacks and inbound SMS.

- **Status callbacks**: every event of a message sent with a ``StatusCallback`` (the kinds
  in :data:`~appliance.twilio.model.CALLBACK_STATUS`) becomes an outbox row (event
  ``twilio-status``, id ``twst_<event id>``, the form body as payload).
- **Inbound**: each inbound SMS, once the appliance has handled it (STOP / START / HELP
  first), becomes a row (event ``twilio-inbound``, id ``twin_<inbound id>``) to the
  modem's ``sms_url`` or ``[twilio] sms_url``. A TwiML answer's ``<Message>`` texts go
  back to the sender through the modem the SMS came in on (opt-outs apply; none for a
  STOP / START / HELP, which the appliance already answered, as Twilio's Advanced
  Opt-Out does). A TwiML answer that cannot be read is logged (one line) and counted in
  :attr:`TwilioService.bad_twiml`, not retried.

Both are POSTs of ``application/x-www-form-urlencoded`` signed with ``X-Twilio-Signature``
(:mod:`appliance.twilio.signing`) by the account's Auth Token, retried with backoff until
the receiver answers 2xx. Rows are leased per delivery, so several nodes share the work.
"""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Engine

from appliance.config import Settings
from appliance.db import outbox as outbox_db
from appliance.db import twilio as twilio_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.outbox import InboundSource, NewDelivery, OutboxEntry, StatusSource
from appliance.queue.store import Queue
from appliance.text import url_host
from appliance.twilio.model import API_VERSION, CALLBACK_STATUS
from appliance.twilio.senders import modem_numbers
from appliance.twilio.signing import twilio_signature
from appliance.webhooks.outbox import GAP_TIMEOUT_S

if TYPE_CHECKING:  # imported when a delivery is made (daemon idle memory)
    import httpx

__all__ = ["EVENTS", "TwilioService", "inbound_sid", "parse_twiml"]

_log = logging.getLogger(__name__)

STATUS_EVENT = "twilio-status"
INBOUND_EVENT = "twilio-inbound"
EVENTS = (STATUS_EVENT, INBOUND_EVENT)
_EVENTS_CURSOR = "twilio.events"
_INBOUND_CURSOR = "twilio.inbound"
_LEASE_BATCH = 10
_IDLE_WAIT_S = 5.0
_MAX_TWIML_BYTES = 64 * 1024
_GAP_MIN_WAIT_S = 0.5
_CHECK_IN_USE_S = 10.0
_Row = TypeVar("_Row", InboundSource, StatusSource)


class BadTwiml(ValueError):
    """A TwiML answer that cannot be read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def inbound_sid(account_sid: str, inbound_id: int) -> str:
    """The ``MessageSid`` of an inbound SMS: stable (the same on every retry) and unique."""
    return "SM" + hashlib.sha256(f"inbound:{account_sid}:{inbound_id}".encode()).hexdigest()[:32]


def parse_twiml(text: str) -> list[str]:
    """The texts of the ``<Message>`` verbs of a TwiML ``<Response>`` (``[]`` for an empty
    answer); :class:`BadTwiml` when it is not TwiML this appliance can follow."""
    import xml.etree.ElementTree as ET

    stripped = text.strip()
    if not stripped:
        return []
    if "<!DOCTYPE" in stripped or "<!ENTITY" in stripped:
        raise BadTwiml("DTDs and entities are not accepted")
    try:
        root = ET.fromstring(stripped)
    except ET.ParseError as exc:
        raise BadTwiml(f"not XML ({exc})") from None
    if root.tag != "Response":
        raise BadTwiml(f"the root element is <{root.tag}>, not <Response>")
    out: list[str] = []
    for verb in root:
        if verb.tag != "Message":
            raise BadTwiml(f"<{verb.tag}> is not supported (only <Message>)")
        body = verb.find("Body")
        text_ = (body.text if body is not None else verb.text) or ""
        if verb.find("Media") is not None:
            raise BadTwiml("<Media> is not supported (SMS only)")
        if text_.strip():
            out.append(text_.strip())
    return out


class TwilioService:
    """The pump and delivery thread of Twilio-style webhooks (module doc)."""

    def __init__(
        self,
        queue: Queue,
        settings: Settings,
        *,
        modems: Callable[[], Sequence[Any]] = list,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        poll_interval_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.queue = queue
        self.engine: Engine = queue.engine
        self.settings = settings
        self.modems = modems
        self.node = node or socket.gethostname()
        self.clock = clock
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.poll_interval_s = poll_interval_s
        self._transport = transport
        self.bad_twiml = 0
        self.replies = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens: dict[str, str | None] = {}
        self._gaps: dict[tuple[str, int], tuple[float | None, float]] = {}
        self._prepared = False
        self._in_use_cached = False
        self._in_use_checked = float("-inf")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._prepared = False
        self._thread = threading.Thread(target=self._loop, name="twilio-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def prepare(self) -> None:
        """Before the first pump: start forwarding inbound SMS from now on (not the whole
        history) and take back this node's leases (it restarted)."""
        with write_tx(self.engine) as tx:
            outbox_db.lock_cursors(tx)
            if outbox_db.read_cursor(tx, _INBOUND_CURSOR) == 0:
                outbox_db.set_cursor(tx, _INBOUND_CURSOR, twilio_db.newest_inbound_id(tx))
            outbox_db.release_node(tx, self.node, self.clock())
        self._prepared = True

    def kick(self) -> None:
        """New inbound or status rows: look now rather than at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------------ steps

    def has_new(self) -> bool:
        """Cheap check (one read): is there anything :meth:`pump` would look at?"""
        with read_tx(self.engine) as tx:
            newest = outbox_db.newest_event_id(tx)
            if newest is not None and newest > outbox_db.read_cursor(tx, _EVENTS_CURSOR):
                return True
            return outbox_db.first_inbound_handled(tx, outbox_db.read_cursor(tx, _INBOUND_CURSOR))

    def pump(self, batch: int = 500) -> int:
        """Turn new events and handled inbound SMS into outbox rows; returns how many."""
        now = self.clock()
        with write_tx(self.engine) as tx:
            outbox_db.lock_cursors(tx)
            events_at = outbox_db.read_cursor(tx, _EVENTS_CURSOR)
            events = self._upto_gap(tx, _EVENTS_CURSOR, events_at, outbox_db.events_after(tx, events_at, limit=batch))
            targets = twilio_db.callback_targets(
                tx, sorted({e.message_id for e in events if e.message_id is not None and e.kind in CALLBACK_STATUS})
            )
            new: list[NewDelivery] = []
            for e in events:
                events_at = e.id
                target = targets.get(e.message_id) if e.message_id is not None else None
                if target is None or e.kind not in CALLBACK_STATUS:
                    continue
                sid, account_sid, url = target
                status, code = CALLBACK_STATUS[e.kind]
                form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                        "To": e.recipient or "", "From": self._from(e.modem or e.message_modem),
                        "AccountSid": account_sid, "ApiVersion": API_VERSION}
                if code is not None:
                    form["ErrorCode"] = str(code)
                new.append(NewDelivery(f"twst_{e.id}", url, STATUS_EVENT, urlencode(form)))
            inbound_at = outbox_db.read_cursor(tx, _INBOUND_CURSOR)
            inbound = self._upto_gap(tx, _INBOUND_CURSOR, inbound_at,
                                     outbox_db.inbound_after(tx, inbound_at, limit=batch))
            for r in inbound:
                if r.handled_at is None:
                    break  # keyword actions pending: it (and later ones) wait
                inbound_at = r.id
                url = self._sms_url(r.modem)
                if url is None or not r.complete:
                    continue
                account_sid = self.settings.twilio.account_sid
                form = {"MessageSid": inbound_sid(account_sid, r.id), "SmsSid": inbound_sid(account_sid, r.id),
                        "SmsMessageSid": inbound_sid(account_sid, r.id), "AccountSid": account_sid,
                        "From": r.sender, "To": self._from(r.modem), "Body": r.body, "NumSegments": str(r.parts),
                        "NumMedia": "0", "SmsStatus": "received", "ApiVersion": API_VERSION}
                if r.keyword:
                    form["OptOutType"] = r.keyword.upper()
                new.append(NewDelivery(f"twin_{r.id}", url, INBOUND_EVENT, urlencode(form)))
            made = outbox_db.add_deliveries(tx, new, now)
            outbox_db.set_cursor(tx, _EVENTS_CURSOR, events_at)
            outbox_db.set_cursor(tx, _INBOUND_CURSOR, inbound_at)
        return made

    def _upto_gap(self, tx: Tx, cursor: str, after: int, rows: list[_Row]) -> list[_Row]:
        """``rows`` up to the first gap in their ids that may still fill (PostgreSQL hands
        out ids before commit): a gap is passed once every writer that began before it was
        first seen has ended, or after :data:`GAP_TIMEOUT_S` (as the webhook outbox does)."""
        if not tx.postgres:
            return rows
        expected = after + 1
        for i, r in enumerate(rows):
            if r.id != expected:
                key = (cursor, expected)
                if key not in self._gaps:
                    self._gaps[key] = (outbox_db.gap_mark(tx), time.monotonic())
                    return rows[:i]
                mark, seen = self._gaps[key]
                waited = time.monotonic() - seen
                if waited < GAP_TIMEOUT_S and (waited < _GAP_MIN_WAIT_S or not outbox_db.writers_done(tx, mark)):
                    return rows[:i]
                del self._gaps[key]
            expected = r.id + 1
        return rows

    def deliver_due(self, client: httpx.Client | None = None) -> int:
        """Attempt the due Twilio webhook rows (each at most once per call; each row has its
        own backoff); returns how many were delivered."""
        own = client is None
        http = client or self._client()
        delivered = 0
        try:
            while not self._stopping.is_set():
                now = self.clock()
                with write_tx(self.engine) as tx:
                    rows = outbox_db.lease_due_events(
                        tx, EVENTS, self.node, now=now, limit=_LEASE_BATCH,
                        until=now + _LEASE_BATCH * self.settings.twilio.timeout_s + 60,
                    )
                if not rows:
                    break
                ok = sum(self._attempt(http, entry) for entry in rows)
                delivered += ok
                if ok < len(rows):
                    break  # a failure is due again after its backoff, at a later call
        finally:
            if own:
                http.close()
        return delivered

    # ------------------------------------------------------------------ internals

    def _loop(self) -> None:
        with self._client() as http:
            while not self._stopping.is_set():
                wait = self.poll_interval_s
                try:
                    if not self._prepared:
                        self.prepare()
                    if self._in_use() and self.has_new():
                        while self.pump() and not self._stopping.is_set():
                            pass
                    self.deliver_due(http)
                    with read_tx(self.engine) as tx:
                        next_at = outbox_db.next_due_events(tx, EVENTS)
                    if next_at is not None:
                        wait = min(_IDLE_WAIT_S, max(0.0, next_at - self.clock()), self.poll_interval_s)
                except Exception:  # noqa: BLE001 - the database is busy or down: try again soon
                    _log.exception("twilio webhooks failed; retrying")
                self._wake.wait(wait)
                self._wake.clear()

    def _in_use(self) -> bool:
        """Is there anything to forward: inbound URLs configured, or a Twilio credential
        (looked up again every :data:`_CHECK_IN_USE_S`, since ``keys create`` runs apart)?"""
        if self.settings.twilio.sms_url is not None or any(m.sms_url for m in self.settings.modems):
            return True
        now = time.monotonic()
        if not self._in_use_cached and now - self._in_use_checked >= _CHECK_IN_USE_S:
            self._in_use_checked = now
            with read_tx(self.engine) as tx:
                self._in_use_cached = twilio_db.any_credential(tx)
        return self._in_use_cached

    def _client(self) -> httpx.Client:
        import httpx

        return httpx.Client(timeout=self.settings.twilio.timeout_s, follow_redirects=False,
                            transport=self._transport)

    def _sms_url(self, modem: str) -> str | None:
        for m in self.settings.modems:
            if m.name == modem and m.sms_url is not None:
                return str(m.sms_url)
        url = self.settings.twilio.sms_url
        return None if url is None else str(url)

    def _from(self, modem: str | None) -> str:
        if modem is None:
            return ""
        return modem_numbers(self.settings, self.modems()).get(modem, modem)

    def _token(self, account_sid: str) -> str | None:
        if account_sid not in self._tokens:
            with read_tx(self.engine) as tx:
                cred = twilio_db.find_credential(tx, account_sid=account_sid)
            self._tokens[account_sid] = None if cred is None or cred.revoked else cred.auth_token
        return self._tokens[account_sid]

    def _attempt(self, http: httpx.Client, entry: OutboxEntry) -> int:
        import httpx

        params = parse_qsl(entry.payload, keep_blank_values=True)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "sms-appliance-twilio"}
        token = self._token(dict(params).get("AccountSid", ""))
        if token is not None:
            headers["X-Twilio-Signature"] = twilio_signature(token, entry.url, params)
        attempts = entry.attempts + 1
        try:
            response = http.post(entry.url, content=entry.payload.encode("utf-8"), headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.twilio.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}".replace(entry.url, url_host(entry.url))
        else:
            if 200 <= response.status_code < 300:
                if entry.event == INBOUND_EVENT:
                    self._reply(entry, response)
                with write_tx(self.engine) as tx:
                    outbox_db.mark_delivered(tx, entry.id, attempts=attempts, at=self.clock())
                return 1
            error = f"HTTP {response.status_code}"
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(attempts - 1, 32)) * (0.5 + random.random() / 2)
        with write_tx(self.engine) as tx:
            outbox_db.mark_failed(tx, entry.id, attempts=attempts, next_attempt_at=self.clock() + delay,
                                  error=error, node=self.node)
        _log.warning("twilio webhook %s to %s failed (%s); attempt %d, next in %.1f s",
                     entry.event_id, url_host(entry.url), error, attempts, delay)
        return 0

    def _reply(self, entry: OutboxEntry, response: httpx.Response) -> None:
        inbound_id = int(entry.event_id.removeprefix("twin_"))
        raw = response.content[:_MAX_TWIML_BYTES + 1]
        try:
            if len(raw) > _MAX_TWIML_BYTES:
                raise BadTwiml(f"over {_MAX_TWIML_BYTES} bytes")
            texts = parse_twiml(raw.decode("utf-8", errors="strict"))
        except (BadTwiml, UnicodeDecodeError) as exc:
            self.bad_twiml += 1
            _log.warning("twilio inbound %s: TwiML answer from %s ignored: %s",
                         entry.event_id, url_host(entry.url), getattr(exc, "reason", "not UTF-8"))
            return
        if not texts:
            return
        record = self.queue.get_inbound_record(inbound_id)
        if record.keyword:
            return  # the appliance already answered STOP / START / HELP
        for i, text in enumerate(texts):
            try:
                self.queue.enqueue([record.sender], text, modem=record.modem,
                                   idempotency_key=f"twiml:{entry.event_id}:{i}")
                self.replies += 1
            except Exception as exc:  # noqa: BLE001 - a reply the queue refuses (too long): log, go on
                self.bad_twiml += 1
                _log.warning("twilio inbound %s: TwiML reply %d refused: %s", entry.event_id, i, type(exc).__name__)
