"""The SMTP side of the daemon: :class:`EmailService` runs aiosmtpd's server on its own
thread and the relay of answers (:class:`~appliance.email.relay.MailRelay`)."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.db import email as email_db
from appliance.db.email import Refusal
from appliance.db.engine import read_tx
from appliance.email.certs import Certificate, certificate
from appliance.email.relay import MailRelay
from appliance.email.server import Counters, SmtpHandler
from appliance.email.text import MailText
from appliance.numbers import mask_emails

if TYPE_CHECKING:
    from appliance.api.keys import ApiKeys
    from appliance.config import Settings
    from appliance.queue import Queue

__all__ = ["EmailService", "EmailStatus"]

_log = logging.getLogger(__name__)


class _MaskAddresses(logging.Filter):
    """aiosmtpd logs each command with its addresses (``mail.log``, INFO and DEBUG): its
    lines are masked as the appliance's own (``j•••@school.lan``, numbers' middles hidden)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = mask_emails(record.getMessage())
        record.msg, record.args = text, ()
        return True


MASK_ADDRESSES = _MaskAddresses()


@dataclass(frozen=True, slots=True)
class EmailStatus:
    """What the /email page and ``appliance email info`` show."""

    host: str
    port: int
    domain: str
    fingerprint: str
    cert_file: str
    self_signed: bool


class EmailService:
    """Email to SMS for one appliance: ``start()`` listens on ``[email] host:port``
    (port 0: a free port, then in :attr:`port`), ``stop()`` ends it."""

    def __init__(self, settings: Settings, queue: Queue, keys: ApiKeys, *, node: str) -> None:
        from appliance.broadcasts import BroadcastService
        from appliance.contacts import ContactBook

        self.settings = settings
        self.cfg = settings.email
        self.queue = queue
        self.counters = Counters()
        self.relay = MailRelay(queue.engine, self.cfg, node=node, clock=queue.clock)
        book = ContactBook(queue.engine, default_region=settings.appliance.default_region, clock=queue.clock)
        broadcasts = BroadcastService(queue, book, footer=settings.broadcasts.opt_out_footer)
        self.handler = SmtpHandler(settings, queue, keys, book, broadcasts, counters=self.counters,
                                   on_attachments=self._attachments_said, clock=queue.clock)
        self.port = self.cfg.port
        self.cert: Certificate | None = None
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").addFilter(MASK_ADDRESSES)  # once: a logger keeps one of each filter

        self.cert = certificate(self.settings, in_subprocess=True)
        assert self.cert is not None
        if self.port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((self.cfg.host, 0))
                self.port = s.getsockname()[1]
        self._controller = Controller(
            self.handler, hostname=self.cfg.host, port=self.port, server_hostname=self.cfg.domain,
            tls_context=self.cert.server_context(), require_starttls=False, auth_require_tls=True,
            auth_required=False, authenticator=self.handler.authenticate, data_size_limit=self.cfg.max_message_bytes,
            enable_SMTPUTF8=True, ready_timeout=10.0,
        )
        self._controller.start()
        self.relay.start()
        self.queue.subscribe(self.relay.kick)
        _log.info("email to SMS listening on %s:%d for @%s", self.cfg.host, self.port, self.cfg.domain)

    def stop(self) -> None:
        if self._controller is not None:
            try:
                self._controller.stop()
            except Exception:  # noqa: BLE001 - stopping anyway
                _log.exception("stopping the SMTP server failed")
            self._controller = None
        self.relay.stop()

    def status(self) -> EmailStatus:
        cert = self.cert or certificate(self.settings, create=False)
        return EmailStatus(
            host=self.cfg.host, port=self.port, domain=self.cfg.domain,
            fingerprint=cert.fingerprint if cert else "", cert_file=str(cert.cert_file) if cert else "",
            self_signed=bool(cert and cert.self_signed),
        )

    def outbox_counts(self) -> tuple[int, int]:
        """(sent, pending) answer mails."""
        with read_tx(self.queue.engine) as tx:
            return email_db.count_outbox(tx)

    def refusals(self, limit: int = 50) -> list[Refusal]:
        """The newest refused mails (and AUTH attempts) with their reasons."""
        with read_tx(self.queue.engine) as tx:
            return email_db.list_refusals(tx, limit=limit)

    def _attachments_said(self, mail: MailText, reply_to: str, targets: list[str]) -> None:
        self.relay.queue_mail(
            key=f"attachments:{mail.message_id}", to=reply_to, subject=f"Re: {mail.subject}".strip(),
            body=("Your mail was sent as SMS to " + ", ".join(targets) + ". Its attachments ("
                  + ", ".join(mail.attachments) + ") were not: an SMS carries text only.\n"),
            in_reply_to=mail.message_id or None,
        )
