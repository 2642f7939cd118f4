"""What of a mail becomes the SMS: the body (plain text, or HTML made text), the subject,
or both; quoted replies and signatures cut; attachments listed, never sent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

__all__ = ["MailText", "address_of", "html_to_text", "read_mail", "strip_quotes"]

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
          "blockquote", "pre", "hr", "section", "article", "header", "footer"}
_SKIP = {"script", "style", "head", "title"}
_WROTE = re.compile(r"^\s*(On\b.{0,300}\bwrote:|Le\b.{0,300}\ba écrit\s*:|Am\b.{0,300}\bschrieb\b.*:)\s*$",
                    re.IGNORECASE)
_OUTLOOK = re.compile(r"^\s*(-{2,}\s*Original Message\s*-{2,}|_{10,}|From:\s.+)\s*$", re.IGNORECASE)


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "blockquote":
            self._quote += 1
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quote:  # a blockquote is the quoted mail
            self.out.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML mail: blocks on their own lines, blank runs folded."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_quotes(text: str) -> str:
    """``text`` without the quoted mail (``> `` lines, from "On … wrote:" or an Outlook
    "Original Message"/"From:" header on) and without the signature (from ``-- ``)."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.rstrip() == "--" and (line == "-- " or line == "--"):
            break
        if _WROTE.match(line) or _OUTLOOK.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


@dataclass(frozen=True, slots=True)
class MailText:
    """A received mail as the SMS side reads it."""

    message_id: str
    sender: str  # the From address (lower case), or "" when none
    subject: str
    body: str  # the body as text, quotes and signature cut
    attachments: tuple[str, ...] = field(default=())

    def text(self, source: str) -> str:
        """The SMS text for ``text_from`` = ``body``, ``subject`` or ``both``."""
        if source == "subject":
            return self.subject
        if source == "both":
            return "\n".join(p for p in (self.subject, self.body) if p)
        return self.body


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):  # an unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
    return content if isinstance(content, str) else ""


def read_mail(raw: bytes) -> MailText:
    """Parse ``raw`` (RFC 5322 bytes): headers decoded (RFC 2047), the text body chosen
    (text/plain preferred, else HTML made text), attachments named."""
    msg = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    subject = " ".join(str(msg.get("Subject", "") or "").split())
    senders = getaddresses([str(h) for h in msg.get_all("From", [])])
    sender = (senders[0][1] if senders else "").strip().lower()
    message_id = str(msg.get("Message-ID", "") or "").strip()
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        content = _part_text(body_part)  # type: ignore[arg-type]
        if body_part.get_content_subtype() == "html":
            content = html_to_text(content)
        body = strip_quotes(content)
    attachments = []
    for part in msg.iter_attachments():
        name = part.get_filename() or part.get_content_type()
        attachments.append(str(name))
    if body_part is None and msg.is_multipart():
        # e.g. multipart/mixed holding only attachments: nothing to text
        body = ""
    return MailText(message_id=message_id, sender=sender, subject=subject, body=body,
                    attachments=tuple(attachments))


def address_of(value: str) -> str:
    """The bare address of ``"Name <a@b>"`` or ``<a@b>``, lower case."""
    return parseaddr(value)[1].strip().lower()
