"""Helpers for the retention and privacy tests: a database's raw text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_bytes_after_vacuum(url: str) -> bytes:
    """The SQLite file (and its WAL, if any) after ``VACUUM`` and a truncating checkpoint:
    the bytes an attacker with the disk would read."""
    path = Path(make_url(url).database or "")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def postgres_tables_containing(engine: object, text: str) -> list[str]:
    """The tables (of the public schema) with a row whose text contains ``text``."""
    from appliance.db.engine import read_tx

    found = []
    with read_tx(engine) as tx:  # type: ignore[arg-type]
        tables = [r["tablename"] for r in tx.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            hit = tx.exec_driver_sql(
                f'SELECT 1 AS hit FROM "{table}" t WHERE position(? in t::text) > 0 LIMIT 1', (text,)
            ).first()
            if hit is not None:
                found.append(table)
    return found
