"""SIM health: whether each modem is paused by its health check, why, since when and when
its next probe is due.

Revision ID: 0016_health
Revises: 0015_signal (re-chained after the merge of main; first written after 0011_field)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import FLAG

revision = "0016_health"
down_revision = "0015_signal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modem_health",
        sa.Column("modem", sa.String(), nullable=False),
        sa.Column("paused", FLAG, nullable=False, server_default=sa.text("0")),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("paused_by", sa.String(), nullable=True),
        sa.Column("paused_at", sa.Float(), nullable=True),
        sa.Column("probe_at", sa.Float(), nullable=True),
        sa.Column("strikes", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("probation", FLAG, nullable=False, server_default=sa.text("0")),
        sa.Column("resumed_by", sa.String(), nullable=True),
        sa.Column("resumed_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("modem"),
    )


def downgrade() -> None:
    op.drop_table("modem_health")
