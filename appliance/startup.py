"""Checks ``appliance serve`` runs before anything else, and the schema upgrade.

:func:`prepare_database` refuses to start (:class:`StartupRefused`, exit code 78 =
``EX_CONFIG``, which the unit lists in ``RestartPreventExitStatus=``: restarting cannot
help) when the database directory cannot be written, the disk is full below the hard
minimum, the database fails ``PRAGMA quick_check`` (after a power cut on a bad SD card,
say) or was written by a newer version. It takes the database lock (a second daemon or a
restore in progress: exit code 75 = ``EX_TEMPFAIL``, systemd retries), backs the
database up when its schema is not at the head, and migrates it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.config import HealthSection, Settings
from appliance.errors import ApplianceError
from appliance.health import disk_space
from appliance.maintenance import (
    DatabaseBusy,
    DatabaseLock,
    MaintenanceError,
    backup_before_migration,
    database_path,
    integrity_problems,
    known_revisions,
    recent_backups,
    revision_of,
)

__all__ = ["EX_CONFIG", "EX_TEMPFAIL", "StartupRefused", "StartupReport", "prepare_database"]

_log = logging.getLogger(__name__)

EX_CONFIG = 78
EX_TEMPFAIL = 75


class StartupRefused(ApplianceError):
    """The daemon must not start; ``exit_code`` is what the process should exit with."""

    def __init__(self, message: str, exit_code: int = EX_CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class StartupReport:
    """What :func:`prepare_database` found and did. ``lock`` is held until released."""

    database: Path | None  # None: a PostgreSQL database (shared by the nodes)
    revision_before: str | None  # None: a new database
    revision: str
    migration_backup: Path | None
    free_mb: float | None
    lock: DatabaseLock | _NoLock


class _NoLock:
    """PostgreSQL needs no file lock: several nodes run on one database by design."""

    def release(self) -> None:
        return None


def _restore_hint(database: Path) -> str:
    backups = list(recent_backups(database))
    where = f"the newest here is {backups[0]}" if backups else f"e.g. from your backups of {database.parent}"
    return (f"stop the service and restore a backup with 'appliance restore BACKUP --config "
            f"/etc/appliance/appliance.toml' ({where})")


def _check_directory(database: Path) -> None:
    directory = database.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StartupRefused(f"cannot create the database directory {directory}: {existing} is a "
                             "file, not a directory; fix [appliance] database_url")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupRefused(f"cannot create the database directory {directory}: "
                             f"{exc.strerror or exc}") from None
    if not directory.is_dir():
        raise StartupRefused(f"the database directory {directory} is not a directory")
    # Really write: os.access() says yes to root even on a read-only mount or an immutable
    # directory, and SQLite needs to create its -wal/-shm files here.
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StartupRefused(
            f"the database directory {directory} is not writable ({exc.strerror or exc}); it must "
            "belong to the service user (the unit's StateDirectory=appliance does that)"
        ) from None
    if database.exists():
        try:
            os.close(os.open(database, os.O_RDWR))
        except OSError as exc:
            raise StartupRefused(f"the database {database} is not writable ({exc.strerror or exc})") from None


def _check_disk(database: Path, limits: HealthSection) -> float:
    space = disk_space(database)
    if space.free_mb < limits.refuse_start_below_mb:
        raise StartupRefused(
            f"the disk holding {database.parent} is full: {space.free_mb:.1f} MB free, at least "
            f"{limits.refuse_start_below_mb:g} MB are needed to commit safely; free some space"
        )
    return space.free_mb


def prepare_database(settings: Settings) -> StartupReport:
    """Run the start-up checks, take the database lock and bring the schema to the head.

    Raises :class:`StartupRefused` with a one-line reason. The caller releases
    ``report.lock`` when the daemon stops.
    """
    from appliance.queue import MigrationError, make_engine, migrate

    if settings.appliance.database_url.startswith("postgresql"):
        return _prepare_postgres(settings)
    try:
        database = database_path(settings.appliance.database_url)
    except MaintenanceError as exc:
        raise StartupRefused(str(exc)) from None
    _check_directory(database)
    free_mb = _check_disk(database, settings.health)
    try:
        lock = DatabaseLock(database).acquire()
    except DatabaseBusy as exc:
        raise StartupRefused(str(exc), EX_TEMPFAIL) from None
    except MaintenanceError as exc:
        raise StartupRefused(str(exc)) from None
    try:
        revision_before: str | None = None
        backup: Path | None = None
        head = known_revisions()[-1]
        if database.exists() and database.stat().st_size > 0:
            problems = integrity_problems(database, quick=True)
            if problems:
                raise StartupRefused(
                    f"the database {database} is damaged (PRAGMA quick_check: {problems[0]}); "
                    + _restore_hint(database)
                )
            try:
                revision_before = revision_of(database)
            except MaintenanceError as exc:
                raise StartupRefused(f"{exc}; {_restore_hint(database)}") from None
            if revision_before is not None and revision_before not in known_revisions():
                raise StartupRefused(
                    f"the database {database} is at schema revision {revision_before}, newer than "
                    f"this version of the appliance (head {head}); install the newer version again "
                    "or restore an older backup"
                )
            if revision_before is not None and revision_before != head:
                backup = backup_before_migration(
                    database, revision_before, keep=settings.health.keep_migration_backups
                )
                _log.info("database at revision %s, head is %s: backed up to %s before migrating",
                          revision_before, head, backup)
        engine = make_engine(settings.appliance.database_url)
        try:
            migrate(engine)
        except MigrationError as exc:
            hint = f"; the database before the attempt is kept in {backup}" if backup else ""
            raise StartupRefused(f"{exc}{hint}") from None
        finally:
            engine.dispose()
        if revision_before is not None and revision_before != head:
            _log.info("database migrated from %s to %s", revision_before, head)
    except BaseException:
        lock.release()
        raise
    return StartupReport(database, revision_before, head, backup, free_mb, lock)


def _prepare_postgres(settings: Settings) -> StartupReport:
    """PostgreSQL: reachable (else exit 75, systemd retries), not written by a newer
    version, migrated (nodes starting together migrate once, under an advisory lock).
    Backups of a shared database are the operator's ``pg_dump`` (hardware.md)."""
    from appliance.db import DatabaseUnavailable, MigrationError, current_revision, make_engine, migrate, redact_url

    url = settings.appliance.database_url
    head = known_revisions()[-1]
    try:
        engine = make_engine(url)
    except MigrationError as exc:
        raise StartupRefused(str(exc)) from None
    try:
        try:
            before = current_revision(engine)
        except Exception as exc:  # the driver's many ways of saying "no server there"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupRefused(
                f"cannot reach the database {redact_url(url)}: {reason}", EX_TEMPFAIL
            ) from None
        if before is not None and before not in known_revisions():
            raise StartupRefused(
                f"the database {redact_url(url)} is at schema revision {before}, newer than this version of "
                f"the appliance (head {head}); upgrade this node like the others"
            )
        try:
            migrate(engine)
        except (MigrationError, DatabaseUnavailable) as exc:
            raise StartupRefused(str(exc), EX_TEMPFAIL) from None
        if before != head:
            _log.info("database %s migrated from %s to %s", redact_url(url), before, head)
    finally:
        engine.dispose()
    return StartupReport(None, before, head, None, None, _NoLock())
