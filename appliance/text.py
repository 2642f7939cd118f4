"""Small text helpers: checks on text people typed (:func:`is_blank`, :func:`shorten`) and
what a message or a log line may show of an error or a URL (:func:`first_line`, :func:`url_host`)."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

__all__ = ["first_line", "is_blank", "shorten", "url_host"]

# Letters that show nothing though Unicode files them as letters or symbols (fillers).
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
# Control, format (zero-width space and joiners, BOM, bidi marks), separators, unassigned.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cn", "Co", "Cs"})


def is_blank(text: str) -> bool:
    """True when ``text`` would show nothing on a phone: empty, or only spaces, line
    breaks, zero-width characters (``\\u200b``, ``\\u200c``, ``\\u200d``, ``\\ufeff``...),
    control characters or blank fillers."""
    return all(
        ch.isspace() or ch in _FILLERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in text
    )


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (and an ellipsis) for a message."""
    return text if len(text) <= limit else text[:limit] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def url_host(url: str) -> str:
    """What logs may say about a receiver: its host (never the path, query or credentials)."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or "?"
