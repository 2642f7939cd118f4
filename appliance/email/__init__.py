"""Email to SMS and SMS to email (README, "Email to SMS").

Imported only when ``[email] enabled`` (aiosmtpd and the TLS certificate cost memory an idle
appliance does not need): the daemon builds an :class:`EmailService`.
"""

from __future__ import annotations

from appliance.email.certs import Certificate, certificate, fingerprint, state_dir
from appliance.email.relay import MailRelay
from appliance.email.server import Counters, Refused, SmtpHandler, group_slug
from appliance.email.service import EmailService, EmailStatus
from appliance.email.text import MailText, address_of, html_to_text, read_mail, strip_quotes

__all__ = [
    "Certificate",
    "Counters",
    "EmailService",
    "EmailStatus",
    "MailRelay",
    "MailText",
    "Refused",
    "SmtpHandler",
    "address_of",
    "certificate",
    "fingerprint",
    "group_slug",
    "html_to_text",
    "read_mail",
    "state_dir",
    "strip_quotes",
]
