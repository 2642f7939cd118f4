"""Moving an appliance to PostgreSQL, and a report on any appliance database.

:func:`copy_database` copies a stopped appliance's SQLite database into an empty
PostgreSQL database: it migrates the target to the newest schema, copies every table of
:data:`appliance.db.schema.metadata` (parents before children, ids kept) in batches and
in one target transaction, checks each table's row count and a checksum of its keys
against the source, moves each serial sequence past the copied ids and only then commits.
Any failure rolls the whole copy back: the target is left empty, ready for another try.

Whether the source's daemon is running is decided by two signals:

- the daemon's lock (``<db>.lock``, an ``flock`` that ``appliance serve`` holds while it
  runs; see :class:`appliance.maintenance.DatabaseLock`). The copy takes that lock itself
  for its whole duration, so a daemon cannot start half-way through either. The kernel
  drops an ``flock`` when its holder dies, so a crashed daemon never blocks the copy;
- a node in the source's ``nodes`` table that is not marked stopped and whose heartbeat is
  younger than :data:`HEARTBEAT_WINDOW_S` (or its lease, if longer): a daemon running as a
  user whose lock this process cannot see, or one that died moments ago.

The SQLite ``-wal`` file is no such signal: a daemon that crashed leaves it full, and one
that runs idle may have just checkpointed it empty. ``force=True`` copies anyway (from one
consistent read snapshot, but whatever the daemon writes afterwards is not copied).

:func:`check_database` reports the engine, server version, schema revision, row counts
and nodes of a database without changing it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from appliance.db import nodes as nodes_db
from appliance.db.engine import POSTGRESQL, SQLITE, Tx, make_engine, read_tx, redact_url, write_tx
from appliance.db.errors import DatabaseUnavailable, QueueError
from appliance.db.migrate import migrate, shipped_head
from appliance.db.schema import metadata
from appliance.text import first_line

__all__ = [
    "BATCH_ROWS",
    "HEARTBEAT_WINDOW_S",
    "CheckReport",
    "CopyError",
    "CopyFailed",
    "CopyMismatch",
    "CopyReport",
    "DatabaseMissing",
    "KeySum",
    "NodeState",
    "SourceInUse",
    "SourceRevisionMismatch",
    "TableCopy",
    "TargetNotEmpty",
    "WrongEngine",
    "check_database",
    "copy_database",
    "copy_tables",
    "first_nonempty_table",
    "key_sum",
    "live_nodes",
    "move_sequence",
    "node_states",
    "read_batches",
    "server_version",
    "source_in_use",
    "stored_revision",
    "table_names",
    "url_engine",
]

HEARTBEAT_WINDOW_S = 120.0
BATCH_ROWS = 5000

Progress = Callable[[str, int, int], None]
"""``progress(table, rows copied so far, rows in the table)``, called after each batch."""


# ---------------------------------------------------------------------- errors


class CopyError(QueueError):
    """The copy or the check cannot be done (the message says why and what to do)."""


class DatabaseMissing(CopyError):
    """The SQLite file named by the URL does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: no such database file (check database_url or --from)")
        self.path = path


class WrongEngine(CopyError):
    """The source is not SQLite, or the target is not PostgreSQL."""

    def __init__(self, role: str, url: str, wanted: str) -> None:
        hint = ("; to move between PostgreSQL servers use pg_dump and pg_restore"
                if role == "source" else "; e.g. postgresql+psycopg://appliance@db-host/appliance")
        super().__init__(f"the {role} {redact_url(url)} must be a {wanted} database{hint}")
        self.role = role
        self.url = redact_url(url)
        self.wanted = wanted


class TargetNotEmpty(CopyError):
    """The target already holds rows (in ``table``, the first non-empty one found)."""

    def __init__(self, url: str, table: str) -> None:
        super().__init__(
            f"the target {redact_url(url)} is not empty (table {table} has rows); "
            "copy into a new, empty database (createdb) so that nothing is overwritten"
        )
        self.url = redact_url(url)
        self.table = table


class SourceRevisionMismatch(CopyError):
    """The source's schema revision is not the one this code ships as newest."""

    def __init__(self, revision: str | None, head: str | None) -> None:
        if revision is None:
            why = "holds no appliance schema (is it an appliance database?)"
        else:
            why = (f"is at schema revision {revision}, not the newest ({head}); start the daemon of this "
                   "version once (it migrates the database), stop it, then copy again "
                   "('appliance version --config ...' shows both revisions)")
        super().__init__(f"the source database {why}")
        self.revision = revision
        self.head = head


class SourceInUse(CopyError):
    """The source's daemon looks alive (``reason`` says which signal said so)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"{reason}; stop it first (e.g. 'systemctl stop appliance') so that nothing it writes "
            "during the copy is lost, or pass --force to copy a snapshot anyway"
        )
        self.reason = reason


class CopyMismatch(CopyError):
    """What arrived in ``table`` differs from the source; the copy was rolled back."""

    def __init__(self, table: str, source: KeySum, target: KeySum) -> None:
        super().__init__(
            f"table {table}: the copy does not match the source ({source.describe()} in the source, "
            f"{target.describe()} in the target); nothing was committed"
        )
        self.table = table
        self.source = source
        self.target = target


class CopyFailed(CopyError):
    """A table could not be written to the target (``reason``: the server's first line)."""

    def __init__(self, table: str, reason: str) -> None:
        super().__init__(f"copying table {table} failed: {reason}; nothing was committed")
        self.table = table
        self.reason = reason


# ---------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class KeySum:
    """A table's row count and a checksum of its primary keys: ``total``, ``low``, ``high``
    are the sum, min and max of an integer id; for other keys ``total`` is a digest of the
    key values (order-independent) and ``low``/``high`` are None."""

    rows: int
    total: int
    low: int | None
    high: int | None

    def describe(self) -> str:
        if self.low is None and self.high is None:
            return f"{self.rows} row(s), key digest {self.total:x}"
        return f"{self.rows} row(s), ids {self.low}..{self.high} summing to {self.total}"


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One copied table: its rows and the checksum both sides agreed on."""

    table: str
    rows: int
    keys: KeySum


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What :func:`copy_database` copied (URLs without passwords)."""

    source: str
    target: str
    revision: str
    tables: tuple[TableCopy, ...]
    seconds: float
    forced: str | None = None  # the in-use signal --force overrode, if any

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True, slots=True)
class NodeState:
    """An appliance seen in the ``nodes`` table: ``state`` is ``alive`` (heartbeat within its
    lease), ``silent`` (not stopped, heartbeat older than its lease) or ``stopped``."""

    name: str
    host: str
    pid: int
    version: str
    heartbeat_age_s: float
    lease_s: float
    stopped: bool
    state: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :func:`check_database` found (``url`` without its password)."""

    url: str
    engine: str
    server_version: str
    revision: str | None
    head: str | None
    tables: dict[str, int]
    missing_tables: tuple[str, ...] = ()
    nodes: tuple[NodeState, ...] = field(default=())

    @property
    def up_to_date(self) -> bool:
        return self.revision is not None and self.revision == self.head

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "engine": self.engine, "server_version": self.server_version,
            "revision": self.revision, "head": self.head, "up_to_date": self.up_to_date,
            "tables": dict(self.tables), "missing_tables": list(self.missing_tables),
            "nodes": [
                {"name": n.name, "host": n.host, "pid": n.pid, "version": n.version,
                 "heartbeat_age_s": round(n.heartbeat_age_s, 1), "lease_s": n.lease_s, "state": n.state}
                for n in self.nodes
            ],
        }


# ---------------------------------------------------------------------- statements


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def _integer_id(table: sa.Table) -> str | None:
    """The table's single integer primary key column (None: text or composite key)."""
    cols = list(table.primary_key.columns)
    if len(cols) == 1 and isinstance(cols[0].type, sa.Integer):
        return cols[0].name
    return None


def table_names(tx: Tx) -> list[str]:
    """The tables that exist in the database (its current schema on PostgreSQL), sorted."""
    if tx.postgres:
        sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"
    return sorted(r["name"] for r in tx.exec_driver_sql(sql))


def stored_revision(tx: Tx) -> str | None:
    """The schema revision in ``alembic_version`` (None: no appliance schema)."""
    if "alembic_version" not in table_names(tx):
        return None
    rows = tx.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return str(rows[0]["version_num"]) if len(rows) == 1 else None


def server_version(tx: Tx) -> str:
    """SQLite's library version, or the PostgreSQL server's version."""
    if tx.postgres:
        return str(tx.exec_driver_sql("SELECT current_setting('server_version') AS v").first()["v"])
    return str(tx.exec_driver_sql("SELECT sqlite_version() AS v").first()["v"])


def first_nonempty_table(tx: Tx, tables: Sequence[str]) -> str | None:
    """The first of ``tables`` holding a row (None: all empty)."""
    for name in tables:
        if tx.exec_driver_sql(f"SELECT 1 AS one FROM {_quote(name)} LIMIT 1").first() is not None:
            return name
    return None


def key_sum(tx: Tx, table: sa.Table) -> KeySum:
    """Row count and key checksum of ``table`` (see :class:`KeySum`)."""
    name = _quote(table.name)
    id_col = _integer_id(table)
    if id_col is not None:
        row = tx.exec_driver_sql(
            f"SELECT COUNT(*) AS n, COALESCE(SUM({_quote(id_col)}), 0) AS total, "
            f"MIN({_quote(id_col)}) AS low, MAX({_quote(id_col)}) AS high FROM {name}"
        ).first()
        low, high = row["low"], row["high"]
        return KeySum(int(row["n"]), int(row["total"]), None if low is None else int(low),
                      None if high is None else int(high))
    keys = _key_columns(table)
    # Text keys sort differently on the two engines (binary vs the server's collation):
    # an order-independent sum of per-key hashes compares them instead of MIN/MAX.
    digest = 0
    rows = 0
    for row in tx.exec_driver_sql(f"SELECT {', '.join(_quote(k) for k in keys)} FROM {name}"):
        value = repr(tuple(row[k] for k in keys)).encode()
        digest = (digest + int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big")) % (1 << 63)
        rows += 1
    return KeySum(rows, digest, None, None)


def read_batches(tx: Tx, table: sa.Table, *, batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of ``table`` as value tuples in the order of ``table.columns``, in batches
    ordered by primary key (keyset pagination: each batch costs an index seek)."""
    columns = [c.name for c in table.columns]
    keys = _key_columns(table)
    select = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(table.name)}"
    order = f" ORDER BY {', '.join(_quote(k) for k in keys)} LIMIT ?"
    after = f" WHERE ({', '.join(_quote(k) for k in keys)}) > ({', '.join('?' * len(keys))})"
    last: tuple[Any, ...] | None = None
    while True:
        if last is None:
            rows = tx.exec_driver_sql(select + order, (batch_rows,)).all()
        else:
            rows = tx.exec_driver_sql(select + after + order, (*last, batch_rows)).all()
        if not rows:
            return
        # The SELECT names the columns in this order: the tuple is the row, column by column.
        yield [tuple(r[c] for c in columns) for r in rows]
        if len(rows) < batch_rows:
            return
        last = tuple(rows[-1][k] for k in keys)


def move_sequence(tx: Tx, table: sa.Table) -> int | None:
    """PostgreSQL: move ``table``'s serial sequence past its highest id, so the next insert
    gets ``max(id) + 1``; returns that max (None: no integer id, no sequence or no row)."""
    id_col = _integer_id(table)
    if not tx.postgres or id_col is None:
        return None
    high = tx.exec_driver_sql(f"SELECT MAX({_quote(id_col)}) AS high FROM {_quote(table.name)}").first()["high"]
    if high is None:
        return None
    moved = tx.exec_driver_sql(
        "SELECT setval(pg_get_serial_sequence(?, ?), ?) AS v", (table.name, id_col, int(high))
    ).first()["v"]
    return None if moved is None else int(high)


def node_states(tx: Tx) -> list[NodeState]:
    """Every node of the ``nodes`` table (none before schema 0007), by name."""
    if "nodes" not in table_names(tx):
        return []
    return [
        NodeState(n.name, n.host, n.pid, n.version, n.silent_s, n.lease_s, n.state == "stopped", n.state)
        for n in nodes_db.list_nodes(tx)
    ]


def live_nodes(tx: Tx, *, window_s: float = HEARTBEAT_WINDOW_S) -> list[NodeState]:
    """Nodes not marked stopped whose heartbeat is younger than ``window_s`` (or their
    lease, if longer): daemons that may still be writing."""
    return [n for n in node_states(tx) if not n.stopped and n.heartbeat_age_s <= max(window_s, n.lease_s)]


def copy_tables(source: Tx, target: Tx, tables: Sequence[sa.Table], *, batch_rows: int = BATCH_ROWS,
                progress: Progress | None = None) -> list[TableCopy]:
    """Copy ``tables`` (parents first) from ``source`` into the empty ``target`` and verify
    each one's rows and key checksum; raises :class:`CopyMismatch` or :class:`CopyFailed`
    (the caller's target transaction then rolls back)."""
    copied: list[TableCopy] = []
    for table in tables:
        expected = key_sum(source, table)
        columns = [_quote(c.name) for c in table.columns]
        done = 0
        if progress is not None:
            progress(table.name, 0, expected.rows)
        for batch in read_batches(source, table, batch_rows=batch_rows):
            try:
                target.insert_rows(_quote(table.name), columns, batch)
            except DatabaseUnavailable:
                raise
            except Exception as exc:  # the server refused a row (a type, a NUL in a text, a key...)
                raise CopyFailed(table.name, first_line(exc)) from exc
            done += len(batch)
            if progress is not None:
                progress(table.name, done, expected.rows)
        got = key_sum(target, table)
        if got != expected:
            raise CopyMismatch(table.name, expected, got)
        copied.append(TableCopy(table.name, got.rows, got))
    return copied


# ---------------------------------------------------------------------- copy and check


def url_engine(url: str) -> str:
    """``sqlite``, ``postgresql`` or another backend name for ``url`` (a plain path is a
    SQLite file), without connecting; :class:`CopyError` when it does not parse."""
    _check_url("database", url)
    return make_url(url).get_backend_name() if "://" in url else SQLITE


def _sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL or plain path (None: not SQLite)."""
    from appliance.maintenance import MaintenanceError, database_path

    if "://" in url and make_url(url).get_backend_name() != SQLITE:
        return None
    try:
        return database_path(url)
    except MaintenanceError:
        return None


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def _check_url(role: str, url: str) -> None:
    """Refuse, without echoing a password, a URL that does not parse."""
    if "://" not in url:
        return  # a plain path: a SQLite file
    try:
        make_url(url)
    except Exception:
        masked = _PASSWORD.sub(r"\g<1>***@", url)
        raise CopyError(
            f"the {role} {masked!r} is not a database URL; write e.g. "
            "postgresql+psycopg://user:password@host:5432/database or sqlite:////path/to/appliance.db"
        ) from None


def _driver_errors() -> tuple[type[BaseException], ...]:
    """Errors of the drivers and of SQLAlchemy that end a copy or check as one line."""
    errors: list[type[BaseException]] = [sqlite3.Error, sa.exc.SQLAlchemyError]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(errors)


def _open(url: str) -> Engine:
    """An engine for an existing database (a missing SQLite file is not created)."""
    _check_url("database", url)
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(path)
    return make_engine(url)


class _SourceLock:
    """The source daemon's lock, held for the copy (see the module doc)."""

    def __init__(self, database: Path) -> None:
        from appliance.maintenance import DatabaseLock

        self.lock = DatabaseLock(database)
        self.held = False

    def take(self) -> str | None:
        """Take the lock; the reason it is not possible (the daemon holds it), or None."""
        from appliance.maintenance import DatabaseBusy, MaintenanceError

        try:
            self.lock.acquire()
        except (DatabaseBusy, MaintenanceError) as exc:
            # Busy, or the lock file belongs to another user: ask who holds it.
            try:
                holder = self.lock.holder()
            except MaintenanceError:
                return str(exc)
            if holder is None:
                return None
            who = f"process {holder}" if holder > 0 else "another process"
            return f"{self.lock.database} is in use by {who} (the appliance daemon?)"
        self.held = True
        return None

    def release(self) -> None:
        if self.held:
            self.lock.release()
            self.held = False


def _heartbeat_reason(tx: Tx) -> str | None:
    alive = live_nodes(tx)
    if not alive:
        return None
    n = alive[0]
    return (f"node {n.name} on {n.host} (pid {n.pid}) sent a heartbeat {n.heartbeat_age_s:.0f} s ago "
            "and is not marked stopped")


def source_in_use(source_url: str) -> str | None:
    """Why the SQLite database ``source_url``'s daemon looks alive (its lock is held, or a
    node's recent heartbeat), or None. :func:`copy_database` checks this again itself."""
    from appliance.maintenance import DatabaseLock, MaintenanceError

    database = _sqlite_file(source_url)
    if database is None or not database.is_file():
        return None
    lock = DatabaseLock(database)
    try:
        holder = lock.holder()
    except MaintenanceError as exc:
        return str(exc)
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        return f"{database} is in use by {who} (the appliance daemon?)"
    engine = make_engine(source_url)
    try:
        with read_tx(engine) as tx:
            return _heartbeat_reason(tx)
    finally:
        engine.dispose()


def copy_database(source_url: str, target_url: str, *, force: bool = False, progress: Progress | None = None,
                  batch_rows: int = BATCH_ROWS) -> CopyReport:
    """Copy the stopped appliance database ``source_url`` (SQLite) into the empty
    PostgreSQL database ``target_url``, which is migrated to the newest schema first.

    Refuses (:class:`CopyError` subclasses, nothing written to the target's tables) a
    source that is not SQLite or whose daemon runs (unless ``force``), a source not at the
    newest revision, and a target that is not PostgreSQL or not empty. The copy is one
    target transaction, verified table by table before it commits; the source is read in
    one read transaction. An unreachable server raises :class:`DatabaseUnavailable`.
    """
    started = time.monotonic()
    _check_url("source", source_url)
    _check_url("target", target_url)
    database = _sqlite_file(source_url)
    if database is None:
        raise WrongEngine("source", source_url, "SQLite")
    if not database.is_file():
        raise DatabaseMissing(database)
    target = make_engine(target_url)
    if target.dialect.name != POSTGRESQL:
        target.dispose()
        raise WrongEngine("target", target_url, "PostgreSQL")
    lock = _SourceLock(database)
    source: Engine | None = None
    try:
        # The target first: an unreachable server or a full database fails before anything else.
        with read_tx(target) as ttx:
            occupied = first_nonempty_table(ttx, [t for t in table_names(ttx) if t != "alembic_version"])
        if occupied is not None:
            raise TargetNotEmpty(target_url, occupied)
        in_use = lock.take()
        if in_use is not None and not force:
            raise SourceInUse(in_use)
        source = make_engine(source_url)
        head = shipped_head()
        tables = list(metadata.sorted_tables)
        with read_tx(source) as stx:
            revision = stored_revision(stx)
            if revision is None or revision != head:
                raise SourceRevisionMismatch(revision, head)
            if in_use is None:
                in_use = _heartbeat_reason(stx)
                if in_use is not None and not force:
                    raise SourceInUse(in_use)
            migrate(target)
            with write_tx(target) as ttx:
                occupied = first_nonempty_table(ttx, [t.name for t in tables])
                if occupied is not None:  # someone wrote between the check above and now
                    raise TargetNotEmpty(target_url, occupied)
                copied = copy_tables(stx, ttx, tables, batch_rows=batch_rows, progress=progress)
                for table in tables:
                    move_sequence(ttx, table)
        return CopyReport(redact_url(source_url), redact_url(target_url), revision, tuple(copied),
                          time.monotonic() - started, in_use)
    except QueueError:
        raise
    except _driver_errors() as exc:  # e.g. a source file that is not a SQLite database
        raise CopyError(f"copying {redact_url(source_url)} to {redact_url(target_url)} failed: "
                        f"{first_line(exc)}; nothing was committed") from exc
    finally:
        lock.release()
        if source is not None:
            source.dispose()
        target.dispose()


def check_database(url: str) -> CheckReport:
    """Engine, server version, schema revision (and this code's newest), row counts of every
    table of the schema and the nodes of the database at ``url``. Changes nothing; a
    missing SQLite file raises :class:`DatabaseMissing`, an unreachable server
    :class:`DatabaseUnavailable`."""
    engine = _open(url)
    try:
        with read_tx(engine) as tx:
            present = set(table_names(tx))
            counts: dict[str, int] = {}
            missing: list[str] = []
            for table in metadata.sorted_tables:
                if table.name not in present:
                    missing.append(table.name)
                    continue
                counts[table.name] = int(tx.exec_driver_sql(
                    f"SELECT COUNT(*) AS n FROM {_quote(table.name)}"
                ).first()["n"])
            return CheckReport(
                url=redact_url(url), engine=tx.dialect, server_version=server_version(tx),
                revision=stored_revision(tx), head=shipped_head(), tables=counts,
                missing_tables=tuple(missing), nodes=tuple(node_states(tx)),
            )
    except QueueError:
        raise
    except _driver_errors() as exc:  # e.g. a file that is not a SQLite database at all
        raise CopyError(f"cannot read {redact_url(url)}: {first_line(exc)}") from exc
    finally:
        engine.dispose()
