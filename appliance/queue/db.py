"""The queue's SQLite engine and its schema migrations.

:func:`make_engine` opens SQLite in WAL mode with ``synchronous=FULL`` (a committed state
survives power loss), a busy timeout and foreign keys on. Every transaction opened through
:func:`write_tx` starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so two
claimers (threads or processes) never read the same queued row and both update it.
:func:`migrate` runs the alembic migrations shipped inside this package; it needs no
``alembic.ini`` and works from an installed wheel.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from appliance.queue.errors import MigrationError, QueueError

__all__ = [
    "MIGRATIONS_DIR", "Result", "Tx", "current_revision", "head_revision", "make_engine", "migrate", "read_tx",
    "write_tx",
]

_log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for a SQLite file given as a URL (``sqlite:///path``) or a plain path.

    The parent directory is created if missing. In-memory databases are refused: the queue
    is shared by worker threads and must survive the process.
    """
    text_url = str(url)
    if "://" not in text_url:
        text_url = f"sqlite:///{Path(text_url).resolve()}"
    parsed = make_url(text_url)
    if parsed.get_backend_name() != "sqlite":
        raise MigrationError(f"database_url {text_url!r}: only sqlite:/// URLs are supported")
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise MigrationError("the queue needs a SQLite file, not an in-memory database")
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=16,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Manage transactions ourselves (BEGIN IMMEDIATE / BEGIN below), not pysqlite.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Result:
    """The rows of one statement (a thin, fast stand-in for SQLAlchemy's ``Result``)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def all(self) -> list[Any]:
        return self._cursor.fetchall()

    def first(self) -> Any:
        rows = self._cursor.fetchall()
        return rows[0] if rows else None

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        rows = self._cursor.fetchall()
        if len(rows) != 1:
            raise QueueError(f"the database returned {len(rows)} rows where one was expected")
        return rows[0][0]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor.fetchall())


class Tx:
    """One open transaction on a raw sqlite3 connection (the queue's hot paths bypass the
    ORM: a claim or a part transition is a handful of statements, run many times a second)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | list[Sequence[Any]] = ()) -> Result:
        """Run ``sql``; a list of parameter tuples runs it once per tuple (executemany)."""
        if isinstance(params, list):
            return Result(self._conn.executemany(sql, params))
        return Result(self._conn.execute(sql, params))


_write_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def _write_lock(engine: Engine) -> threading.Lock:
    with _write_locks_guard:
        lock = _write_locks.get(engine)
        if lock is None:
            lock = _write_locks[engine] = threading.Lock()
        return lock


@contextmanager
def _tx(engine: Engine, begin: str, *, synchronous: str | None = None) -> Iterator[Tx]:
    pooled = engine.raw_connection()
    try:
        conn: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        if synchronous is not None:
            conn.execute(f"PRAGMA synchronous={synchronous}")
        try:
            conn.execute(begin)
            try:
                yield Tx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if synchronous is not None:
                conn.execute("PRAGMA synchronous=FULL")
    finally:
        pooled.close()


@contextmanager
def write_tx(engine: Engine, *, durable: bool = True) -> Iterator[Tx]:
    """A short write transaction (``BEGIN IMMEDIATE``), committed on success.

    Writers of one process queue on a Python lock first: SQLite's own busy handler sleeps
    in growing steps, which would throttle worker threads contending for the write lock.
    Other processes still wait through the busy timeout.

    ``durable=False`` commits without the fsync (``synchronous=NORMAL`` for this one
    transaction). Only for writes whose loss in a power cut is harmless — a claim, which
    start-up recovery would undo anyway. The WAL is append-only, so the next durable commit
    syncs these frames too: a later state can never survive without an earlier one.
    """
    with _write_lock(engine):
        if durable:
            with _tx(engine, "BEGIN IMMEDIATE") as tx:
                yield tx
        else:
            with _tx(engine, "BEGIN IMMEDIATE", synchronous="NORMAL") as tx:
                yield tx


def read_tx(engine: Engine) -> AbstractContextManager[Tx]:
    """A read transaction (one consistent snapshot)."""
    return _tx(engine, "BEGIN")


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest). Idempotent; keeps data.

    A database already at the newest revision is recognised without importing alembic
    (and, through the migration environment, SQLModel): together they cost the daemon
    some 20 MB of memory for nothing on every start after the first.
    """
    if revision == "head" and _stored_revision(engine) == _shipped_head():
        return
    from alembic import command

    try:
        with engine.connect() as conn:
            # SQLite's procedure for rebuilding a table (batch mode copies, drops and renames
            # it): foreign keys off *outside* the transaction, else dropping a table that
            # other rows reference fails; checked before the commit instead.
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                conn = conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    command.upgrade(_alembic_config(conn), revision)
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise MigrationError(
                            f"migrating to {revision} would break {len(broken)} reference(s), "
                            f"e.g. in table {broken[0][0]}; nothing was changed"
                        )
            finally:
                raw.execute("PRAGMA foreign_keys=ON")
    except MigrationError:
        raise
    except Exception as exc:  # alembic and SQLAlchemy raise many unrelated types here
        raise MigrationError(f"could not migrate the queue database to {revision}: {exc}") from exc


def _stored_revision(engine: Engine) -> str | None:
    """``alembic_version.version_num`` read with plain SQL (None if absent or ambiguous)."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except Exception:  # no such table yet: a new database
        return None
    return rows[0][0] if len(rows) == 1 else None


_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*=\s*(?:["']([^"']+)["']|None)""", re.M)


@functools.cache
def shipped_revisions() -> tuple[str, ...]:
    """Every revision in ``migrations/versions``, oldest first (the last is the head).

    Read from the files' ``revision``/``down_revision`` lines, without importing alembic;
    empty when they do not form one linear chain (then alembic must decide).
    """
    parent_of: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _REVISION_LINE.finditer(path.read_text("utf-8")))
        if found.get("revision"):
            parent_of[found["revision"]] = found.get("down_revision")
    children: dict[str | None, list[str]] = {}
    for rev, parent in parent_of.items():
        children.setdefault(parent, []).append(rev)
    chain: list[str] = []
    current: str | None = None
    while current in children:
        if len(children[current]) != 1:
            return ()
        current = children[current][0]
        chain.append(current)
    return tuple(chain) if len(chain) == len(parent_of) else ()


def _shipped_head() -> str | None:
    chain = shipped_revisions()
    return chain[-1] if chain else None


def current_revision(engine: Engine) -> str | None:
    """The alembic revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("the queue package ships no migrations")
    return head
