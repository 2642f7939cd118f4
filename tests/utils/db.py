"""Test databases on both engines.

PostgreSQL comes from ``APPLIANCE_TEST_POSTGRES_URL`` (default: the server every project
machine runs, ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). One fresh database
is created per test session (and dropped after); each test that uses it starts from empty
tables. When no server answers the PostgreSQL variants are skipped with the reason —
except under ``CI=true``, where a missing server is a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENGINES = ("sqlite", "postgresql")


def postgres_admin_url() -> str:
    return os.environ.get("APPLIANCE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy-style URL."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts = [f"host={u.host or '127.0.0.1'}", f"port={u.port or 5432}", f"dbname={u.database or 'postgres'}",
             f"user={u.username or 'postgres'}", "connect_timeout=5"]
    if u.password:
        parts.append(f"password={u.password}")
    return " ".join(parts)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(_conninfo(postgres_admin_url()), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the server is a reason to skip
        return f"no PostgreSQL at {postgres_admin_url()}: {str(exc).strip().splitlines()[0]}"
    return None


@contextmanager
def fresh_postgres_database(prefix: str = "appliance_test") -> Iterator[str]:
    """Create an empty database on the test server; yield its URL; drop it after."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = _conninfo(postgres_admin_url())
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin_url()).set(database=name, drivername="postgresql+psycopg")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_tables(url: str) -> None:
    """Delete every row of every table (the schema stays at its revision)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(_conninfo(u.render_as_string(hide_password=False)), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"
        ).fetchall()]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def require_postgres(pytest: Any) -> None:
    """Skip (or, under CI=true, fail) when no PostgreSQL server can be used."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs PostgreSQL for the data-layer tests: {reason}")
    pytest.skip(reason)
