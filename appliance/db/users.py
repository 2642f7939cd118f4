"""People who sign in to the web pages (``users``) and their browser sessions
(``web_sessions``, stored by the SHA-256 of the cookie's token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.db.engine import Tx

__all__ = [
    "SessionRecord",
    "User",
    "UserCredentials",
    "delete_expired_sessions",
    "delete_session",
    "delete_user_sessions",
    "disable_user",
    "enable_user",
    "get_session",
    "get_user",
    "insert_session",
    "insert_user",
    "list_users",
    "record_login",
    "set_password_hash",
    "set_role",
    "touch_session",
    "user_credentials",
]


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


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """A user with the stored password hash, for checking a sign-in."""

    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session and its user."""

    user: User
    csrf: str
    created_at: float
    last_seen_at: float
    expires_at: float


_USER_COLS = "id, username, role, created_at, disabled_at, last_login_at"
_U_COLS = ", ".join(f"u.{c}" for c in _USER_COLS.split(", "))


def _user(r: Any) -> User:
    return User(int(r["id"]), r["username"], r["role"], r["created_at"], r["disabled_at"], r["last_login_at"])


def insert_user(tx: Tx, username: str, password_hash: str, role: str, now: float) -> User | None:
    """Add a user; None when the name is taken (also by another node at the same moment)."""
    row = tx.exec_driver_sql(
        "INSERT INTO users (username, password_hash, role, created_at, password_changed_at) "
        f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING {_USER_COLS}",
        (username, password_hash, role, now, now),
    ).first()
    return None if row is None else _user(row)


def get_user(tx: Tx, username: str) -> User | None:
    row = tx.exec_driver_sql(f"SELECT {_USER_COLS} FROM users WHERE username = ?", (username,)).first()
    return None if row is None else _user(row)


def list_users(tx: Tx) -> list[User]:
    """Every user, by name (code point order on both engines)."""
    rows = tx.exec_driver_sql(f"SELECT {_USER_COLS} FROM users").all()
    return sorted((_user(r) for r in rows), key=lambda u: u.username)


def user_credentials(tx: Tx, username: str) -> UserCredentials | None:
    row = tx.exec_driver_sql(
        f"SELECT {_USER_COLS}, password_hash FROM users WHERE username = ?", (username,)
    ).first()
    return None if row is None else UserCredentials(_user(row), row["password_hash"])


def record_login(tx: Tx, user_id: int, at: float) -> None:
    tx.exec_driver_sql("UPDATE users SET last_login_at = ? WHERE id = ?", (at, user_id))


def set_password_hash(tx: Tx, user_id: int, password_hash: str, at: float) -> None:
    tx.exec_driver_sql(
        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?", (password_hash, at, user_id)
    )


def set_role(tx: Tx, user_id: int, role: str) -> None:
    tx.exec_driver_sql("UPDATE users SET role = ? WHERE id = ?", (role, user_id))


def disable_user(tx: Tx, user_id: int, at: float) -> None:
    """Mark the user disabled (the first time counts)."""
    tx.exec_driver_sql("UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?", (at, user_id))


def enable_user(tx: Tx, user_id: int) -> None:
    tx.exec_driver_sql("UPDATE users SET disabled_at = NULL WHERE id = ?", (user_id,))


# ---------------------------------------------------------------------- sessions


def insert_session(tx: Tx, digest: str, user_id: int, csrf: str, now: float, expires_at: float) -> None:
    tx.exec_driver_sql(
        "INSERT INTO web_sessions (id, user_id, csrf, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (digest, user_id, csrf, now, now, expires_at),
    )


def get_session(tx: Tx, digest: str) -> SessionRecord | None:
    row = tx.exec_driver_sql(
        f"SELECT s.csrf, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, {_U_COLS} "
        "FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        (digest,),
    ).first()
    if row is None:
        return None
    return SessionRecord(_user(row), row["csrf"], row["s_created_at"], row["last_seen_at"], row["expires_at"])


def touch_session(tx: Tx, digest: str, now: float, expires_at: float, *, seen_before: float) -> bool:
    """Record a request at ``now`` and move the deadline, unless the session was seen at
    ``seen_before`` or later (a concurrent request, maybe on another node, did it)."""
    return bool(tx.exec_driver_sql(
        "UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE id = ? AND last_seen_at < ?",
        (now, expires_at, digest, seen_before),
    ).rowcount)


def delete_session(tx: Tx, digest: str) -> bool:
    return bool(tx.exec_driver_sql("DELETE FROM web_sessions WHERE id = ?", (digest,)).rowcount)


def delete_user_sessions(tx: Tx, user_id: int) -> int:
    """Sign the user out everywhere; how many sessions ended."""
    return tx.exec_driver_sql("DELETE FROM web_sessions WHERE user_id = ?", (user_id,)).rowcount


def delete_expired_sessions(tx: Tx, now: float) -> int:
    return tx.exec_driver_sql("DELETE FROM web_sessions WHERE expires_at < ?", (now,)).rowcount
