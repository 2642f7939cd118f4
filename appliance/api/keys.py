"""API keys: created by ``appliance keys create``, stored hashed, checked in constant time.

A key looks like ``sk_<id>_<secret>``. Only the SHA-256 of the whole key is stored (the
secret is 32 random bytes, so a fast hash is enough: there is nothing to brute-force); the
``id`` part finds the row, and :func:`hmac.compare_digest` compares the hashes.
Scopes: ``send``, ``read``, ``admin`` (admin may do everything).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable

from sqlalchemy import Engine

from appliance.db import keys as keys_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.keys import SCOPES, ApiKey
from appliance.errors import ApplianceError

__all__ = ["SCOPES", "ApiKey", "ApiKeyError", "ApiKeys"]

_PREFIX = "sk_"


class ApiKeyError(ApplianceError):
    """A key request that cannot be honoured (unknown scope, empty name, unknown key)."""


class ApiKeys:
    """The ``api_keys`` table."""

    # Touching last_used_at on every request would turn each GET into a write; once a
    # minute per key is plenty for "when was this key last used".
    _TOUCH_EVERY_S = 60.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        """Create a key; returns it and the secret key string (shown once, never stored)."""
        name, wanted = name.strip(), frozenset(scopes)
        problem = keys_db.new_key_problem(name, wanted)
        if problem is not None:
            raise ApiKeyError(problem)
        now = time.time()
        while True:  # a new random id; another only if this one is taken (1 in 4 billion)
            key_id = secrets.token_hex(4)
            secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            with write_tx(self.engine) as tx:
                key = keys_db.insert_key(tx, key_id, name, keys_db.digest(secret), wanted, now)
            if key is not None:
                return key, secret

    def verify(self, presented: str) -> ApiKey | None:
        """The live key ``presented`` is, or ``None``. Constant-time on the secret part."""
        if not presented.startswith(_PREFIX):
            return None
        key_id, sep, _ = presented[len(_PREFIX):].partition("_")
        if not sep or not key_id:
            return None
        with read_tx(self.engine) as tx:
            stored = keys_db.get_key(tx, key_id)
        # Compare against a dummy digest when the id is unknown, so timing does not tell
        # which ids exist.
        digest = stored.digest if stored is not None else "0" * 64
        if (not hmac.compare_digest(digest, keys_db.digest(presented)) or stored is None
                or stored.key.revoked_at is not None):
            return None
        now = time.time()
        last = stored.key.last_used_at
        if last is None or now - last.timestamp() > self._TOUCH_EVERY_S:
            with write_tx(self.engine) as tx:
                keys_db.touch_key(tx, key_id, now, used_before=now - self._TOUCH_EVERY_S)
        return stored.key

    def list(self) -> list[ApiKey]:
        with read_tx(self.engine) as tx:
            return keys_db.list_keys(tx)

    def revoke(self, key_id: str) -> ApiKey:
        with write_tx(self.engine) as tx:
            key = keys_db.revoke_key(tx, key_id, time.time())
        if key is None:
            raise ApiKeyError(f"no live key with id {key_id!r}")
        return key
