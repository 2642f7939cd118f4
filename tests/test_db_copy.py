"""`appliance db copy` / `db check`: a SQLite appliance moved to PostgreSQL, row for row.

The source is made by driving the real services until every table of the schema has rows
(``tests/utils/appliance_data.py``); each PostgreSQL test gets a database of its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.db import copy as copy_db
from appliance.db.copy import (
    CopyError,
    CopyMismatch,
    DatabaseMissing,
    SourceInUse,
    SourceRevisionMismatch,
    TargetNotEmpty,
    WrongEngine,
    check_database,
    copy_database,
)
from appliance.db.engine import make_engine
from appliance.db.migrate import migrate, shipped_head
from appliance.db.schema import metadata
from appliance.maintenance import DatabaseLock, database_path
from appliance.queue import Queue
from tests.utils.appliance_data import Filled, add_stopped_node, all_rows, empty_tables, fill_every_table
from tests.utils.db import fresh_postgres_database, require_postgres

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, Filled]:
    url = f"sqlite:///{tmp_path / 'appliance.db'}"
    return url, fill_every_table(url)


@pytest.fixture
def target() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema) for this test alone."""
    require_postgres(pytest)
    with fresh_postgres_database("appliance_copy") as url:
        yield url


def small_source(tmp_path: Path, name: str = "small.db") -> str:
    url = f"sqlite:///{tmp_path / name}"
    queue = Queue(url)
    queue.enqueue(["+14155550100"], "hello")
    queue.close()
    return url


def counts(url: str) -> dict[str, int]:
    return check_database(url).tables


# ---------------------------------------------------------------------- the round trip


def test_every_table_has_rows_in_the_source(source: tuple[str, Filled]) -> None:
    # A table added to the schema without rows in fill_every_table fails here: add some.
    engine = make_engine(source[0])
    try:
        assert empty_tables(engine) == []
    finally:
        engine.dispose()


def test_round_trip_copies_every_row_of_every_table(source: tuple[str, Filled], target: str) -> None:
    url, filled = source
    seen: dict[str, tuple[int, int]] = {}
    # One row per batch: every table with two rows or more goes through the keyset pages.
    report = copy_database(url, target, batch_rows=1,
                           progress=lambda table, done, total: seen.__setitem__(table, (done, total)))

    assert report.revision == shipped_head()
    assert [t.table for t in report.tables] == [t.name for t in metadata.sorted_tables]
    assert all(t.rows >= 1 for t in report.tables) and report.forced is None
    assert seen == {t.table: (t.rows, t.rows) for t in report.tables}
    src, dst = make_engine(url), make_engine(target)
    try:
        for table in metadata.sorted_tables:
            assert all_rows(dst, table.name) == all_rows(src, table.name), table.name
    finally:
        src.dispose()
        dst.dispose()
    assert counts(target) == counts(url)
    checked = check_database(target)
    assert checked.engine == "postgresql" and checked.up_to_date and not checked.missing_tables
    assert [(n.name, n.state) for n in checked.nodes] == [("pi-1", "stopped")]

    highest = {t.table: t.keys.high for t in report.tables}
    copied = {t.table: t.rows for t in report.tables}
    assert highest["messages"] == filled.max_message_id
    queue = Queue(target)
    try:
        claim = queue.claim("m1", max_parts=10)
        assert claim is not None and claim.message_id == filled.queued_message
        # New rows get ids above the copied ones (the sequences were moved past them).
        [new] = queue.enqueue(["+14155550177"], "after the move")
        assert new.id == filled.max_message_id + 1
        assert queue.record_inbound("m1", "+14155550177", "hi").id == highest["inbound"] + 1
        assert queue.opt_out("+14155550177", source="test") is True
        assert counts(target)["consent_log"] == copied["consent_log"] + 1
    finally:
        queue.close()


# ---------------------------------------------------------------------- refusals


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path: Path, target: str) -> None:
    migrate(target)
    queue = Queue(target)
    queue.enqueue(["+14155550188"], "already here")
    queue.close()
    before = counts(target)
    with pytest.raises(TargetNotEmpty) as refused:
        copy_database(small_source(tmp_path), target)
    assert refused.value.table == "batches" and "not empty" in str(refused.value)
    assert counts(target) == before
    queue = Queue(target)
    try:
        assert queue.enqueue(["+14155550188"], "next")[0].id == 2  # nothing moved the sequences either
    finally:
        queue.close()


def test_a_source_at_an_old_revision_is_refused(tmp_path: Path, target: str) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate(engine, "0006_users_sessions")
    engine.dispose()
    with pytest.raises(SourceRevisionMismatch) as refused:
        copy_database(url, target)
    assert refused.value.revision == "0006_users_sessions" and refused.value.head == shipped_head()
    assert "start the daemon" in str(refused.value)
    assert check_database(target).revision is None  # not even migrated


def test_a_running_daemon_is_refused_unless_forced(tmp_path: Path, target: str) -> None:
    url = small_source(tmp_path)
    with DatabaseLock(database_path(url)):  # what `appliance serve` holds while it runs
        with pytest.raises(SourceInUse) as refused:
            copy_database(url, target)
        assert f"process {os.getpid()}" in str(refused.value) and "--force" in str(refused.value)
        assert check_database(target).revision is None
        report = copy_database(url, target, force=True)
    assert report.forced is not None and "in use" in report.forced
    assert counts(target)["messages"] == 1


def test_the_copy_holds_the_daemon_lock(tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = small_source(tmp_path)
    held: list[int | None] = []
    real = copy_db.copy_tables

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        held.append(DatabaseLock(database_path(url)).holder())
        return real(*args, **kwargs)

    monkeypatch.setattr(copy_db, "copy_tables", spy)
    copy_database(url, target)
    assert held == [os.getpid()]  # a daemon starting meanwhile would be refused
    assert DatabaseLock(database_path(url)).holder() is None


def test_a_recent_heartbeat_is_refused_an_old_one_is_not(tmp_path: Path, target: str) -> None:
    alive = small_source(tmp_path, "alive.db")
    engine = make_engine(alive)
    add_stopped_node(engine, "pi-2", heartbeat_age_s=5.0, stopped=False)
    engine.dispose()
    assert [n.state for n in check_database(alive).nodes] == ["alive"]
    with pytest.raises(SourceInUse) as refused:
        copy_database(alive, target)
    assert "node pi-2" in str(refused.value)

    silent = small_source(tmp_path, "silent.db")
    engine = make_engine(silent)
    add_stopped_node(engine, "pi-2", heartbeat_age_s=3600.0, stopped=False)  # crashed an hour ago
    engine.dispose()
    assert [n.state for n in check_database(silent).nodes] == ["silent"]
    assert copy_database(silent, target).rows == 3  # a batch, a message, a node


def test_a_mismatch_rolls_everything_back(tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = copy_db.key_sum

    def off_by_one(tx, table):  # type: ignore[no-untyped-def]
        found = real(tx, table)
        if tx.postgres and table.name == "messages":
            return dataclasses.replace(found, rows=found.rows + 1)
        return found

    monkeypatch.setattr(copy_db, "key_sum", off_by_one)
    with pytest.raises(CopyMismatch) as refused:
        copy_database(small_source(tmp_path), target)
    assert refused.value.table == "messages" and "nothing was committed" in str(refused.value)
    after = check_database(target)
    assert after.up_to_date and set(after.tables.values()) == {0}  # migrated, but no row


def test_wrong_engines_missing_files_and_bad_urls_are_refused(tmp_path: Path) -> None:
    url = small_source(tmp_path)
    with pytest.raises(WrongEngine, match="target .* must be a PostgreSQL database"):
        copy_database(url, str(tmp_path / "other.db"))
    assert not (tmp_path / "other.db").exists()
    with pytest.raises(WrongEngine, match="source .* must be a SQLite database"):
        copy_database(UNREACHABLE, UNREACHABLE)
    with pytest.raises(DatabaseMissing):
        copy_database(str(tmp_path / "none.db"), UNREACHABLE)
    with pytest.raises(DatabaseMissing):
        check_database(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()  # a check never creates a database
    with pytest.raises(CopyError) as bad:
        copy_database(url, "postgresql+psycopg://postgres:s3cret@127.0.0.1:port/x")
    assert "s3cret" not in str(bad.value) and "not a database URL" in str(bad.value)
    (tmp_path / "junk.db").write_bytes(b"this is no database" * 100)
    with pytest.raises(CopyError, match="cannot read"):
        check_database(str(tmp_path / "junk.db"))


def test_check_reports_a_sqlite_database(source: tuple[str, Filled]) -> None:
    report = check_database(source[0])
    assert report.engine == "sqlite" and report.up_to_date and report.server_version
    assert set(report.tables) == set(metadata.tables) and min(report.tables.values()) >= 1
    assert report.to_dict()["nodes"][0]["state"] == "stopped"


# ---------------------------------------------------------------------- the command line


def appliance(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``appliance`` command (stdin closed unless ``input`` is given)."""
    full = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True, text=True, env=full,
                          input=input, stdin=subprocess.DEVNULL if input is None else None, timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def config_file(tmp_path: Path, url: str, name: str = "appliance.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'[appliance]\ndatabase_url = "{url}"\n')
    return path


def test_cli_copy_then_check(source: tuple[str, Filled], target: str, tmp_path: Path) -> None:
    config = config_file(tmp_path, source[0])
    done = appliance("db", "copy", "--to", target, "--config", str(config), "--yes")
    assert done.returncode == 0, done.stderr
    assert "row counts and id checksums verified" in done.stdout
    assert "set database_url" in done.stdout and str(config) in done.stdout

    checked = appliance("db", "check", "--json", "--config", str(config_file(tmp_path, target, "pg.toml")))
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert doc["engine"] == "postgresql" and doc["up_to_date"] is True
    assert doc["tables"] == counts(source[0])
    assert [n["state"] for n in doc["nodes"]] == ["stopped"]

    again = one_error_line(appliance("db", "copy", "--to", target, "--from", source[0], "--yes"))
    assert "is not empty (table" in again


def test_cli_asks_before_copying(tmp_path: Path, target: str) -> None:
    url = small_source(tmp_path)
    line = one_error_line(appliance("db", "copy", "--to", target, "--from", url))  # stdin closed
    assert "--yes" in line
    assert "copy cancelled" in one_error_line(appliance("db", "copy", "--to", target, "--from", url, input="n\n"))
    assert check_database(target).revision is None
    done = appliance("db", "copy", "--to", target, "--from", url, input="y\n")
    assert done.returncode == 0, done.stderr
    assert "Copy 2 row(s) into" in done.stdout and counts(target)["messages"] == 1


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    url = small_source(tmp_path)
    config = config_file(tmp_path, url)
    line = one_error_line(appliance("db", "copy", "--to", "postgresql+psycopg://postgres:s3cret@127.0.0.1:port/x",
                                    "--config", str(config), "--yes"))
    assert "not a database URL" in line and "s3cret" not in line
    line = one_error_line(appliance("db", "copy", "--to", UNREACHABLE, "--config", str(config), "--yes"))
    assert "unavailable" in line and "127.0.0.1" in line
    line = one_error_line(appliance("db", "copy", "--to", str(tmp_path / "x.db"), "--config", str(config), "--yes"))
    assert "must be a PostgreSQL database" in line
    line = one_error_line(appliance("db", "check", "--config", str(config_file(tmp_path, UNREACHABLE, "pg.toml"))))
    assert "unavailable" in line
    line = one_error_line(appliance("db", "check", "--config", str(config_file(tmp_path, str(tmp_path / "no.db"),
                                                                               "none.toml"))))
    assert "no such database file" in line


def test_cli_without_psycopg_says_how_to_install_it(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "psycopg").mkdir(parents=True)
    (shadow / "psycopg" / "__init__.py").write_text('raise ImportError("no psycopg here")\n')
    url = small_source(tmp_path)
    result = appliance("db", "copy", "--to", "postgresql+psycopg://postgres@127.0.0.1/x", "--from", url, "--yes",
                       env={"PYTHONPATH": str(shadow)})
    assert "psycopg is not installed" in one_error_line(result)
