"""Helpers of the email ↔ SMS tests: an SMTP client on the appliance's SMTP side, a sink
standing in for the outgoing relay, and waiting for what the simulators received."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def email_settings(**overrides: Any) -> dict[str, Any]:
    """``settings=`` for ``live_server_factory``: email on, a free port, on loopback."""
    return {"email": {"enabled": True, "host": "127.0.0.1", "port": 0, "domain": "sms.school.lan", **overrides}}


def client_tls() -> ssl.SSLContext:
    """A client context for the appliance's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def smtp(server: Any, *, tls: bool = True, login: tuple[str, str] | None = None) -> smtplib.SMTP:
    """A connection to ``server``'s SMTP side, after STARTTLS and AUTH when asked."""
    conn = smtplib.SMTP("127.0.0.1", server.app.email.port, timeout=30)
    conn.ehlo("client.school.lan")
    if tls:
        conn.starttls(context=client_tls())
        conn.ehlo("client.school.lan")
    if login is not None:
        conn.login(*login)
    return conn


def send_key(server: Any, name: str = "office", scopes: tuple[str, ...] = ("send",)) -> tuple[str, str]:
    """A new API key on ``server``: ``(name, key)`` as SMTP AUTH's user and password."""
    _, key = server.app.keys.create(name, list(scopes))
    return name, key


def mail(to: str | list[str], body: str = "Hello from the office", *, subject: str = "Note",
         sender: str = "office@school.lan", message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def all_sent(server: Any) -> list[Any]:
    return [rec for sim in server.simulators for rec in sim.sent]


class Sink:
    """A local SMTP server keeping every mail it receives (the relay in tests)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Any] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email.parser import BytesParser
        from email.policy import default

        msg = BytesParser(policy=default).parsebytes(envelope.original_content or envelope.content)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def messages(self) -> list[Any]:
        with self._lock:
            return list(self.received)

    def start(self) -> Sink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
