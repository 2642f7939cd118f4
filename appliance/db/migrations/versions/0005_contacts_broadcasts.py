"""Contacts, groups and broadcasts; messages learn their broadcast, kind and held flag.

The claim's partial indexes now leave out held messages (a paused broadcast's), so they
are dropped and made again with the new condition; ``ix_messages_claim_tx`` serves the
claim inside quiet hours (marketing messages left out).

Revision ID: 0005_contacts_broadcasts
Revises: 0004_inbound_pdus
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appliance.db.types import FLAG, where

revision = "0005_contacts_broadcasts"
down_revision = "0004_inbound_pdus"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("broadcast_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("kind", sa.String(), nullable=False, server_default=sa.text("'transactional'"))
        )
        batch.add_column(sa.Column("held", FLAG, nullable=False, server_default=sa.text("0")))
    op.drop_index("ix_messages_claim", table_name="messages")
    op.drop_index("ix_messages_queued_due", table_name="messages")
    op.create_index(
        "ix_messages_claim", "messages", ["priority", "due_at", "id"], unique=False,
        **where("status = 'queued' AND held = 0"),
    )
    op.create_index(
        "ix_messages_queued_due", "messages", ["due_at"], unique=False,
        **where("status = 'queued' AND held = 0"),
    )
    op.create_index(
        "ix_messages_claim_tx", "messages", ["priority", "due_at", "id"], unique=False,
        **where("status = 'queued' AND held = 0 AND kind != 'marketing'"),
    )
    op.create_index(
        "ix_messages_broadcast", "messages", ["broadcast_id", "status"], unique=False,
        **where("broadcast_id IS NOT NULL"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("first_name", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("last_name", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("fields_json", sa.String(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_table(
        "contact_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("filter", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["group_id"], ["contact_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "contact_id"),
    )
    op.create_index("ix_group_members_contact", "group_members", ["contact_id"], unique=False)
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("audience_json", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("send_at", sa.Float(), nullable=True),
        sa.Column("validity_s", sa.Float(), nullable=True),
        sa.Column("allow_missing", FLAG, nullable=False, server_default=sa.text("0")),
        sa.Column("footer", sa.String(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("paused_at", sa.Float(), nullable=True),
        sa.Column("cancelled_at", sa.Float(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_broadcasts_created", "broadcasts", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_broadcasts_created", table_name="broadcasts")
    op.drop_table("broadcasts")
    op.drop_index("ix_group_members_contact", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("contact_groups")
    op.drop_table("contacts")
    op.drop_index("ix_messages_broadcast", table_name="messages")
    op.drop_index("ix_messages_claim_tx", table_name="messages")
    op.drop_index("ix_messages_queued_due", table_name="messages")
    op.drop_index("ix_messages_claim", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("held")
        batch.drop_column("kind")
        batch.drop_column("broadcast_id")
    op.create_index(
        "ix_messages_claim", "messages", ["priority", "due_at", "id"], unique=False,
        **where("status = 'queued'"),
    )
    op.create_index(
        "ix_messages_queued_due", "messages", ["due_at"], unique=False,
        **where("status = 'queued'"),
    )
