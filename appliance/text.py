"""Small checks on text people typed: :func:`is_blank` and :func:`shorten`."""

from __future__ import annotations

import unicodedata

__all__ = ["is_blank", "shorten"]

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
