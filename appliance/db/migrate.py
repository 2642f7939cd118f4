"""Schema migrations (alembic, shipped inside this package) for both engines.

:func:`migrate` needs no ``alembic.ini`` and works from an installed wheel. A database
already at the newest revision is recognised without importing alembic (and, through the
migration environment, SQLModel): together they cost the daemon some 20 MB of memory for
nothing on every start after the first. On PostgreSQL the upgrade runs in one transaction
under an advisory lock, so nodes starting together migrate once.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from appliance.db.engine import POSTGRESQL, make_engine
from appliance.db.errors import MigrationError
from appliance.text import first_line

__all__ = ["MIGRATIONS_DIR", "current_revision", "head_revision", "migrate", "shipped_head", "shipped_revisions"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x534D5341  # "SMSA": the advisory lock nodes take to migrate one at a time

def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine | str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest). Idempotent; keeps data."""
    if isinstance(engine, str):
        engine = make_engine(engine)
    if revision == "head" and _stored_revision(engine) == shipped_head():
        return
    from alembic import command

    try:
        if engine.dialect.name == POSTGRESQL:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                command.upgrade(_alembic_config(conn), revision)
            return
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
        raise MigrationError(f"could not migrate the database to {revision}: {first_line(exc)}") from exc



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


def shipped_head() -> str | None:
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
        raise MigrationError("the data layer ships no migrations")
    return head
