"""Backups while the daemon sends, restores, and the schema upgrade at start-up."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Settings
from appliance.maintenance import (
    DatabaseLock,
    MaintenanceError,
    backup,
    backup_before_migration,
    known_revisions,
    migration_backups,
    restore,
    revision_of,
)
from appliance.queue import Queue, make_engine, migrate
from appliance.startup import StartupRefused, prepare_database

APPLIANCE = [sys.executable, "-m", "appliance.cli"]
PREVIOUS = "0003_api_inbound_webhooks"
HEAD = known_revisions()[-1]


def cli(tmp_path: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run([*APPLIANCE, *args], env=env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)


def settings_for(db: Path, **health: Any) -> Settings:
    return Settings.model_validate({"appliance": {"database_url": f"sqlite:///{db}"}, "health": health})


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_backup_while_sending_is_consistent_and_restores(
        tmp_path: Path, live_server_factory: Callable[..., Any]) -> None:
    live = live_server_factory(simulate=2, simulator_kwargs={"latency_s": 0.01})
    queue: Queue = live.app.queue
    total = 150
    queue.enqueue([f"+1415555{i:04d}" for i in range(total)], "backup me")
    db = Path(queue.engine.url.database)
    deadline = time.monotonic() + 20
    while rows(db, "SELECT COUNT(*) FROM messages WHERE status = 'sent'")[0][0] < 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    proc = cli(tmp_path, db, "backup", str(tmp_path))  # a directory: a timestamped name
    assert proc.returncode == 0, proc.stderr
    path_line = proc.stdout.splitlines()[-1]
    copy = Path(path_line.split()[0])
    assert copy.parent == tmp_path and copy.name.startswith(db.stem + "-")
    assert int(path_line.split()[1]) == copy.stat().st_size > 0
    assert f"{total} message(s)" in proc.stdout

    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    statuses = dict(rows(copy, "SELECT status, COUNT(*) FROM messages GROUP BY status"))
    assert sum(statuses.values()) == total
    assert 10 <= statuses.get("sent", 0) < total, statuses  # taken mid-drain
    # One snapshot: no sent message has a part that is not sent, and the send log holds
    # exactly the parts that were handed to a modem.
    assert rows(copy, "SELECT COUNT(*) FROM messages m JOIN parts p ON p.message_id = m.id "
                      "WHERE m.status = 'sent' AND p.state NOT IN ('sent', 'delivered')") == [(0,)]
    handed = rows(copy, "SELECT COUNT(*) FROM parts WHERE state IN ('submitting', 'sent', 'delivered')")
    assert rows(copy, "SELECT COUNT(*) FROM send_log") == handed

    # The live database drains completely meanwhile.
    deadline = time.monotonic() + 30
    while rows(db, "SELECT COUNT(*) FROM messages WHERE status = 'sent'")[0][0] < total:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # Restore the backup into another installation, start it: the data is there.
    target = tmp_path / "restored" / "appliance.db"
    proc = cli(tmp_path, target, "restore", str(copy), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "the replaced database" not in proc.stdout  # there was none
    restored = live_server_factory(simulate=1, settings={"appliance": {"database_url": f"sqlite:///{target}"}})
    with restored.client() as c:
        listed = c.get("/v1/messages", params={"limit": 500}).json()
    ids = {m["id"] for m in listed["items"]}
    assert len(ids) == total


def test_restore_keeps_the_replaced_database_and_refuses_bad_backups(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    q = Queue(db)
    q.enqueue(["+14155550100"], "old data")
    q.close()
    good = backup(db, tmp_path / "good.db")
    assert good.messages == 1 and good.revision == HEAD

    # A daemon that died without closing the database: its last commits are only in the WAL.
    code = ("import os, sys; from appliance.queue import Queue; q = Queue(sys.argv[1]); "
            "q.enqueue(['+14155550101', '+14155550102'], 'newer data'); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)
    assert Path(f"{db}-wal").stat().st_size > 0
    result = restore(tmp_path / "good.db", db)
    assert result.previous is not None and result.previous.name.startswith("appliance.db.before-restore-")
    assert rows(result.previous, "SELECT COUNT(*) FROM messages") == [(3,)]  # WAL included
    assert not Path(f"{db}-wal").exists()  # the old WAL must not be replayed into the restore
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MaintenanceError, match="damaged"):
        restore(damaged, db)

    newer = tmp_path / "newer.db"
    backup(db, newer)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    proc = cli(tmp_path, db, "restore", str(newer), "--yes")
    assert proc.returncode == 1
    assert "9999_from_the_future" in proc.stderr and "newer" in proc.stderr
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]  # untouched

    with DatabaseLock(db):  # what `serve` holds while it runs
        proc = cli(tmp_path, db, "restore", str(tmp_path / "good.db"), "--yes")
    assert proc.returncode == 1 and f"in use by process {os.getpid()}" in proc.stderr


def _database_at_previous_revision(db: Path) -> None:
    engine = make_engine(db)
    migrate(engine, PREVIOUS)
    now = time.time()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO batches (id, fingerprint, created_at, count) VALUES (1, 'f', ?, 1)", (now,))
        conn.exec_driver_sql(
            "INSERT INTO messages (id, batch_id, recipient, body, encoding, parts, priority, status, "
            "created_at, updated_at, due_at, attempts, max_attempts, resends) "
            "VALUES (1, 1, '+14155550100', 'from 0003', 'gsm7', 1, 1, 'queued', ?, ?, ?, 0, 5, 0)",
            (now, now, now),
        )
        conn.exec_driver_sql("INSERT INTO parts (message_id, seq, state) VALUES (1, 1, 'queued')")
        conn.exec_driver_sql(
            "INSERT INTO opt_outs (number, created_at, source) VALUES ('+14155550199', ?, 'test')", (now,))
    engine.dispose()


def test_start_migrates_an_older_database_after_backing_it_up(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    _database_at_previous_revision(db)
    assert revision_of(db) == PREVIOUS
    proc = cli(tmp_path, db, "version", "--config", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert f"schema head: {HEAD}" in proc.stdout
    assert f"at {PREVIOUS} (migrated at the next start)" in proc.stdout

    report = prepare_database(settings_for(db))  # what `serve` runs first
    try:
        assert report.revision_before == PREVIOUS and report.revision == HEAD
        assert revision_of(db) == HEAD
        assert report.migration_backup is not None
        assert report.migration_backup.name.startswith(f"appliance.db.pre-{PREVIOUS}-")
        assert report.migration_backup.name.endswith(".bak")
        assert revision_of(report.migration_backup) == PREVIOUS
        assert rows(report.migration_backup, "SELECT body FROM messages") == [("from 0003",)]
    finally:
        report.lock.release()
    q = Queue(db)
    try:
        assert q.get(1).body == "from 0003" and q.get(1).status == "queued"
        assert q.is_opted_out("+14155550199")
    finally:
        q.close()

    again = prepare_database(settings_for(db))  # at head: nothing to back up
    again.lock.release()
    assert again.migration_backup is None and len(migration_backups(db)) == 1


def test_only_the_newest_migration_backups_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    Queue(db).close()
    made = [backup_before_migration(db, PREVIOUS, keep=3) for _ in range(5)]
    assert len(set(made)) == 5
    assert migration_backups(db) == made[-3:]


def test_start_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    Queue(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    with pytest.raises(StartupRefused, match="newer than this version") as refused:
        prepare_database(settings_for(db))
    assert refused.value.exit_code == 78
    assert DatabaseLock(db).holder() is None  # released on refusal


def test_a_backup_notes_its_retention_policy_and_restore_shows_it(tmp_path: Path) -> None:
    from appliance.maintenance import backup_manifest

    db = tmp_path / "appliance.db"
    Queue(db).close()
    env_policy = {"APPLIANCE_RETENTION__BODY_DAYS": "30", "APPLIANCE_RETENTION__LOG_DAYS": "180"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(env_policy, APPLIANCE_APPLIANCE__DATABASE_URL=f"sqlite:///{db}")
    copy = tmp_path / "copy.db"
    proc = subprocess.run([*APPLIANCE, "backup", str(copy)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "retention policy: bodies kept 30.0 days, events and send log 180.0 days, daily run on" in proc.stdout
    manifest = backup_manifest(copy)
    assert manifest["retention"]["body_days"] == 30 and manifest["retention"]["log_days"] == 180
    assert manifest["version"] and manifest["taken_at"].endswith("Z")

    info = cli(tmp_path, db, "backup", str(copy), "--info")
    assert info.returncode == 0, info.stderr
    assert f"schema {HEAD}" in info.stdout and "bodies kept 30.0 days" in info.stdout
    restored = cli(tmp_path, tmp_path / "other.db", "restore", str(copy), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "the backup's retention policy: bodies kept 30.0 days" in restored.stdout
    assert backup_manifest(tmp_path / "other.db") == {}  # a restored database is not a backup
    assert rows(tmp_path / "other.db", "PRAGMA integrity_check") == [("ok",)]

    old = backup(db, tmp_path / "old-style.db")  # as an older version took it: no manifest
    assert old.manifest == {}
    info = cli(tmp_path, db, "backup", str(tmp_path / "old-style.db"), "--info")
    assert "not noted" in info.stdout
    bad = cli(tmp_path, db, "backup", str(tmp_path / "missing.db"), "--info")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
