"""The Twilio-compatible API: credentials (Account SID, Auth Token, API key SID) and the
SID and status callback of each message sent through it.

Revision ID: 0009_twilio
Revises: 0008_email
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import FLAG

revision = "0009_twilio"
down_revision = "0008_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "twilio_credentials",
        sa.Column("account_sid", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("auth_token", sa.String(), nullable=False),
        sa.Column("token_digest", sa.String(), nullable=False),
        sa.Column("api_key_sid", sa.String(), nullable=False),
        sa.Column("api_key_digest", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_sid"),
        sa.UniqueConstraint("api_key_sid"),
    )
    op.create_index("ix_twilio_credentials_key_id", "twilio_credentials", ["key_id"], unique=False)
    op.create_table(
        "twilio_messages",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(), nullable=False),
        sa.Column("account_sid", sa.String(), nullable=False),
        sa.Column("status_callback", sa.String(), nullable=True),
        sa.Column("deleted", FLAG, server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
        sa.UniqueConstraint("sid"),
    )
    op.create_index("ix_twilio_messages_account", "twilio_messages", ["account_sid", "message_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_twilio_messages_account", table_name="twilio_messages")
    op.drop_table("twilio_messages")
    op.drop_index("ix_twilio_credentials_key_id", table_name="twilio_credentials")
    op.drop_table("twilio_credentials")
