"""Column types and index options that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["FLAG", "where"]

# A yes/no column. SQLite stores booleans as 0/1; on PostgreSQL the column is SMALLINT so
# that one SQL text (``held = 0``, ``server_default 0``) serves both engines.
FLAG = sa.Boolean().with_variant(sa.SmallInteger(), "postgresql")


def where(clause: str) -> dict[str, Any]:
    """Index options for a partial index on both engines (``Index(..., **where("x = 0"))``)."""
    return {"sqlite_where": sa.text(clause), "postgresql_where": sa.text(clause)}
