"""People who sign in to the web pages, and their browser sessions.

Passwords are hashed with scrypt (``hashlib.scrypt``: a slow, memory-hard hash from the
standard library; n=2**14, r=8 costs ~16 MB and tens of milliseconds per try, so a stolen
database is expensive to brute-force). A session is a random token in an HttpOnly cookie;
only its SHA-256 is stored, next to the CSRF token every form of that session must carry.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from appliance.db import users as users_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.users import User
from appliance.errors import ApplianceError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "Session",
    "Sessions",
    "User",
    "UserError",
    "Users",
    "hash_password",
    "verify_password",
]

ROLES = ("staff", "admin")
MIN_PASSWORD_LENGTH = 10
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class UserError(ApplianceError):
    """A user request that cannot be honoured (bad name, weak password, unknown user)."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 salt and hash)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the user name is unknown, so a wrong name costs as long as a wrong
    password."""
    return hash_password(secrets.token_hex(8))


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")


class Users:
    """The ``users`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, username: str, password: str, *, role: str = "staff") -> User:
        username = username.strip()
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise UserError("a user name is 1 to 64 characters without spaces")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use staff or admin")
        check_password_rules(password)
        password_hash = hash_password(password)
        with write_tx(self.engine) as tx:
            user = users_db.insert_user(tx, username, password_hash, role, time.time())
        if user is None:
            raise UserError(f"a user named {username!r} already exists")
        return user

    def get(self, username: str) -> User:
        with read_tx(self.engine) as tx:
            return _existing(tx, username)

    def list(self) -> list[User]:
        with read_tx(self.engine) as tx:
            return users_db.list_users(tx)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the name and password match and the user is not disabled."""
        with read_tx(self.engine) as tx:
            found = users_db.user_credentials(tx, username.strip())
        if found is None:
            verify_password(password, _dummy_hash())
            return None
        if not verify_password(password, found.password_hash) or found.user.disabled_at is not None:
            return None
        with write_tx(self.engine) as tx:
            users_db.record_login(tx, found.user.id, time.time())
        return found.user

    def set_password(self, username: str, password: str) -> User:
        """Change the password; every session of the user is signed out."""
        check_password_rules(password)
        password_hash = hash_password(password)
        with write_tx(self.engine) as tx:
            user = _existing(tx, username)
            users_db.set_password_hash(tx, user.id, password_hash, time.time())
            users_db.delete_user_sessions(tx, user.id)
        return user

    def set_role(self, username: str, role: str) -> User:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use staff or admin")
        with write_tx(self.engine) as tx:
            users_db.set_role(tx, _existing(tx, username).id, role)
            return _existing(tx, username)

    def disable(self, username: str) -> User:
        """Refuse further sign-ins and end the user's sessions (the row stays for the audit)."""
        with write_tx(self.engine) as tx:
            user = _existing(tx, username)
            users_db.disable_user(tx, user.id, time.time())
            users_db.delete_user_sessions(tx, user.id)
            return _existing(tx, username)

    def enable(self, username: str) -> User:
        with write_tx(self.engine) as tx:
            users_db.enable_user(tx, _existing(tx, username).id)
            return _existing(tx, username)


def _existing(tx: Tx, username: str) -> User:
    user = users_db.get_user(tx, username)
    if user is None:
        raise UserError(f"no user named {username!r}")
    return user


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its user and the CSRF token its forms carry."""

    user: User
    csrf: str
    expires_at: float


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """The ``web_sessions`` table. A session ends after ``idle_s`` without a request or
    ``max_age_s`` after sign-in, whichever comes first."""

    # Like the API keys' last_used_at: refresh the idle deadline at most once a minute.
    _TOUCH_EVERY_S = 60.0

    def __init__(self, engine: Engine, *, idle_s: float = 8 * 3600, max_age_s: float = 7 * 86400) -> None:
        self.engine = engine
        self.idle_s = idle_s
        self.max_age_s = max_age_s

    def create(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: the cookie token (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + self.idle_s
        with write_tx(self.engine) as tx:
            users_db.delete_expired_sessions(tx, now)
            users_db.insert_session(tx, _token_digest(token), user.id, csrf, now, expires)
        return token, Session(user, csrf, expires)

    def lookup(self, token: str) -> Session | None:
        """The live session of ``token`` (its idle deadline moved on), or None."""
        if not token or len(token) > 128:
            return None
        digest = _token_digest(token)
        now = time.time()
        with read_tx(self.engine) as tx:
            found = users_db.get_session(tx, digest)
        if found is None or found.expires_at < now or found.user.disabled_at is not None:
            return None
        expires = found.expires_at
        if now - found.last_seen_at > self._TOUCH_EVERY_S:
            expires = min(now + self.idle_s, found.created_at + self.max_age_s)
            with write_tx(self.engine) as tx:
                users_db.touch_session(tx, digest, now, expires, seen_before=now - self._TOUCH_EVERY_S)
        return Session(found.user, found.csrf, expires)

    def end(self, token: str) -> None:
        with write_tx(self.engine) as tx:
            users_db.delete_session(tx, _token_digest(token))
