"""Sticky sender: the SIM a message prefers (``messages.sticky_sim``), the SIM an inbound
text reached (``inbound.sim``), and the indexes that find a number's last SIM quickly.

Revision ID: 0013_sticky
Revises: 0011_field
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_sticky"
down_revision = "0011_field"
branch_labels = None
depends_on = None

_QUEUED = "status = 'queued' AND held = 0 AND sticky_sim IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sticky_sim", sa.String(), nullable=True))
    with op.batch_alter_table("inbound") as batch:
        batch.add_column(sa.Column("sim", sa.String(), nullable=True))
    op.create_index("ix_messages_sticky", "messages", ["sticky_sim", "priority", "due_at", "id"], unique=False,
                    sqlite_where=sa.text(_QUEUED), postgresql_where=sa.text(_QUEUED))
    op.create_index("ix_send_log_message", "send_log", ["message_id"], unique=False)
    op.create_index("ix_inbound_sender", "inbound", ["sender", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbound_sender", table_name="inbound")
    op.drop_index("ix_send_log_message", table_name="send_log")
    op.drop_index("ix_messages_sticky", table_name="messages")
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("sim")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sticky_sim")
