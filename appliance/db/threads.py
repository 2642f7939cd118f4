"""The inbox: received messages grouped into one thread per sender, and one number's
conversation (what it sent us and what we sent it, merged).

The thread list groups ``inbound`` by sender, newest thread first, with a keyset cursor
(the thread's last time and its sender). A thread shows its newest message's text and
keyword: the grouping finds each sender's newest time, and a join fetches the row at
that time (SQLite's "bare column of MAX()" shortcut does not exist on PostgreSQL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.db.engine import Tx
from appliance.db.errors import InvalidRequest
from appliance.db.rows import Page, as_datetime, decode_cursor, encode_cursor

__all__ = [
    "ThreadEntry",
    "ThreadSummary",
    "conversation",
    "decode_thread_cursor",
    "like_pattern",
    "list_threads",
]

_CURSOR_KIND = "t"


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One sender in the inbox: its newest message (matching the search) and how many
    messages it sent (that match)."""

    sender: str
    body: str
    keyword: str | None
    last_at: float
    count: int


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """One message of a conversation: ``direction`` ``in`` (received) or ``out`` (sent)."""

    direction: str
    at: datetime
    body: str
    keyword: str | None = None
    status: str | None = None
    error: str | None = None
    modem: str | None = None
    message_id: int | None = None


def like_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` anywhere, its ``%``, ``_``
    and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def decode_thread_cursor(cursor: str | None) -> tuple[float, str] | None:
    """The ``(last_at, sender)`` inside a thread-list cursor; anything else is an
    :class:`InvalidRequest` naming ``cursor``."""
    key = decode_cursor(_CURSOR_KIND, cursor, list)
    if key is None:
        return None
    bad = InvalidRequest(field="cursor", detail="not one this server handed out; start again without it")
    if len(key) != 2:
        raise bad
    last_at, sender = key
    if isinstance(last_at, bool) or not isinstance(last_at, (int, float)) or not isinstance(sender, str):
        raise bad
    try:
        at = float(last_at)
    except OverflowError:  # an integer beyond any float
        raise bad from None
    if not math.isfinite(at):
        raise bad
    return at, sender


def _search(alias: str, q: str) -> tuple[str, list[Any]]:
    """The condition "number or text contains ``q``" (case-insensitive) on ``alias``."""
    if not q:
        return "", []
    pattern = like_pattern(q)
    return (f"(lower({alias}.sender) LIKE lower(?) ESCAPE '\\' OR lower({alias}.body) LIKE lower(?) ESCAPE '\\')",
            [pattern, pattern])


def list_threads(tx: Tx, *, q: str = "", cursor: str | None = None, limit: int = 200) -> Page:
    """One page of threads (:class:`ThreadSummary`), newest first; with ``q``, only the
    messages whose number or text contains it count."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest(field="limit", detail="must be between 1 and 1000")
    after = decode_thread_cursor(cursor)
    match, match_args = _search("m", q)
    inner_match, inner_args = _search("x", q)
    args: list[Any] = list(match_args)
    having = ""
    if after is not None:
        having = "HAVING MAX(m.received_at) < ? OR (MAX(m.received_at) = ? AND m.sender < ?)"
        args += [after[0], after[0], after[1]]
    args.append(limit + 1)
    args += inner_args
    sql = (
        "SELECT g.sender, g.last_at, g.n, i.body, i.keyword FROM ("
        "SELECT m.sender, MAX(m.received_at) AS last_at, COUNT(*) AS n FROM inbound AS m "
        f"{'WHERE ' + match if match else ''} GROUP BY m.sender {having} "
        "ORDER BY last_at DESC, m.sender DESC LIMIT ?) AS g "
        "JOIN inbound AS i ON i.id = (SELECT MAX(x.id) FROM inbound AS x "
        f"WHERE x.sender = g.sender AND x.received_at = g.last_at{' AND ' + inner_match if inner_match else ''}) "
        "ORDER BY g.last_at DESC, g.sender DESC"
    )
    rows = tx.exec_driver_sql(sql, tuple(args)).all()
    items = [
        ThreadSummary(r["sender"], r["body"], r["keyword"], float(r["last_at"]), int(r["n"]))
        for r in rows[:limit]
    ]
    nxt = encode_cursor(_CURSOR_KIND, [items[-1].last_at, items[-1].sender]) if len(rows) > limit else None  # type: ignore[arg-type]
    return Page(items, nxt)


def conversation(tx: Tx, number: str, *, limit: int) -> list[ThreadEntry]:
    """The latest ``limit`` messages from and to ``number`` (one snapshot), oldest first."""
    received = tx.exec_driver_sql(
        "SELECT id, modem, body, keyword, received_at FROM inbound WHERE sender = ? ORDER BY id DESC LIMIT ?",
        (number, limit),
    ).all()
    sent = tx.exec_driver_sql(
        "SELECT id, modem, body, status, error, created_at FROM messages WHERE recipient = ? "
        "ORDER BY id DESC LIMIT ?",
        (number, limit),
    ).all()
    entries = [
        ThreadEntry("in", as_datetime(r["received_at"]), r["body"], keyword=r["keyword"], modem=r["modem"])  # type: ignore[arg-type]
        for r in received
    ]
    entries += [
        ThreadEntry("out", as_datetime(r["created_at"]), r["body"], status=r["status"], error=r["error"],  # type: ignore[arg-type]
                    modem=r["modem"], message_id=r["id"])
        for r in sent
    ]
    entries.sort(key=lambda e: e.at)
    return entries[-limit:]
