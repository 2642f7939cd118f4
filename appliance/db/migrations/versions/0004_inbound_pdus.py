"""Digests of the PDUs already consumed into stored multipart inbound messages.

A fragment re-read from a modem after its message was reassembled (a crash between the
commit and the modem's delete) must not start a new, never-completing group.

Revision ID: 0004_inbound_pdus
Revises: 0003_api_inbound_webhooks
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_inbound_pdus"
down_revision = "0003_api_inbound_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_pdus",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_inbound_pdus_received", "inbound_pdus", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbound_pdus_received", table_name="inbound_pdus")
    op.drop_table("inbound_pdus")
