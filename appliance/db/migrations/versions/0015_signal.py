"""Charts: each modem's signal sampled every few minutes (kept a week).

Revision ID: 0015_signal
Revises: 0011_field
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_signal"
down_revision = "0014_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("modem", sa.String(), nullable=False),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("rssi", sa.Integer(), nullable=True),
        sa.Column("dbm", sa.Integer(), nullable=True),
        sa.Column("bars", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signal_samples_modem_at", "signal_samples", ["modem", "at"], unique=False)
    op.create_index("ix_signal_samples_at", "signal_samples", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signal_samples_at", table_name="signal_samples")
    op.drop_index("ix_signal_samples_modem_at", table_name="signal_samples")
    op.drop_table("signal_samples")
