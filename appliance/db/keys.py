"""API keys (``api_keys``): only the SHA-256 of a key is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.db.engine import Tx
from appliance.db.rows import as_datetime

__all__ = [
    "SCOPES", "ApiKey", "StoredKey", "digest", "get_key", "insert_key", "list_keys", "new_key_problem", "revoke_key",
    "touch_key",
]

SCOPES = ("send", "read", "admin")


def digest(secret: str) -> str:
    """What is stored of a secret (a key, a token): its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key_problem(name: str, scopes: frozenset[str]) -> str | None:
    """Why a key cannot be made with this (stripped) name and scopes, or ``None``."""
    if not name:
        return "a key needs a name"
    if not scopes:
        return "give at least one --scope (send, read, admin)"
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        return f"unknown scope {unknown[0]!r}; use send, read or admin"
    return None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key with the digest a presented key is compared with."""

    key: ApiKey
    digest: str


_COLS = "id, name, digest, scopes, created_at, last_used_at, revoked_at"


def _key(r: Any) -> ApiKey:
    return ApiKey(
        id=r["id"],
        name=r["name"],
        scopes=frozenset(s for s in r["scopes"].split(",") if s),
        created_at=as_datetime(r["created_at"]),  # type: ignore[arg-type]
        last_used_at=as_datetime(r["last_used_at"]),
        revoked_at=as_datetime(r["revoked_at"]),
    )


def insert_key(tx: Tx, key_id: str, name: str, digest: str, scopes: Iterable[str], now: float) -> ApiKey | None:
    """Store a new key; None when ``key_id`` is taken (pick another)."""
    row = tx.exec_driver_sql(
        f"INSERT INTO api_keys (id, name, digest, scopes, created_at) VALUES (?, ?, ?, ?, ?) "
        f"ON CONFLICT (id) DO NOTHING RETURNING {_COLS}",
        (key_id, name, digest, ",".join(sorted(scopes)), now),
    ).first()
    return None if row is None else _key(row)


def get_key(tx: Tx, key_id: str) -> StoredKey | None:
    row = tx.exec_driver_sql(f"SELECT {_COLS} FROM api_keys WHERE id = ?", (key_id,)).first()
    return None if row is None else StoredKey(_key(row), row["digest"])


def list_keys(tx: Tx) -> list[ApiKey]:
    """Every key, oldest first."""
    return [_key(r) for r in tx.exec_driver_sql(f"SELECT {_COLS} FROM api_keys ORDER BY created_at, id").all()]


def touch_key(tx: Tx, key_id: str, now: float, *, used_before: float) -> bool:
    """Record a use at ``now`` unless one at ``used_before`` or later is recorded already
    (so concurrent requests, maybe on several nodes, write once and never move it back)."""
    return bool(tx.exec_driver_sql(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        (now, key_id, used_before),
    ).rowcount)


def revoke_key(tx: Tx, key_id: str, now: float) -> ApiKey | None:
    """Revoke a live key; None if there is no live key ``key_id``."""
    row = tx.exec_driver_sql(
        f"UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING {_COLS}",
        (now, key_id),
    ).first()
    return None if row is None else _key(row)
