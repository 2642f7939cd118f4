"""Alembic environment of the queue; run through :func:`appliance.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from appliance.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn: object) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # `alembic -x` style use with sqlalchemy.url set on the Config
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
