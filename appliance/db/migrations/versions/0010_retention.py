"""Retention and privacy: ``redacted_at`` on messages and inbound texts (when a body was
erased by the retention job or a privacy request).

Revision ID: 0010_retention
Revises: 0009_twilio
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_retention"
down_revision = "0009_twilio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("redacted_at", sa.Float(), nullable=True))
    with op.batch_alter_table("inbound") as batch:
        batch.add_column(sa.Column("redacted_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("redacted_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("redacted_at")
