"""Audit trail and approval of big broadcasts: the ``audit_events`` table; who asked for a
broadcast to start and who approved or rejected it.

Revision ID: 0014_audit
Revises: 0011_field
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_audit"
down_revision = "0013_sticky"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor_kind", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("detail_json", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"], unique=False)
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"], unique=False)
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"], unique=False)
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("requested_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("requested_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("requested_at")
        batch.drop_column("requested_by")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
