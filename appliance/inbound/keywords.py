"""Opt-out keywords (docs/architecture.md, "Interfaces"): which inbound texts mean STOP, START or HELP.

Only a single-word message counts: case, surrounding whitespace and punctuation are
ignored, so "Stop.", " STOP " and "stop!" opt out while "please stop texting" does not
(a person writing a sentence is answered by staff, not by a robot).
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.config import KeywordsSection

DEFAULT_STOP = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE")
DEFAULT_START = ("START", "UNSTOP", "YES")
DEFAULT_HELP = ("HELP", "INFO")


class Keyword(enum.Enum):
    """What a keyword message asks for."""

    STOP = "stop"
    START = "start"
    HELP = "help"


def normalise(text: str) -> str:
    """Upper-case ``text`` with accents, whitespace and punctuation removed.

    ``"Arrête !"`` → ``"ARRETE"``; ``"opt-out"`` → ``"OPTOUT"``. Returns "" for anything
    that is not a single word after that.
    """
    stripped = text.strip()
    if not stripped or any(ch.isspace() for ch in stripped):
        return ""
    decomposed = unicodedata.normalize("NFKD", stripped)
    kept = [ch for ch in decomposed if unicodedata.category(ch)[0] in ("L", "N")]
    return "".join(kept).upper()


DEFAULT_REPLIES = {
    Keyword.STOP: "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
    Keyword.START: "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    Keyword.HELP: "This number sends messages from our office. Reply STOP to unsubscribe.",
}


@dataclass(frozen=True)
class Language:
    """One language's keyword lists and reply texts (words matched after :func:`normalise`)."""

    name: str
    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    replies: dict[Keyword, str]

    @classmethod
    def build(
        cls,
        name: str,
        *,
        stop: Iterable[str] = (),
        start: Iterable[str] = (),
        help: Iterable[str] = (),
        stop_reply: str | None = None,
        start_reply: str | None = None,
        help_reply: str | None = None,
    ) -> "Language":
        def words(items: Iterable[str]) -> frozenset[str]:
            return frozenset(w for w in (normalise(i) for i in items) if w)

        replies = {
            Keyword.STOP: stop_reply if stop_reply is not None else DEFAULT_REPLIES[Keyword.STOP],
            Keyword.START: start_reply if start_reply is not None else DEFAULT_REPLIES[Keyword.START],
            Keyword.HELP: help_reply if help_reply is not None else DEFAULT_REPLIES[Keyword.HELP],
        }
        return cls(name, words(stop), words(start), words(help), replies)


ENGLISH = Language.build("en", stop=DEFAULT_STOP, start=DEFAULT_START, help=DEFAULT_HELP)


@dataclass(frozen=True)
class KeywordMatch:
    """A keyword found in an inbound message, and the language whose list it is in."""

    keyword: Keyword
    language: Language

    @property
    def reply(self) -> str:
        return self.language.replies[self.keyword]


@dataclass(frozen=True)
class KeywordTable:
    """Keyword lists of every configured language, English first by default."""

    languages: tuple[Language, ...] = (ENGLISH,)

    @classmethod
    def from_settings(cls, section: KeywordsSection) -> KeywordTable:
        """The table the ``[keywords]`` settings describe: English (unless
        ``english = false``, with its replies overridden by ``*_reply``), then every
        ``[[keywords.languages]]`` in order."""
        languages: list[Language] = []
        if section.english:
            languages.append(Language.build(
                ENGLISH.name, stop=DEFAULT_STOP, start=DEFAULT_START, help=DEFAULT_HELP,
                stop_reply=section.stop_reply, start_reply=section.start_reply,
                help_reply=section.help_reply,
            ))
        for lang in section.languages:
            languages.append(Language.build(
                lang.name, stop=lang.stop, start=lang.start, help=lang.help,
                stop_reply=lang.stop_reply, start_reply=lang.start_reply, help_reply=lang.help_reply,
            ))
        return cls(tuple(languages))

    def reply_for(self, keyword: Keyword, language: str | None = None) -> str:
        """The reply to ``keyword`` in ``language`` (by name), else in the first language."""
        for lang in self.languages:
            if lang.name == language:
                return lang.replies[keyword]
        return self.languages[0].replies[keyword] if self.languages else DEFAULT_REPLIES[keyword]

    def classify(self, text: str) -> KeywordMatch | None:
        """The keyword ``text`` is, or ``None`` for an ordinary message."""
        word = normalise(text)
        if not word:
            return None
        # STOP is looked for in every language first: opting out must never lose to a
        # word that another list happens to share.
        for kind in (Keyword.STOP, Keyword.START, Keyword.HELP):
            for language in self.languages:
                if word in getattr(language, kind.value):
                    return KeywordMatch(kind, language)
        return None
