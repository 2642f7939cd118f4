"""Users and their browser sessions for the web pages; a broadcast's progress is read
from one covering index (``ix_messages_broadcast`` gains ``parts`` and ``sent_at``); the
dashboard's "today" counts read ``ix_messages_updated`` instead of scanning every message.

Revision ID: 0006_users_sessions
Revises: 0005_contacts_broadcasts
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import where

revision = "0006_users_sessions"
down_revision = "0005_contacts_broadcasts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("password_changed_at", sa.Float(), nullable=False),
        sa.Column("disabled_at", sa.Float(), nullable=True),
        sa.Column("last_login_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"], unique=False)
    op.drop_index("ix_messages_broadcast", table_name="messages")
    op.create_index(
        "ix_messages_broadcast", "messages", ["broadcast_id", "status", "parts", "sent_at"], unique=False,
        **where("broadcast_id IS NOT NULL"),
    )
    op.create_index("ix_messages_updated", "messages", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_updated", table_name="messages")
    op.drop_index("ix_messages_broadcast", table_name="messages")
    op.create_index(
        "ix_messages_broadcast", "messages", ["broadcast_id", "status"], unique=False,
        **where("broadcast_id IS NOT NULL"),
    )
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("users")
