"""Queue core: batches, messages, parts, modems, send log.

Revision ID: 0001_queue_core
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import where

revision = "0001_queue_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "modems",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("imei", sa.String(), nullable=True),
        sa.Column("iccid", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("next_concat_ref", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "send_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("modem", sa.String(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("part_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_send_log_modem_at", "send_log", ["modem", "at"], unique=False)
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("encoding", sa.String(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("send_at", sa.Float(), nullable=True),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("resends", sa.Integer(), nullable=False),
        sa.Column("modem", sa.String(), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.Column("concat_ref", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("metadata_json", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_batch_id", "messages", ["batch_id"], unique=False)
    op.create_index(
        "ix_messages_claim", "messages", ["priority", "due_at", "id"], unique=False,
        **where("status = 'queued'"),
    )
    op.create_index(
        "ix_messages_queued_due", "messages", ["due_at"], unique=False,
        **where("status = 'queued'"),
    )
    op.create_index(
        "ix_messages_queued_expiry", "messages", ["expires_at"], unique=False,
        **where("status = 'queued' AND expires_at IS NOT NULL"),
    )
    op.create_index("ix_messages_recipient_id", "messages", ["recipient", "id"], unique=False)
    op.create_index("ix_messages_status_id", "messages", ["status", "id"], unique=False)
    op.create_table(
        "parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("modem", sa.String(), nullable=True),
        sa.Column("mr", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.Float(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("report_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "seq", name="uq_parts_message_seq"),
    )
    op.create_index("ix_parts_report_match", "parts", ["modem", "mr", "sent_at"], unique=False)
    op.create_index(
        "ix_parts_submitting", "parts", ["message_id"], unique=False,
        **where("state = 'submitting'"),
    )


def downgrade() -> None:
    op.drop_table("parts")
    op.drop_table("messages")
    op.drop_table("send_log")
    op.drop_table("modems")
    op.drop_table("batches")
