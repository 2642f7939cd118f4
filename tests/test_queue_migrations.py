"""Schema migrations: upgrades keep data, migrate() is idempotent, head matches the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from appliance.queue import Queue, current_revision, head_revision, make_engine, migrate
from appliance.db.schema import metadata

QUEUE_TABLES = {
    "batches", "messages", "parts", "modems", "send_log", "inbound", "opt_outs", "consent_log", "events",
    "api_keys", "inbound_fragments", "webhook_outbox", "cursors", "inbound_pdus",
    "contacts", "contact_groups", "group_members", "broadcasts",
}


def test_upgrade_from_the_first_revision_keeps_data(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "q.db")
    migrate(engine, "0001_queue_core")
    assert current_revision(engine) == "0001_queue_core"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO batches (id, fingerprint, created_at, count) VALUES (1, 'f', 1.0, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO messages (id, batch_id, recipient, body, encoding, parts, priority, status, "
            "created_at, updated_at, due_at, attempts, max_attempts, resends) "
            "VALUES (1, 1, '+15550000001', 'kept', 'gsm7', 1, 1, 'sent', 1.0, 1.0, 1.0, 0, 5, 0)"
        )
        conn.exec_driver_sql("INSERT INTO send_log (modem, at, message_id) VALUES ('m1', 1.0, 1)")
    migrate(engine)
    assert current_revision(engine) == head_revision()
    queue = Queue(engine)
    msg = queue.get(1)
    assert (msg.to, msg.body, msg.status) == ("+15550000001", "kept", "sent")
    assert queue.send_times("m1", since=0) == [1.0]
    queue.opt_out("+15550000002", source="test")  # a table of the second revision works
    assert queue.is_opted_out("+15550000002")


def test_migrate_is_idempotent_and_head_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "q.db")
    migrate(engine)
    Queue(engine).enqueue(["+15550000001"], "still here")
    migrate(engine)
    migrate(engine)
    assert Queue(engine).stats()["queued"] == 1
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [
            d for d in compare_metadata(ctx, metadata)
            if _table_of(d) in QUEUE_TABLES or _table_of(d) is None
        ]
    assert diff == []


def test_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


def _table_of(diff: object) -> str | None:
    """The table a compare_metadata entry is about (entries are tuples or lists of them)."""
    item = diff[0] if isinstance(diff, list) else diff
    for obj in item[1:]:  # type: ignore[index]
        name = getattr(obj, "name", None)
        table = getattr(obj, "table", None)
        if table is not None:
            return table.name
        if getattr(obj, "columns", None) is not None and name:
            return name
        if isinstance(obj, str):
            return obj
    return None


def test_non_durable_write_restores_full_sync(tmp_path: Path) -> None:
    from appliance.db.engine import write_tx

    engine = make_engine(tmp_path / "q.db")
    migrate(engine)
    with write_tx(engine, durable=False) as tx:
        assert tx.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL inside
        tx.exec_driver_sql("INSERT INTO cursors (name, value) VALUES ('x', 1)")
    for _ in range(3):  # whichever pooled connection comes back is FULL again
        with write_tx(engine) as tx:
            assert tx.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_shipped_head_is_read_without_alembic_and_matches_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from appliance.db.migrate import shipped_head as _shipped_head

    assert _shipped_head() == head_revision()
    engine = make_engine(tmp_path / "q.db")
    migrate(engine)
    # A start on a database at head imports neither alembic nor SQLModel (memory).
    code = (
        "import sys\n"
        "from appliance.queue import Queue\n"
        f"Queue({str(tmp_path / 'q.db')!r})\n"
        "print('alembic' in sys.modules, 'sqlmodel' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_shipped_revisions_match_alembics_chain() -> None:
    from alembic.script import ScriptDirectory

    from appliance.db.migrate import MIGRATIONS_DIR, shipped_revisions

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert list(shipped_revisions()) == [r.revision for r in reversed(list(script.walk_revisions()))]
