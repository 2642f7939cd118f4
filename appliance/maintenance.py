"""The database file: online backups, restores, integrity checks, the daemon's lock.

The SQL these checks run (``PRAGMA integrity_check``, the schema revision) is in
:mod:`appliance.db.stats`, which also answers them for an open PostgreSQL database.

- :func:`backup` copies the live database with SQLite's online backup API in one step: it
  reads one consistent snapshot (WAL mode lets the daemon keep writing meanwhile), writes
  it to a temporary file, checks it with ``PRAGMA integrity_check``, syncs and renames it.
- :func:`restore` replaces the database by a backup while the daemon is stopped; the
  replaced file is kept as ``<db>.before-restore-<timestamp>``.
- :func:`backup_before_migration` is what start-up runs before upgrading the schema
  (``<db>.pre-<revision>-<timestamp>.bak``, the newest few kept).
- :class:`DatabaseLock` is an ``flock`` on ``<db>.lock`` (holding the daemon's PID) that
  ``serve`` holds while it runs; restore takes it too, so neither runs under the other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from appliance.db import manifest as manifest_db
from appliance.db import stats as stats_db
from appliance.db.engine import SQLITE, Tx, redact_url
from appliance.db.errors import DatabaseUnavailable
from appliance.errors import ApplianceError

__all__ = [
    "BackupResult",
    "DatabaseBusy",
    "DatabaseLock",
    "MaintenanceError",
    "RestoreResult",
    "backup",
    "backup_before_migration",
    "backup_manifest",
    "check_restorable",
    "database_path",
    "integrity_problems",
    "known_revisions",
    "migration_backups",
    "recent_backups",
    "restore",
    "retention_note",
    "revision_of",
]

_log = logging.getLogger(__name__)


class MaintenanceError(ApplianceError):
    """A backup, restore or check of the database file cannot be done (the message says why)."""


class DatabaseBusy(MaintenanceError):
    """Another process (the daemon, a restore) holds the database's lock."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    revision: str | None
    messages: int
    manifest: dict[str, Any] = field(default_factory=dict)  # e.g. {"retention": {...}} in force when taken


@dataclass(frozen=True, slots=True)
class RestoreResult:
    database: Path
    revision: str
    previous: Path | None  # the replaced database, kept
    manifest: dict[str, Any] = field(default_factory=dict)  # the backup's (what was in force when taken)


def database_path(url: str | os.PathLike[str]) -> Path:
    """The file behind a ``sqlite:///`` URL (or a plain path), absolute."""
    text = str(url)
    if "://" not in text:
        return Path(text).expanduser().resolve()
    parsed = make_url(text)
    if parsed.get_backend_name() == "postgresql":
        raise MaintenanceError(
            f"database_url {redact_url(text)!r} is a PostgreSQL database: back it up with pg_dump "
            "(hardware.md, Backups); appliance backup and restore handle a SQLite file"
        )
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise MaintenanceError(f"database_url {redact_url(text)!r} is not a SQLite file")
    return Path(parsed.database).expanduser().resolve()


def _stamp() -> str:
    """UTC time to the millisecond: sortable, and distinct for copies made in a row."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise MaintenanceError(f"{path}: no such database file")
    # Read-only but not immutable: a live daemon's WAL is read (and its locks respected).
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10, isolation_level=None)


def _tx(conn: sqlite3.Connection) -> Tx:
    """An open file's connection, for the queries of :mod:`appliance.db.stats`."""
    conn.row_factory = sqlite3.Row
    return Tx(conn, SQLITE)


def integrity_problems(path: Path, *, quick: bool = False) -> list[str]:
    """``PRAGMA integrity_check`` (or the faster ``quick_check``) of a database file: the
    problems found, ``[]`` when it is sound. A file that is not SQLite at all is a problem."""
    try:
        conn = _open_readonly(path)
    except sqlite3.Error as exc:
        return [f"cannot open it: {exc}"]
    try:
        return list(stats_db.check_integrity(_tx(conn), quick=quick).problems)
    except DatabaseUnavailable as exc:
        return [exc.reason]
    except sqlite3.Error as exc:
        return [str(exc)]
    finally:
        conn.close()


def revision_of(path: Path) -> str | None:
    """The schema revision stored in a database file (``None``: no appliance schema yet)."""
    try:
        conn = _open_readonly(path)
    except sqlite3.Error as exc:
        raise MaintenanceError(f"{path}: cannot open the database: {exc}") from None
    try:
        return stats_db.schema_revision(_tx(conn))
    except DatabaseUnavailable as exc:
        raise MaintenanceError(f"{path}: cannot read the schema revision: {exc.reason}") from None
    except sqlite3.DatabaseError as exc:
        raise MaintenanceError(f"{path}: not a SQLite database: {exc}") from None
    finally:
        conn.close()


def known_revisions() -> list[str]:
    """Every schema revision this code ships, oldest first (the last one is the head)."""
    from appliance.db.migrate import MIGRATIONS_DIR, shipped_revisions

    chain = shipped_revisions()
    if chain:  # read without alembic, which costs the daemon ~10 MB of memory
        return list(chain)
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path, *, manifest: dict[str, Any] | None = None,
          drop_manifest: bool = False) -> None:
    """A consistent copy of ``source`` at ``target`` (via a temporary file, synced), with
    ``manifest`` written into it, or (``drop_manifest``) the source's manifest left out."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = _open_readonly(source)
    try:
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            # pages=-1: the whole database in one step, from one read snapshot. Stepwise
            # copies restart whenever the daemon commits and might never finish.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            if manifest is not None or drop_manifest:
                tx = _tx(dst)
                dst.execute("BEGIN")
                if manifest is not None:
                    manifest_db.write_manifest(tx, manifest)
                else:
                    manifest_db.drop_manifest(tx)
                dst.execute("COMMIT")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise MaintenanceError(f"copying {source} to {target} failed: {exc}") from None
    finally:
        src.close()
    problems = integrity_problems(partial)
    if problems:
        partial.unlink(missing_ok=True)
        raise MaintenanceError(f"the copy of {source} failed its integrity check: {problems[0]}")
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)
    _fsync_dir(target.parent)


def _count_messages(path: Path) -> int:
    conn = _open_readonly(path)
    try:
        return stats_db.count_messages(_tx(conn))
    except (DatabaseUnavailable, sqlite3.Error):
        return 0
    finally:
        conn.close()


def backup_manifest(path: Path) -> dict[str, Any]:
    """What a backup notes about itself (``{}``: none, e.g. taken by an older version)."""
    conn = _open_readonly(path)
    try:
        return manifest_db.read_manifest(_tx(conn))
    except (DatabaseUnavailable, sqlite3.Error):
        return {}
    finally:
        conn.close()


def retention_note(manifest: dict[str, Any]) -> str:
    """The ``[retention]`` policy a backup was taken under, in words."""
    policy = manifest.get("retention")
    if not isinstance(policy, dict):
        return "retention policy: not noted (a backup by an older version)"
    state = "on" if policy.get("enabled", True) else "off (only 'appliance retention run')"
    return (f"retention policy: bodies kept {policy.get('body_days')} days, events and send log "
            f"{policy.get('log_days')} days, daily run {state}")


def backup(database: Path, dest: Path, *, manifest: dict[str, Any] | None = None) -> BackupResult:
    """Copy ``database`` to ``dest`` (a file, or a directory: then a timestamped name in it),
    checked with ``PRAGMA integrity_check``, with ``manifest`` (what was in force, e.g. the
    retention policy) written into the copy. Safe while the daemon runs and writes."""
    if not database.is_file():
        raise MaintenanceError(f"{database}: no database to back up (has the daemon ever run?)")
    if dest.is_dir():
        target = dest / f"{database.stem}-{_stamp()}{database.suffix or '.db'}"
    else:
        target = dest
        if not target.parent.is_dir():
            raise MaintenanceError(f"{target.parent}: no such directory for the backup")
    if target.resolve() == database:
        raise MaintenanceError("the backup must not overwrite the database itself")
    _copy(database, target, manifest=dict(manifest or {}))
    result = BackupResult(target.resolve(), target.stat().st_size, revision_of(target),
                          _count_messages(target), backup_manifest(target))
    _log.info("backed up %s to %s (%d bytes, revision %s)", database, result.path, result.size,
              result.revision)
    return result


def check_restorable(source: Path) -> str:
    """The revision of a backup that may be restored; raises saying why it may not."""
    problems = integrity_problems(source)
    if problems:
        raise MaintenanceError(f"{source} is damaged ({problems[0]}); pick another backup")
    revision = revision_of(source)
    if revision is None:
        raise MaintenanceError(f"{source} holds no appliance schema (is it an appliance backup?)")
    if revision not in known_revisions():
        raise MaintenanceError(
            f"{source} is at schema revision {revision}, newer than this version of the appliance "
            "knows; install the version that wrote it, or pick an older backup"
        )
    return revision


def restore(source: Path, database: Path) -> RestoreResult:
    """Replace ``database`` by the backup ``source`` (the daemon must be stopped).

    The backup is checked first (integrity, a schema revision this code knows; an older
    one is migrated at the next start). The replaced database is kept next to it as
    ``<db>.before-restore-<timestamp>``.
    """
    source = source.resolve()
    if source == database:
        raise MaintenanceError("the backup to restore is the database itself")
    revision = check_restorable(source)
    manifest = backup_manifest(source)
    database.parent.mkdir(parents=True, exist_ok=True)
    with DatabaseLock(database):
        previous: Path | None = None
        if database.exists():
            previous = database.with_name(f"{database.name}.before-restore-{_stamp()}")
            _copy(database, previous)  # through SQLite: includes what is still in the WAL
        incoming = database.with_name(f".{database.name}.restoring")
        _copy(source, incoming, drop_manifest=True)
        for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
            # A WAL left by the replaced database would be replayed into the restored one.
            leftover.unlink(missing_ok=True)
        os.replace(incoming, database)
        _fsync_dir(database.parent)
    _log.info("restored %s from %s (revision %s); previous database kept as %s",
              database, source, revision, previous)
    return RestoreResult(database, revision, previous, manifest)


def migration_backups(database: Path) -> list[Path]:
    """Backups taken before start-up migrations, oldest first."""
    found = database.parent.glob(f"{database.name}.pre-*.bak")
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def backup_before_migration(database: Path, revision: str, *, keep: int = 3) -> Path:
    """Copy ``database`` (at ``revision``) before its schema is upgraded; keep the newest
    ``keep`` such copies."""
    target = database.with_name(f"{database.name}.pre-{revision}-{_stamp()}.bak")
    _copy(database, target)
    for old in migration_backups(database)[:-keep]:
        if old != target:
            old.unlink(missing_ok=True)
            _log.info("removed old pre-migration backup %s", old)
    return target


class DatabaseLock:
    """An exclusive ``flock`` on ``<db>.lock`` holding the owner's PID.

    The kernel drops the lock when its process dies, so a crash never leaves a stale
    lock. :meth:`acquire` raises :class:`DatabaseBusy` (naming the holder's PID) at once
    when another process holds it.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(f"{database.name}.lock")
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The PID written by the current holder, or None when nobody holds the lock."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MaintenanceError(f"cannot read the lock file {self.path} ({exc.strerror}); run this "
                                   "as the service user, e.g. 'sudo -u appliance appliance ...'") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> DatabaseLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise MaintenanceError(f"cannot open the lock file {self.path} ({exc.strerror}); run this "
                                   "as the service user, e.g. 'sudo -u appliance appliance ...'") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {text}" if text.isdigit() else "another process"
            raise DatabaseBusy(
                f"{self.database} is in use by {who} (the appliance daemon?); stop it first, "
                "e.g. 'systemctl stop appliance'"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def recent_backups(database: Path, limit: int = 3) -> Iterator[Path]:
    """The newest backups the appliance made next to ``database`` (pre-migration and
    before-restore copies), newest first."""
    candidates = [*database.parent.glob(f"{database.name}.pre-*.bak"),
                  *database.parent.glob(f"{database.name}.before-restore-*")]
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    yield from candidates[:limit]
