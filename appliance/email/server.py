"""The SMTP side: who may send (AUTH with an API key after STARTTLS, or an allowed network
and ``From``), which recipients are taken (``<number>@domain``, ``<group>@domain``; nothing
for any other domain: never an open relay) and what becomes the SMS.

:class:`SmtpHandler` holds aiosmtpd's hooks; it runs on aiosmtpd's own event loop thread and
does its database work in that loop's thread pool. Every refusal is a 5xx (451 for the rate
limit: try later) with a sentence a person can act on, and is stored
(:func:`appliance.db.email.record_refusal`).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.db import email as email_db
from appliance.db.engine import write_tx
from appliance.email.text import MailText, address_of, read_mail
from appliance.numbers import InvalidNumber, mask_emails, to_e164
from appliance.pdu import PduError, plan
from appliance.queue.errors import DuplicateIdempotencyKey, InvalidRequest

if TYPE_CHECKING:
    from appliance.api.keys import ApiKeys
    from appliance.broadcasts import BroadcastService
    from appliance.config import Settings
    from appliance.contacts import ContactBook
    from appliance.queue import Queue

__all__ = ["MAX_RECIPIENTS", "Counters", "Refused", "SmtpHandler", "group_slug"]

_log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
_NUMBER = re.compile(r"^\+?[0-9][0-9().\-]*$")


def group_slug(name: str) -> str:
    """How a group's name is written as an address's local part: lower case, spaces,
    dots and underscores as ``-`` ("Year 7 Parents" → ``year-7-parents``)."""
    return re.sub(r"[\s._-]+", "-", name.strip().lower()).strip("-")


@dataclass
class Counters:
    """Mails accepted and refused since start (for /metrics)."""

    accepted: int = 0
    refused: int = 0
    sms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True, slots=True)
class Refused(Exception):
    """A refusal: the SMTP code and the sentence for the sender."""

    code: int
    reason: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.reason}"


@dataclass(slots=True)
class _Sender:
    who: str  # key name or From address: what the rate limit and group_senders see
    by: str  # what the SMS's metadata says: "by email from x@y"
    may_groups: bool


@dataclass(slots=True)
class _Targets:
    numbers: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # group names as stored


class SmtpHandler:
    """aiosmtpd's handler and authenticator (module doc)."""

    def __init__(
        self,
        settings: Settings,
        queue: Queue,
        keys: ApiKeys,
        book: ContactBook,
        broadcasts: BroadcastService,
        *,
        counters: Counters,
        on_attachments: Callable[[MailText, str, list[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cfg = settings.email
        self.queue = queue
        self.keys = keys
        self.book = book
        self.broadcasts = broadcasts
        self.counters = counters
        self.on_attachments = on_attachments
        self.clock = clock
        self.networks = [ipaddress.ip_network(n, strict=False) for n in self.cfg.allow_networks]
        self._sent_at: dict[str, deque[float]] = {}
        self._rate_lock = threading.Lock()

    # ------------------------------------------------------------------ bookkeeping

    def _refuse(self, session: Any, envelope: Any, rcpt: str, exc: Refused) -> str:
        self.counters.add("refused")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        try:
            with write_tx(self.queue.engine) as tx:
                email_db.record_refusal(tx, at=self.clock(), peer=peer, mail_from=getattr(envelope, "mail_from", "") or "",
                                        rcpt=rcpt, code=exc.code, reason=exc.reason)
        except Exception:  # noqa: BLE001 - the answer matters more than its record
            _log.exception("could not record a refused mail")
        _log.info("email refused from %s: %d %s", peer, exc.code, mask_emails(exc.reason))
        return exc.reply

    async def _refuse_async(self, session: Any, envelope: Any, rcpt: str, exc: Refused) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._refuse, session, envelope, rcpt, exc)

    # ------------------------------------------------------------------ AUTH

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        """aiosmtpd's authenticator: the user name is the API key's name, the password the key."""
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace").strip()
        password = auth_data.password.decode("utf-8", "replace").strip()
        key = self.keys.verify(password)
        if key is None or key.name != login:
            reason = ("5.7.8 That name and key are not a live API key here: the user name is the key's name, "
                      "the password the whole key (sk_...); make one with 'appliance keys create NAME --scope send'")
            return AuthResult(success=False, handled=False,
                              message=self._refuse(session, envelope, "", Refused(535, reason)))
        if not key.allows("send"):
            reason = f"5.7.8 The API key {key.name!r} has no send scope; use a key made with --scope send"
            return AuthResult(success=False, handled=False,
                              message=self._refuse(session, envelope, "", Refused(535, reason)))
        return AuthResult(success=True, auth_data=key)

    # ------------------------------------------------------------------ MAIL

    def _sender(self, session: Any, address: str) -> _Sender:
        mail_from = address_of(address) or address.strip().lower()
        if session.authenticated and session.auth_data is not None:
            key = session.auth_data
            who = mail_from or key.name
            allowed = set(self.cfg.group_senders)
            return _Sender(who=f"key:{key.name}", by=f"by email from {who}",
                           may_groups="admin" in key.scopes or key.name.lower() in allowed or mail_from in allowed)
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            ip = None
        in_network = ip is not None and any(ip in net for net in self.networks)
        if in_network and mail_from and mail_from in self.cfg.allow_from:
            return _Sender(who=mail_from, by=f"by email from {mail_from}",
                           may_groups=mail_from in self.cfg.group_senders)
        if in_network:
            raise Refused(550, f"5.7.1 The sender address <{mail_from}> is not in [email] allow_from; add it there, "
                               "or authenticate (STARTTLS, then AUTH with an API key's name and the key)")
        raise Refused(530, "5.7.0 Authentication required: use STARTTLS, then AUTH with an API key's name as user "
                           "and the key as password (send scope); or add this client to [email] allow_networks "
                           "and its From address to allow_from")

    def _rate_ok(self, who: str) -> bool:
        now = self.clock()
        with self._rate_lock:
            window = self._sent_at.setdefault(who, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= self.cfg.max_mails_per_minute:
                return False
            window.append(now)
            return True

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        envelope.mail_from = address
        try:
            sender = self._sender(session, address)
            if not self._rate_ok(sender.who):
                raise Refused(451, f"4.7.1 Too many mails from {sender.who}: at most {self.cfg.max_mails_per_minute} "
                                   "a minute ([email] max_mails_per_minute); try again in a minute")
        except Refused as exc:
            envelope.mail_from = None
            return await self._refuse_async(session, envelope, "", exc)
        envelope.appliance_sender = sender
        envelope.appliance_targets = _Targets()
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    # ------------------------------------------------------------------ RCPT

    def _target(self, envelope: Any, address: str) -> None:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower().rstrip(".") != self.cfg.domain:
            raise Refused(550, f"5.7.1 This appliance only takes mail for @{self.cfg.domain} and relays nothing "
                               f"else; write to <number>@{self.cfg.domain}")
        sender: _Sender = envelope.appliance_sender
        targets: _Targets = envelope.appliance_targets
        if _NUMBER.match(local):
            try:
                number = to_e164(local, self.settings.appliance.default_region)
            except InvalidNumber as exc:
                raise Refused(550, f"5.1.1 {local!r} is not a phone number this appliance can text ({exc}); "
                                   f"write it as +<country code><number>@{self.cfg.domain}") from None
            if number not in targets.numbers:
                targets.numbers.append(number)
            return
        slug = group_slug(local)
        group = next((g.name for g in self.book.list_groups() if group_slug(g.name) == slug), None)
        if group is None:
            raise Refused(550, f"5.1.1 There is no contact group {local!r} (nor is it a phone number); "
                               "see the groups on the Contacts page, written in lower case with - for spaces")
        if not sender.may_groups:
            raise Refused(550, f"5.7.1 Sending to the group {group!r} needs an API key with admin scope or a "
                               "sender listed in [email] group_senders")
        if group not in targets.groups:
            targets.groups.append(group)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if getattr(envelope, "appliance_sender", None) is None:
            return "503 5.5.1 Give MAIL FROM first"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 At most {MAX_RECIPIENTS} recipients a mail; send the rest in another mail"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._target, envelope, address)
        except Refused as exc:
            return await self._refuse_async(session, envelope, address, exc)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    # ------------------------------------------------------------------ DATA

    def _text(self, mail: MailText) -> str:
        text = mail.text(self.cfg.text_from)
        if not text.strip():
            where = {"body": "the body", "subject": "the subject", "both": "the subject or the body"}[self.cfg.text_from]
            raise Refused(554, f"5.6.0 The mail has no text in {where} to send as SMS "
                               f"([email] text_from = {self.cfg.text_from!r})")
        try:
            parts = plan(text, national_languages=self.settings.sms.national_languages).total
        except PduError as exc:
            raise Refused(554, f"5.6.0 The text cannot be sent as SMS: {exc}") from None
        limit = self.settings.appliance.max_parts
        if parts > limit:
            raise Refused(554, f"5.3.4 The text needs {parts} SMS parts; at most {limit} are allowed: shorten it "
                               f"to about {limit * 153} characters (fewer with emoji or accents)")
        return text

    def _deliver(self, envelope: Any, raw: bytes) -> str:
        sender: _Sender = envelope.appliance_sender
        targets: _Targets = envelope.appliance_targets
        mail = read_mail(raw)
        text = self._text(mail)
        reply_to = mail.sender or address_of(envelope.mail_from or "")
        message_id = mail.message_id or "<" + hashlib.sha256(raw).hexdigest() + "@no-message-id>"
        # Per sender: another sender reusing a Message-ID can neither block nor replay this one.
        key = f"email:{sender.who}:{message_id}"
        now = self.clock()
        metadata = {"source": "email", "by": sender.by, "email_from": reply_to, "email_message_id": message_id}
        sent = 0
        if targets.numbers:
            try:
                messages = self.queue.enqueue(targets.numbers, text, idempotency_key=key, metadata=metadata)
            except DuplicateIdempotencyKey:
                raise Refused(554, f"5.7.0 A different mail with Message-ID {message_id} was already sent; "
                                   "give each new mail its own Message-ID") from None
            except InvalidRequest as exc:
                raise Refused(554, f"5.6.0 {exc}") from None
            sent += len(messages)
            with write_tx(self.queue.engine) as tx:
                for number in targets.numbers:
                    email_db.save_thread(tx, number, reply_to, message_id, mail.subject, now)
        for group in targets.groups:
            sent += self._broadcast(group, text, sender, f"{key}:group:{group}")
        self.counters.add("sms", sent)
        if mail.attachments and self.on_attachments is not None and reply_to:
            self.on_attachments(mail, reply_to, [*targets.numbers, *targets.groups])
        _log.info("email accepted: %d recipient(s), %d group(s), %d attachment(s) ignored",
                  len(targets.numbers), len(targets.groups), len(mail.attachments))
        return f"250 2.0.0 Queued as SMS ({sent} message(s))"

    def _broadcast(self, group: str, text: str, sender: _Sender, seen_key: str) -> int:
        from appliance.broadcasts import Audience, BroadcastSpec

        with write_tx(self.queue.engine) as tx:
            first = email_db.first_sight(tx, seen_key, self.clock())
        if not first:
            return 0  # the same mail delivered again
        try:
            view = self.broadcasts.create_and_start(
                BroadcastSpec(template=text, audience=Audience(groups=(group,)), name=f"Email to {group}",
                              priority="normal", allow_missing=True),
                created_by=sender.by,
            )
        except Exception as exc:
            with write_tx(self.queue.engine) as tx:
                email_db.forget_sight(tx, seen_key)
            if isinstance(exc, InvalidRequest):
                raise Refused(554, f"5.6.0 The group {group!r}: {exc}") from None
            raise
        return view.recipients

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if getattr(envelope, "appliance_targets", None) is None:
            return "503 5.5.1 Give MAIL FROM and RCPT TO first"
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(None, self._deliver, envelope, raw)
        except Refused as exc:
            return await self._refuse_async(session, envelope, ",".join(envelope.rcpt_tos), exc)
        except Exception:  # noqa: BLE001 - the database is busy or down: the sender retries
            _log.exception("could not queue an email's SMS")
            return "451 4.3.0 The appliance could not store the message just now; it will be retried"
        self.counters.add("accepted")
        return answer
