"""Answers by email: a pump making outbox mails (SMS replies to the last mail's sender,
failed sends reported to the mail's sender, copies of inbound SMS to ``inbound_to``, SIMs
paused or resumed by their health check to ``alerts_to``) and a sender delivering them
through the relay with backoff.

The outbox (:mod:`appliance.db.email`) is durable and leased: a mail survives restarts, and
two nodes never send one mail twice (each row goes to one node at a time; a row's ``key`` is
what it is about, so reading a source twice makes one mail). Delivery is at least once: a
crash between the relay's ``250`` and the row's update sends that mail again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.db import email as email_db
from appliance.db import outbox as outbox_db
from appliance.db.email import OutgoingMail
from appliance.db.engine import read_tx, write_tx
from appliance.numbers import mask_emails

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from appliance.config import EmailSection

__all__ = ["MailRelay"]

_log = logging.getLogger(__name__)

_ALERT_KINDS = ("modem.paused", "modem.resumed")  # SIM health, to [email] alerts_to
_INBOUND_CURSOR = "email:inbound"
_EVENTS_CURSOR = "email:events"
_BATCH = 200
_LEASE_BATCH = 10
RETENTION_S = 30 * 86400.0


class MailRelay:
    """The pump and the sender (module doc). Nothing runs without ``[email.relay] host``."""

    def __init__(self, engine: Engine, cfg: EmailSection, *, node: str, clock: Callable[[], float] = time.time,
                 poll_interval_s: float = 0.5) -> None:
        self.engine = engine
        self.cfg = cfg
        self.node = node
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.from_address = cfg.relay.from_address or f"sms@{cfg.domain}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures = 0
        self._blocked_until = float("-inf")

    @property
    def configured(self) -> bool:
        return bool(self.cfg.relay.host)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._threads or not self.configured:
            return
        self._stopping.clear()
        with write_tx(self.engine) as tx:
            email_db.lock_pump(tx)
            # From now on, not the history: answers start with what arrives after enabling.
            if outbox_db.read_cursor(tx, _INBOUND_CURSOR) == 0:
                outbox_db.set_cursor(tx, _INBOUND_CURSOR, email_db.max_inbound_id(tx))
            if outbox_db.read_cursor(tx, _EVENTS_CURSOR) == 0:
                outbox_db.set_cursor(tx, _EVENTS_CURSOR, email_db.max_event_id(tx))
            email_db.release_node(tx, self.node, self.clock())
        self._threads = [threading.Thread(target=self._loop, name="email-relay", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def kick(self) -> None:
        """New inbound rows or events: look now."""
        self._wake.set()

    # ------------------------------------------------------------------ making mails

    def queue_mail(self, *, key: str, to: str, subject: str, body: str, in_reply_to: str | None = None) -> bool:
        """Put one mail in the outbox (once per ``key``); False when there is no relay."""
        if not self.configured or not to:
            return False
        with write_tx(self.engine) as tx:
            made = email_db.add_mail(tx, key=key, mail_to=to, subject=subject, body=body, in_reply_to=in_reply_to,
                                     now=self.clock())
        if made:
            self._wake.set()
        return made

    def pump(self) -> int:
        """Turn new inbound rows and failed events into mails; returns how many were made."""
        made = 0
        now = self.clock()
        with write_tx(self.engine) as tx:
            email_db.lock_pump(tx)
            after = outbox_db.read_cursor(tx, _INBOUND_CURSOR)
            rows = email_db.inbound_after(tx, after, limit=_BATCH)
            for row in rows:
                thread = email_db.get_thread(tx, row.sender)
                if thread is not None:
                    made += email_db.add_mail(
                        tx, key=f"reply:{row.id}", mail_to=thread.sender, subject=f"Re: SMS to {row.sender}",
                        body=f"{row.body}\n\n-- \nSMS reply from {row.sender}", in_reply_to=thread.message_id, now=now,
                    )
                if self.cfg.inbound_to:
                    made += email_db.add_mail(
                        tx, key=f"inbound:{row.id}", mail_to=self.cfg.inbound_to, subject=f"SMS from {row.sender}",
                        body=f"{row.body}\n\n-- \nSMS from {row.sender}", in_reply_to=None, now=now,
                    )
            if rows:
                outbox_db.set_cursor(tx, _INBOUND_CURSOR, rows[-1].id)
            after = outbox_db.read_cursor(tx, _EVENTS_CURSOR)
            last, failed = email_db.failed_after(tx, after, limit=_BATCH)
            for f in failed:
                meta = json.loads(f.metadata_json) if f.metadata_json else {}
                if not isinstance(meta, dict) or meta.get("source") != "email" or not self.cfg.report_failures:
                    continue
                made += email_db.add_mail(
                    tx, key=f"failed:{f.message_id}", mail_to=str(meta.get("email_from") or ""),
                    subject=f"Re: SMS to {f.recipient} failed",
                    body=f"The SMS to {f.recipient} could not be sent: {f.error or 'failed'}.\n",
                    in_reply_to=meta.get("email_message_id"), now=now,
                ) if meta.get("email_from") else 0
            for alert in email_db.modem_events_between(tx, after, last, _ALERT_KINDS) if self.cfg.alerts_to else ():
                subject, body = _alert_mail(alert)
                for address in self.cfg.alerts_to:
                    made += email_db.add_mail(tx, key=f"alert:{alert.event_id}:{address}", mail_to=address,
                                              subject=subject, body=body, in_reply_to=None, now=now)
            if last != after:
                outbox_db.set_cursor(tx, _EVENTS_CURSOR, last)
        return made

    # ------------------------------------------------------------------ sending

    def deliver_due(self) -> int:
        """Lease due mails and send them until one fails; returns how many were sent."""
        sent = 0
        while not self._stopping.is_set() and self.clock() >= self._blocked_until:
            now = self.clock()
            lease_s = self.cfg.relay.timeout_s * (_LEASE_BATCH + 1) + 60.0
            with write_tx(self.engine) as tx:
                mails = email_db.lease_due(tx, self.node, now=now, until=now + lease_s, limit=_LEASE_BATCH)
            if not mails:
                break
            for i, mail in enumerate(mails):
                error = self._send(mail)
                if error is None:
                    with write_tx(self.engine) as tx:
                        email_db.mark_sent(tx, mail.id, attempts=mail.attempts + 1, at=self.clock())
                    self._failures = 0
                    sent += 1
                    continue
                self._failures += 1
                base = min(self.cfg.relay.retry_cap_s, self.cfg.relay.retry_base_s * 2 ** min(self._failures - 1, 32))
                next_at = self.clock() + base * (0.5 + random.random() / 2)
                self._blocked_until = next_at
                _log.warning("mail to the relay failed (%s); attempt %d, next in %.1f s", mask_emails(error),
                             mail.attempts + 1,
                             next_at - self.clock())
                with write_tx(self.engine) as tx:
                    email_db.mark_failed(tx, mail.id, attempts=mail.attempts + 1, next_attempt_at=next_at,
                                         error=error, node=self.node)
                    for rest in mails[i + 1:]:  # not attempted: due when the relay's backoff ends
                        email_db.mark_failed(tx, rest.id, attempts=rest.attempts, next_attempt_at=next_at,
                                             error=rest.last_error or "waiting for the relay", node=self.node)
                return sent
        return sent

    def _send(self, mail: OutgoingMail) -> str | None:
        import smtplib
        import ssl
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        relay = self.cfg.relay
        msg = EmailMessage()
        msg["From"] = self.from_address
        msg["To"] = mail.mail_to
        msg["Subject"] = mail.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.cfg.domain)
        if mail.in_reply_to:
            msg["In-Reply-To"] = mail.in_reply_to
            msg["References"] = mail.in_reply_to
        msg["Auto-Submitted"] = "auto-replied"
        msg.set_content(mail.body)
        try:
            with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_s, local_hostname=self.cfg.domain) as smtp:
                if relay.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if relay.user:
                    smtp.login(relay.user, relay.password.get_secret_value())
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    def _loop(self) -> None:
        last_prune = float("-inf")
        while not self._stopping.is_set():
            wait = self.poll_interval_s
            try:
                while self.pump() and not self._stopping.is_set():
                    pass
                self.deliver_due()
                with read_tx(self.engine) as tx:
                    next_at = email_db.next_due(tx)
                if next_at is not None:
                    wait = min(wait, max(0.0, max(next_at, self._blocked_until) - self.clock()))
                now = self.clock()
                if now - last_prune > 3600.0:
                    last_prune = now
                    with write_tx(self.engine) as tx:
                        email_db.prune(tx, now - RETENTION_S)
            except Exception:  # noqa: BLE001 - the database is busy: try again next poll
                _log.exception("email relay loop failed; retrying")
            self._wake.wait(max(wait, 0.05))
            self._wake.clear()



def _alert_mail(event: email_db.ModemEvent) -> tuple[str, str]:
    """Subject and text of the mail telling ``alerts_to`` a SIM was paused or resumed."""
    try:
        detail = json.loads(event.detail_json) if event.detail_json else {}
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    modem = event.modem or "?"
    if event.kind == "modem.paused":
        probe = detail.get("probe_at")
        after = (f"A probe at {probe} (UTC) resumes it if the modem answers and is registered."
                 if probe else "Only an admin resumes it.")
        return (f"SMS appliance: modem {modem} paused",
                f"Modem {modem} was paused by {detail.get('by') or 'its health check'}: "
                f"{detail.get('reason') or 'no reason given'}.\n\nThe other SIMs take its work. {after}\n"
                f"Resume it with Resume on the /modems page, or: appliance modems resume {modem}\n")
    return (f"SMS appliance: modem {modem} resumed",
            f"Modem {modem} was resumed by {detail.get('by') or '?'} and takes work again.\n"
            f"It had been paused: {detail.get('reason') or 'no reason given'}.\n")
