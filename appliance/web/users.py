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
from appliance.db.errors import ConstraintViolation as IntegrityError

from sqlalchemy import Engine

from appliance.errors import ApplianceError
from appliance.db.engine import read_tx, write_tx

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


@dataclass(frozen=True, slots=True)
class User:
    """A user (never the password hash)."""

    id: int
    username: str
    role: str
    created_at: float
    disabled_at: float | None
    last_login_at: float | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_USER_COLUMNS = "id, username, role, created_at, disabled_at, last_login_at"
_SESSION_USER_COLUMNS = ", ".join(f"u.{c}" for c in _USER_COLUMNS.split(", "))


def _user(row: tuple) -> User:  # type: ignore[type-arg]
    return User(int(row[0]), row[1], row[2], row[3], row[4], row[5])


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
        now = time.time()
        try:
            with write_tx(self.engine) as tx:
                tx.exec_driver_sql(
                    "INSERT INTO users (username, password_hash, role, created_at, password_changed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (username, hash_password(password), role, now, now),
                )
        except IntegrityError:
            raise UserError(f"a user named {username!r} already exists") from None
        return self.get(username)

    def get(self, username: str) -> User:
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)
            ).first()
        if row is None:
            raise UserError(f"no user named {username!r}")
        return _user(row)

    def list(self) -> list[User]:
        with read_tx(self.engine) as tx:
            rows = tx.exec_driver_sql(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").all()
        return [_user(r) for r in rows]

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the name and password match and the user is not disabled."""
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                (username.strip(),),
            ).first()
        if row is None:
            verify_password(password, _dummy_hash())
            return None
        if not verify_password(password, row[6]) or row[4] is not None:
            return None
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql("UPDATE users SET last_login_at = ? WHERE id = ?", (time.time(), row[0]))
        return _user(row[:6])

    def set_password(self, username: str, password: str) -> User:
        """Change the password; every session of the user is signed out."""
        check_password_rules(password)
        user = self.get(username)
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                (hash_password(password), time.time(), user.id),
            )
            tx.exec_driver_sql("DELETE FROM web_sessions WHERE user_id = ?", (user.id,))
        return user

    def set_role(self, username: str, role: str) -> User:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use staff or admin")
        user = self.get(username)
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql("UPDATE users SET role = ? WHERE id = ?", (role, user.id))
        return self.get(username)

    def disable(self, username: str) -> User:
        """Refuse further sign-ins and end the user's sessions (the row stays for the audit)."""
        user = self.get(username)
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql("UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?",
                               (time.time(), user.id))
            tx.exec_driver_sql("DELETE FROM web_sessions WHERE user_id = ?", (user.id,))
        return self.get(username)

    def enable(self, username: str) -> User:
        user = self.get(username)
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql("UPDATE users SET disabled_at = NULL WHERE id = ?", (user.id,))
        return self.get(username)


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
            tx.exec_driver_sql("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
            tx.exec_driver_sql(
                "INSERT INTO web_sessions (id, user_id, csrf, created_at, last_seen_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_token_digest(token), user.id, csrf, now, now, expires),
            )
        return token, Session(user, csrf, expires)

    def lookup(self, token: str) -> Session | None:
        """The live session of ``token`` (its idle deadline moved on), or None."""
        if not token or len(token) > 128:
            return None
        digest = _token_digest(token)
        now = time.time()
        with read_tx(self.engine) as tx:
            row = tx.exec_driver_sql(
                f"SELECT s.csrf, s.created_at, s.last_seen_at, s.expires_at, {_SESSION_USER_COLUMNS} "
                "FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
                (digest,),
            ).first()
        if row is None or row[3] < now or row[8] is not None:
            return None
        expires = row[3]
        if now - row[2] > self._TOUCH_EVERY_S:
            expires = min(now + self.idle_s, row[1] + self.max_age_s)
            with write_tx(self.engine) as tx:
                tx.exec_driver_sql(
                    "UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?",
                    (now, expires, digest),
                )
        return Session(_user(row[4:10]), row[0], expires)

    def end(self, token: str) -> None:
        with write_tx(self.engine) as tx:
            tx.exec_driver_sql("DELETE FROM web_sessions WHERE id = ?", (_token_digest(token),))
