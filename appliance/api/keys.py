"""API keys: created by ``appliance keys create``, stored hashed, checked in constant time.

A key looks like ``sk_<id>_<secret>``. Only the SHA-256 of the whole key is stored (the
secret is 32 random bytes, so a fast hash is enough: there is nothing to brute-force); the
``id`` part finds the row, and :func:`hmac.compare_digest` compares the hashes.
Scopes: ``send``, ``read``, ``admin`` (admin may do everything).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from appliance.errors import ApplianceError
from appliance.db.engine import read_tx, write_tx

SCOPES = ("send", "read", "admin")
_PREFIX = "sk_"


class ApiKeyError(ApplianceError):
    """A key request that cannot be honoured (unknown scope, empty name, unknown key)."""


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


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class ApiKeys:
    """The ``api_keys`` table."""

    # Touching last_used_at on every request would turn each GET into a write; once a
    # minute per key is plenty for "when was this key last used".
    _TOUCH_EVERY_S = 60.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        """Create a key; returns it and the secret key string (shown once, never stored)."""
        name = name.strip()
        if not name:
            raise ApiKeyError("a key needs a name")
        wanted = frozenset(scopes)
        if not wanted:
            raise ApiKeyError("give at least one --scope (send, read, admin)")
        unknown = sorted(wanted - set(SCOPES))
        if unknown:
            raise ApiKeyError(f"unknown scope {unknown[0]!r}; use send, read or admin")
        key_id = secrets.token_hex(4)
        secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql(
                "INSERT INTO api_keys (id, name, digest, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, name, _digest(secret), ",".join(sorted(wanted)), now),
            )
        return ApiKey(key_id, name, wanted, _dt(now), None, None), secret  # type: ignore[arg-type]

    def verify(self, presented: str) -> ApiKey | None:
        """The live key ``presented`` is, or ``None``. Constant-time on the secret part."""
        if not presented.startswith(_PREFIX):
            return None
        key_id, sep, _ = presented[len(_PREFIX):].partition("_")
        if not sep or not key_id:
            return None
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                "SELECT id, name, digest, scopes, created_at, last_used_at, revoked_at "
                "FROM api_keys WHERE id = ?",
                (key_id,),
            ).first()
        # Compare against a dummy digest when the id is unknown, so timing does not tell
        # which ids exist.
        stored = row[2] if row is not None else "0" * 64
        if not hmac.compare_digest(stored, _digest(presented)) or row is None or row[6] is not None:
            return None
        now = time.time()
        if row[5] is None or now - row[5] > self._TOUCH_EVERY_S:
            with write_tx(self.engine) as tx:
                tx.exec_driver_sql("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))
        return self._view(row)

    def list(self) -> list[ApiKey]:
        with read_tx(self.engine) as tx:
            rows = tx.exec_driver_sql(
                "SELECT id, name, digest, scopes, created_at, last_used_at, revoked_at "
                "FROM api_keys ORDER BY created_at"
            ).all()
        return [self._view(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with write_tx(self.engine) as tx:
            changed = tx.exec_driver_sql(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            ).rowcount
        if not changed:
            raise ApiKeyError(f"no live key with id {key_id!r}")
        return next(k for k in self.list() if k.id == key_id)

    @staticmethod
    def _view(row: tuple) -> ApiKey:  # type: ignore[type-arg]
        return ApiKey(
            id=row[0],
            name=row[1],
            scopes=frozenset(s for s in row[3].split(",") if s),
            created_at=_dt(row[4]),  # type: ignore[arg-type]
            last_used_at=_dt(row[5]),
            revoked_at=_dt(row[6]),
        )
