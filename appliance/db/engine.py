"""The data layer's engines: SQLite (one appliance) or PostgreSQL (several sharing one).

:func:`make_engine` reads ``database_url``:

- ``sqlite:////path`` (or a plain path): WAL mode, ``synchronous=FULL`` (a committed state
  survives power loss), a busy timeout and foreign keys on. Every :func:`write_tx` starts
  with ``BEGIN IMMEDIATE`` so two writers never interleave, and writers of one process
  queue on a Python lock first (SQLite's busy handler sleeps in growing steps).
- ``postgresql+psycopg://user@host/db`` (psycopg 3, the optional ``postgresql`` extra):
  READ COMMITTED write transactions, REPEATABLE READ read-only ones. Writers are not
  serialised: the statements that need it lock what they touch (``FOR UPDATE SKIP LOCKED``
  in claims, :meth:`Tx.lock` for a number or an idempotency key).

Every module of :mod:`appliance.db` writes its SQL once, with ``?`` placeholders; on
PostgreSQL :func:`pg_sql` turns it into psycopg's form (``%s``, no ``INDEXED BY`` hints)
once per statement text. Rows are read by column name (``row["status"]``) on both.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from appliance.db.errors import ConstraintViolation, DatabaseUnavailable, MigrationError, QueueError

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "Result",
    "Tx",
    "before_next_commit",
    "commit_steps_scope",
    "dialect",
    "make_engine",
    "pg_sql",
    "read_tx",
    "redact_url",
    "write_tx",
]

_log = logging.getLogger(__name__)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BUSY_TIMEOUT_MS = 10_000
_PG_CONNECT_TIMEOUT_S = 5


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and error lines)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: hide what looks like user:password@
        return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def dialect(engine: Engine) -> str:
    """``sqlite`` or ``postgresql``."""
    return engine.dialect.name


def make_engine(url: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``: a SQLite file (URL or plain path) or a PostgreSQL database.

    For SQLite the parent directory is created if missing; in-memory databases are
    refused (the queue is shared by worker threads and must survive the process).
    """
    text_url = str(url)
    if "://" not in text_url:
        text_url = f"sqlite:///{Path(text_url).resolve()}"
    try:
        parsed = make_url(text_url)
    except Exception as exc:
        raise MigrationError(f"database_url {redact_url(text_url)!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == POSTGRESQL:
        return _make_pg_engine(parsed)
    if backend != SQLITE:
        raise MigrationError(
            f"database_url {redact_url(text_url)!r}: use sqlite:////path/to/file.db or "
            "postgresql+psycopg://user@host/database"
        )
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


def _make_pg_engine(parsed: Any) -> Engine:
    try:
        import psycopg  # noqa: F401  (the optional extra: say so plainly when it is missing)
    except ImportError as exc:
        raise MigrationError(
            "database_url names PostgreSQL but psycopg is not installed: "
            "pip install 'sms-appliance[postgresql]' (see README, Several appliances)"
        ) from exc
    if parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(
        parsed,
        connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S, "application_name": "sms-appliance"},
        pool_size=16,
        max_overflow=16,
        pool_recycle=3600,
    )

    return engine


# ---------------------------------------------------------------------- rows and results


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[tuple[Any, ...]]:
    index = {name: i for i, name in enumerate(names)}
    get = tuple.__getitem__

    class Row(tuple):  # type: ignore[type-arg]
        """A PostgreSQL row read like :class:`sqlite3.Row`: by name or by position."""

        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            return get(self, index[key]) if isinstance(key, str) else get(self, key)

        def keys(self) -> tuple[str, ...]:
            return names

    return Row


def _pg_row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    cls = _row_class(tuple(col.name for col in description))
    return cls


_INDEXED_BY = re.compile(r"\s+(?:INDEXED BY \w+|NOT INDEXED)\b")


@functools.lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """``sql`` as written for SQLite, in psycopg's form: ``%s`` placeholders, literal
    ``%`` doubled, SQLite's ``INDEXED BY`` / ``NOT INDEXED`` planner hints dropped."""
    return _INDEXED_BY.sub("", sql).replace("%", "%%").replace("?", "%s")


class Result:
    """The rows of one statement (a thin, fast stand-in for SQLAlchemy's ``Result``)."""

    __slots__ = ("_cursor", "_pipeline")

    def __init__(self, cursor: Any, pipeline: Any = None) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        if self._pipeline is not None and self._cursor.rowcount < 0:
            self._pipeline.sync()  # pipelined: the count arrives with the results
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
    """One open transaction on a driver connection (``sqlite3`` or ``psycopg``).

    The data layer's hot paths bypass the ORM: a claim or a part transition is a handful
    of statements, run many times a second. ``dialect`` is ``sqlite`` or ``postgresql``
    for the few statements that differ.
    """

    __slots__ = ("_conn", "_pipeline", "dialect")

    def __init__(self, conn: Any, dialect_name: str, pipeline: Any = None) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self.dialect = dialect_name

    @property
    def postgres(self) -> bool:
        return self.dialect == POSTGRESQL

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | list[Sequence[Any]] = ()) -> Result:
        """Run ``sql``; a list of parameter tuples runs it once per tuple (executemany)."""
        try:
            if self.dialect == SQLITE:
                if isinstance(params, list):
                    return Result(self._conn.executemany(sql, params))
                return Result(self._conn.execute(sql, params))
            cur = self._conn.cursor(row_factory=_pg_row_factory)
            if isinstance(params, list):
                if params:
                    cur.executemany(pg_sql(sql), [_pg_params(p) for p in params])
            else:
                cur.execute(pg_sql(sql), _pg_params(params), prepare=None)
            return Result(cur, self._pipeline)
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailable(SQLITE, str(exc)) from exc
        except Exception as exc:
            raise _pg_error(exc) from exc

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """Insert many rows at once: ``executemany`` on SQLite, ``COPY`` on PostgreSQL
        (100,000 rows in well under a second either way)."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect == SQLITE:
            marks = ", ".join("?" * len(columns))
            self.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        try:
            with self._conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                # COPY's text format written here: psycopg's per-value dumpers cost ~70 µs a
                # row in pure Python (no C extension on 32-bit Pi OS), this ~5 µs.
                for start in range(0, len(rows), 5000):
                    copy.write("".join(
                        "\t".join(map(_copy_field, row)) + "\n" for row in rows[start:start + 5000]
                    ).encode())
        except Exception as exc:
            raise _pg_error(exc) from exc

    def reserve_ids(self, table: str, n: int) -> int:
        """The first of ``n`` consecutive new ids of ``table`` (its integer ``id`` column),
        reserved for rows this transaction inserts with explicit ids."""
        if self.dialect == SQLITE:  # the write lock is held: nobody else inserts meanwhile
            return int(self.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar_one()) + 1
        self.lock(f"ids:{table}")
        first = int(self.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
        ).scalar_one())
        if n > 1:
            self.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), ?)", (first + n - 1,))
        return first

    def lock(self, key: str) -> None:
        """Hold a lock named ``key`` until this transaction ends (PostgreSQL: an advisory
        lock, so two nodes never act on the same number or key at once). On SQLite every
        write transaction already excludes the others: nothing to do."""
        if self.dialect == POSTGRESQL:
            self.exec_driver_sql("SELECT pg_advisory_xact_lock(?)", (_lock_id(key),))

    def now(self) -> float:
        """The database's clock in UNIX seconds (one clock for every node sharing it)."""
        if self.dialect == POSTGRESQL:
            return float(self.exec_driver_sql("SELECT extract(epoch FROM clock_timestamp())").scalar_one())
        return time.time()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _lock_id(key: str) -> int:
    # A stable signed 64-bit id: CRC-32 of the key in the high half, of its reverse below.
    high, low = zlib.crc32(key.encode()), zlib.crc32(key[::-1].encode())
    value = (high << 32) | low
    return value - (1 << 64) if value >= 1 << 63 else value


def _pg_params(params: Sequence[Any]) -> Sequence[Any]:
    # Flags are SMALLINT columns on PostgreSQL (0/1 as on SQLite): send a bool as a number.
    if any(p is True or p is False for p in params):
        return tuple(int(p) if p is True or p is False else p for p in params)
    return params


def _pg_error(exc: Exception) -> Exception:
    """A psycopg error as the data layer's typed error (others unchanged)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - only PostgreSQL raises psycopg errors
        return exc
    if isinstance(exc, psycopg.errors.IntegrityError):
        diag = getattr(exc, "diag", None)
        return ConstraintViolation(str(exc).splitlines()[0] if str(exc) else "constraint violated",
                                   constraint=getattr(diag, "constraint_name", None))
    if isinstance(exc, (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                        psycopg.errors.DeadlockDetected, psycopg.errors.AdminShutdown)):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DatabaseUnavailable(POSTGRESQL, first)
    return exc


# ---------------------------------------------------------------------- transactions

_write_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def _write_lock(engine: Engine) -> threading.Lock:
    with _write_locks_guard:
        lock = _write_locks.get(engine)
        if lock is None:
            lock = _write_locks[engine] = threading.Lock()
        return lock


def _checkout(engine: Engine) -> Any:
    try:
        return engine.raw_connection()
    except Exception as exc:
        mapped = _pg_error(exc)
        if isinstance(mapped, DatabaseUnavailable):
            raise mapped from exc
        if isinstance(exc, sqlite3.OperationalError):
            raise DatabaseUnavailable(SQLITE, str(exc)) from exc
        cause = getattr(exc, "orig", None)
        if cause is not None and isinstance(_pg_error(cause), DatabaseUnavailable):
            raise _pg_error(cause) from exc
        raise


@contextmanager
def _sqlite_tx(engine: Engine, begin: str, *, synchronous: str | None = None) -> Iterator[Tx]:
    pooled = _checkout(engine)
    try:
        conn: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        conn.row_factory = sqlite3.Row
        try:
            if synchronous is not None:
                conn.execute(f"PRAGMA synchronous={synchronous}")
            try:
                conn.execute(begin)
                try:
                    yield Tx(conn, SQLITE)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if synchronous is not None:
                    conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailable(SQLITE, str(exc)) from exc
    finally:
        pooled.close()


@contextmanager
def _pg_tx(engine: Engine, first: str | None, *, pipeline: bool = False) -> Iterator[Tx]:
    pooled = _checkout(engine)
    broken = False
    try:
        conn = pooled.driver_connection
        try:
            with conn.pipeline() if pipeline else contextlib.nullcontext() as pipe:
                if first is not None:
                    conn.execute(first)
                try:
                    yield Tx(conn, POSTGRESQL, pipe)
                except BaseException:
                    try:
                        conn.rollback()
                    except Exception:
                        broken = True
                    raise
                conn.commit()
        except Exception as exc:
            # Pipelined statements report their errors late (at a sync or the commit):
            # every driver error is mapped here too.
            mapped = _pg_error(exc)
            if isinstance(mapped, DatabaseUnavailable) or isinstance(exc, DatabaseUnavailable):
                broken = True
            if mapped is not exc:
                raise mapped from exc
            raise
    finally:
        raw = pooled.driver_connection
        if getattr(raw, "broken", False) or getattr(raw, "closed", False):
            # The server went away (a restart, a failover): every pooled connection is as
            # dead as this one. Start a new pool rather than fail once per old connection.
            pooled.invalidate()
            engine.dispose(close=False)
        elif broken:
            pooled.invalidate()
        pooled.close()


# Steps the next write transaction of this context runs just before it commits (the audit
# trail's lines: docs/architecture.md, "Audit trail and approval"), each with the engine it
# is for (None: whichever writes next).
_before_commit: ContextVar[list[tuple[Engine | None, Callable[[Tx], None]]] | None] = ContextVar(
    "before_commit", default=None)


def before_next_commit(step: Callable[[Tx], None], *, engine: Engine | None = None) -> None:
    """Run ``step(tx)`` once, inside the next :func:`write_tx` of this context (thread or
    request) on ``engine`` (any engine if None), just before it commits: the step's writes
    commit or roll back with it. A transaction that fails drops its steps."""
    pending = _before_commit.get()
    if pending is None:
        pending = []
        _before_commit.set(pending)
    pending.append((engine, step))


@contextmanager
def commit_steps_scope() -> Iterator[None]:
    """Steps queued inside are this scope's (an HTTP request's): steps left over when it
    ends (a request refused before its write) are dropped, never run by a later write."""
    token = _before_commit.set([])
    try:
        yield
    finally:
        _before_commit.reset(token)


def _take_before_commit(engine: Engine) -> list[Callable[[Tx], None]]:
    """The steps for ``engine``, no longer pending."""
    pending = _before_commit.get()
    if not pending:
        return []
    mine = [step for on, step in pending if on is None or on is engine]
    pending[:] = [(on, step) for on, step in pending if not (on is None or on is engine)]
    return mine


@contextmanager
def _steps_before_commit(tx: Tx, engine: Engine) -> Iterator[None]:
    try:
        yield
    except BaseException:
        _take_before_commit(engine)  # the steps were for the change that failed
        raise
    for step in _take_before_commit(engine):
        step(tx)


@contextmanager
def write_tx(engine: Engine, *, durable: bool = True, pipeline: bool = False) -> Iterator[Tx]:
    """A short write transaction, committed on success.

    SQLite: ``BEGIN IMMEDIATE`` behind a per-process lock. ``durable=False`` commits
    without the fsync (``synchronous=NORMAL`` for this one transaction; PostgreSQL:
    ``synchronous_commit=off``). Only for writes whose loss in a power cut is harmless —
    a claim, which recovery would undo anyway. The log is append-only, so the next
    durable commit syncs these too: a later state can never survive without an earlier one.

    ``pipeline=True`` (PostgreSQL) sends statements without waiting for each answer until a
    result is read (psycopg's pipeline mode): the dispatcher's transitions are a dozen short
    statements, most of them writes nobody reads back. Not with :meth:`Tx.insert_rows` (COPY).
    """
    if engine.dialect.name == POSTGRESQL:
        with _pg_tx(engine, None if durable else "SET LOCAL synchronous_commit TO OFF", pipeline=pipeline) as tx:
            with _steps_before_commit(tx, engine):
                yield tx
        return
    with _write_lock(engine):
        with _sqlite_tx(engine, "BEGIN IMMEDIATE", synchronous=None if durable else "NORMAL") as tx:
            with _steps_before_commit(tx, engine):
                yield tx


@contextmanager
def read_tx(engine: Engine) -> Iterator[Tx]:
    """A read transaction (one consistent snapshot)."""
    if engine.dialect.name == POSTGRESQL:
        with _pg_tx(engine, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY") as tx:
            yield tx
        return
    with _sqlite_tx(engine, "BEGIN") as tx:
        yield tx
