"""Several nodes on one database: nodes and their heartbeats, modems' nodes, the send log
counted per SIM (ICCID), webhook outbox rows leased by one node at a time; messages keep
the national shift tables they were planned with.

Revision ID: 0007_nodes_sims
Revises: 0006_users_sessions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_nodes_sims"
down_revision = "0006_users_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_log") as batch:
        batch.add_column(sa.Column("sim", sa.String(), nullable=True))
    # Until now a SIM's parts were counted by its modem's name: keep counting them, under
    # the ICCID where it is known.
    op.execute(
        "UPDATE send_log SET sim = COALESCE((SELECT iccid FROM modems WHERE modems.name = send_log.modem), modem)"
    )
    op.create_index("ix_send_log_sim_at", "send_log", ["sim", "at"], unique=False)
    with op.batch_alter_table("modems") as batch:
        batch.add_column(sa.Column("node", sa.String(), nullable=True))
    with op.batch_alter_table("webhook_outbox") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        # The national shift tables the message was planned with (ShiftTables.key; NULL none).
        batch.add_column(sa.Column("shift_tables", sa.String(), nullable=True))
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("api_url", sa.String(), nullable=True),
        sa.Column("lease_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
        sa.Column("recovered_at", sa.Float(), nullable=True),
        sa.Column("recovered_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("shift_tables")
    with op.batch_alter_table("webhook_outbox") as batch:
        batch.drop_column("leased_by")
    with op.batch_alter_table("modems") as batch:
        batch.drop_column("node")
    op.drop_index("ix_send_log_sim_at", table_name="send_log")
    with op.batch_alter_table("send_log") as batch:
        batch.drop_column("sim")
