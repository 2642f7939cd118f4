"""API keys, inbound de-duplication and reassembly, STOP replies, the webhook outbox.

Revision ID: 0003_api_inbound_webhooks
Revises: 0002_inbound_consent_events
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import FLAG, where

revision = "0003_api_inbound_webhooks"
down_revision = "0002_inbound_consent_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("ignore_opt_out", FLAG, nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("inbound") as batch:
        batch.add_column(sa.Column("digest", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("complete", FLAG, nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("keyword", sa.String(), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.Float(), nullable=True))
    # Rows stored before this revision had their actions taken already.
    op.execute("UPDATE inbound SET handled_at = received_at WHERE handled_at IS NULL")
    op.create_index("ix_inbound_digest", "inbound", ["digest"], unique=True)
    op.create_index(
        "ix_inbound_unhandled", "inbound", ["id"], unique=False,
        **where("handled_at IS NULL"),
    )
    op.create_table(
        "inbound_fragments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("modem", sa.String(), nullable=False),
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("pdu_hex", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbound_fragments_digest", "inbound_fragments", ["digest"], unique=True)
    op.create_index(
        "ix_inbound_fragments_group", "inbound_fragments", ["sender", "ref", "total", "seq"],
        unique=False,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("scopes", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
    )
    op.create_index(
        "ix_webhook_outbox_due", "webhook_outbox", ["next_attempt_at"], unique=False,
        **where("delivered_at IS NULL"),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("cursors")
    op.drop_index("ix_webhook_outbox_due", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("api_keys")
    op.drop_index("ix_inbound_fragments_group", table_name="inbound_fragments")
    op.drop_index("ix_inbound_fragments_digest", table_name="inbound_fragments")
    op.drop_table("inbound_fragments")
    op.drop_index("ix_inbound_unhandled", table_name="inbound")
    op.drop_index("ix_inbound_digest", table_name="inbound")
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("handled_at")
        batch.drop_column("keyword")
        batch.drop_column("complete")
        batch.drop_column("digest")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ignore_opt_out")
