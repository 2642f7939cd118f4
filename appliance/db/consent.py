"""Opt-outs (the suppression list) and the consent log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from appliance.db.engine import Tx
from appliance.db.errors import InvalidRequest
from appliance.db.messages import add_events
from appliance.db.rows import Page, as_datetime, decode_cursor, encode_cursor

__all__ = [
    "ConsentEntry",
    "OptOutView",
    "add_opt_out",
    "consent_log",
    "is_opted_out",
    "list_opt_outs",
    "opted_out_among",
    "remove_opt_out",
]


@dataclass(frozen=True, slots=True)
class OptOutView:
    number: str
    created_at: datetime
    source: str


class ConsentEntry(NamedTuple):
    """One consent change of a number (unpacks as ``at, action, source, note``)."""

    at: datetime
    action: str  # "opt_out" or "opt_in"
    source: str
    note: str | None


def opted_out_among(tx: Tx, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` are on the suppression list."""
    found: set[str] = set()
    unique = list(dict.fromkeys(numbers))
    if tx.postgres:  # one array parameter instead of thousands of placeholders
        return {r["number"] for r in tx.exec_driver_sql("SELECT number FROM opt_outs WHERE number = ANY(?)",
                                                          (unique,))}
    for i in range(0, len(unique), 5000):
        chunk = unique[i:i + 5000]
        marks = ",".join("?" * len(chunk))
        found.update(r["number"] for r in tx.exec_driver_sql(
            f"SELECT number FROM opt_outs WHERE number IN ({marks})", tuple(chunk)
        ))
    return found


def add_opt_out(tx: Tx, number: str, now: float, *, source: str, note: str | None) -> bool:
    """Put ``number`` on the list (False if it was already) and log it; every message still
    queued to it becomes ``suppressed`` in the same transaction. One already claimed is
    stopped before its first part by :func:`appliance.db.sending.begin_part`, which takes
    the same lock."""
    tx.lock(f"number:{number}")
    added = tx.exec_driver_sql(
        "INSERT INTO opt_outs (number, created_at, source) VALUES (?, ?, ?) ON CONFLICT(number) DO NOTHING",
        (number, now, source),
    ).rowcount
    tx.exec_driver_sql(
        "INSERT INTO consent_log (number, action, source, at, note) VALUES (?, 'opt_out', ?, ?, ?)",
        (number, source, now, note),
    )
    suppressed = tx.exec_driver_sql(
        "UPDATE messages SET status = 'suppressed', error = 'recipient opted out', updated_at = ? "
        "WHERE recipient = ? AND status = 'queued' AND ignore_opt_out = 0 RETURNING id",
        (now, number),
    ).all()
    if suppressed:
        add_events(tx, now, "suppressed", [r["id"] for r in suppressed], {"at": "opt-out"})
    return bool(added)


def remove_opt_out(tx: Tx, number: str, now: float, *, source: str, note: str | None) -> bool:
    """Take ``number`` off the list (False if it was not on it) and log it."""
    tx.lock(f"number:{number}")
    removed = tx.exec_driver_sql("DELETE FROM opt_outs WHERE number = ?", (number,)).rowcount
    tx.exec_driver_sql(
        "INSERT INTO consent_log (number, action, source, at, note) VALUES (?, 'opt_in', ?, ?, ?)",
        (number, source, now, note),
    )
    return bool(removed)


def is_opted_out(tx: Tx, number: str) -> bool:
    return tx.exec_driver_sql("SELECT 1 FROM opt_outs WHERE number = ?", (number,)).first() is not None


def list_opt_outs(tx: Tx, *, limit: int, cursor: str | None) -> Page:
    """The suppression list, ordered by number."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest(field="limit", detail="must be between 1 and 1000")
    after = decode_cursor("o", cursor, str)
    rows = tx.exec_driver_sql(
        "SELECT number, created_at, source FROM opt_outs WHERE number > ? ORDER BY number LIMIT ?",
        (after or "", limit + 1),
    ).all()
    items = [OptOutView(r["number"], as_datetime(r["created_at"]), r["source"]) for r in rows[:limit]]  # type: ignore[arg-type]
    return Page(items, encode_cursor("o", items[-1].number) if len(rows) > limit else None)


def consent_log(tx: Tx, number: str) -> list[ConsentEntry]:
    """Every consent change of ``number``, oldest first."""
    rows = tx.exec_driver_sql(
        "SELECT at, action, source, note FROM consent_log WHERE number = ? ORDER BY at, id", (number,)
    ).all()
    return [ConsentEntry(as_datetime(r["at"]), r["action"], r["source"], r["note"]) for r in rows]  # type: ignore[arg-type]
