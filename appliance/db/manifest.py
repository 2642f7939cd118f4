"""A backup's manifest: a small key → JSON table (``backup_manifest``) that only backup
copies carry (what was in force when it was taken, e.g. the ``[retention]`` policy).
``appliance restore`` reads it and drops it from the restored database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from appliance.db.engine import Tx
from appliance.db.stats import table_exists

__all__ = ["MANIFEST_TABLE", "drop_manifest", "read_manifest", "write_manifest"]

MANIFEST_TABLE = "backup_manifest"


def write_manifest(tx: Tx, entries: Mapping[str, Any]) -> None:
    """Write ``entries`` (JSON-ready values) as the manifest, replacing any before."""
    tx.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {MANIFEST_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    tx.exec_driver_sql(f"DELETE FROM {MANIFEST_TABLE}")
    tx.exec_driver_sql(f"INSERT INTO {MANIFEST_TABLE} (key, value) VALUES (?, ?)",
                       [(key, json.dumps(value, sort_keys=True)) for key, value in entries.items()])


def read_manifest(tx: Tx) -> dict[str, Any]:
    """The manifest's entries ({} for a database that is not a backup, or an older backup)."""
    if not table_exists(tx, MANIFEST_TABLE):
        return {}
    out: dict[str, Any] = {}
    for r in tx.exec_driver_sql(f"SELECT key, value FROM {MANIFEST_TABLE} ORDER BY key"):
        try:
            out[str(r["key"])] = json.loads(r["value"])
        except ValueError:
            out[str(r["key"])] = r["value"]
    return out


def drop_manifest(tx: Tx) -> None:
    """Remove the manifest (a restored database is a database again, not a backup)."""
    tx.exec_driver_sql(f"DROP TABLE IF EXISTS {MANIFEST_TABLE}")
