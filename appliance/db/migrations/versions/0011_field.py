"""In the field: each SIM's prepaid balance as read by USSD, with its time.

Revision ID: 0011_field
Revises: 0010_retention
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_field"
down_revision = "0010_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modem_balances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("modem", sa.String(), nullable=False),
        sa.Column("iccid", sa.String(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_modem_balances_modem", "modem_balances", ["modem", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_modem_balances_modem", table_name="modem_balances")
    op.drop_table("modem_balances")
