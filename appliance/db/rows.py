"""Small pieces every record module shares: times, JSON columns, page cursors, optional
WHERE filters and deletes by a list of keys."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from appliance.db.errors import InvalidRequest

if TYPE_CHECKING:
    from appliance.db.engine import Tx

__all__ = [
    "Page", "as_datetime", "as_timestamp", "decode_cursor", "dump_json", "encode_cursor", "delete_in", "load_json",
    "matching", "placeholders",
]

_MAX_CURSOR_CHARS = 512


def placeholders(n: int) -> str:
    """``n`` bound-parameter marks for an ``IN (...)`` list: ``"?,?,?"``."""
    return ",".join("?" * n)


def matching(*filters: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """The conditions of a WHERE clause and their parameters, from ``(condition, value)``
    pairs with one ``?`` each; a pair whose value is None (a filter not asked for) is left out."""
    asked = [(condition, value) for condition, value in filters if value is not None]
    return [condition for condition, _ in asked], [value for _, value in asked]


def delete_in(tx: Tx, table: str, column: str, keys: Sequence[Any]) -> int:
    """Delete the rows of ``table`` whose ``column`` is one of ``keys``; how many (0 for none)."""
    if not keys:
        return 0
    return tx.exec_driver_sql(f"DELETE FROM {table} WHERE {column} IN ({placeholders(len(keys))})", tuple(keys)).rowcount


def as_datetime(ts: float | None) -> datetime | None:
    """UNIX seconds (as stored) → an aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def as_timestamp(value: datetime | float | int | None) -> float | None:
    """A datetime (naive means UTC) or seconds → UNIX seconds as stored."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def dump_json(value: Any) -> str | None:
    """A compact, key-sorted JSON column (None for an empty value)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value else None


def load_json(text: str | None) -> Any:
    return json.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; pass ``next_cursor`` to get the next one."""

    items: list[Any]
    next_cursor: str | None


def encode_cursor(kind: str, key: int | str) -> str:
    """An opaque cursor for the row after ``key`` in listing ``kind``."""
    return base64.urlsafe_b64encode(json.dumps([kind, key]).encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, key_type: type[int] | type[str] | type[list[Any]] = int) -> Any:
    """The key inside a cursor made by :func:`encode_cursor` for listing ``kind``.

    Anything else — not base64, not JSON, another listing's, a key of the wrong type or
    out of range — is an :class:`InvalidRequest` naming ``cursor`` (never a server error).
    """
    if cursor is None:
        return None
    bad = InvalidRequest(field="cursor", detail="not one this server handed out; start again without it")
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise bad from exc
    if not isinstance(decoded, list) or len(decoded) != 2:
        raise bad
    got_kind, key = decoded
    if got_kind != kind:
        raise InvalidRequest(field="cursor", detail="belongs to a different listing; start again without it")
    if key_type is int:
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < 2**63:
            raise bad
    elif key_type is str and not isinstance(key, str):
        raise bad
    elif key_type is list and not isinstance(key, list):
        raise bad
    return key
