"""proactive outreach: one row per business event, a durable send state machine

Revision ID: 0014
Revises: 0005
Create Date: 2026-12-07 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("tried", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("error", sa.String(length=60), nullable=True),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name=op.f("fk_outreach_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_outreach_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_outreach_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outreach_event_id")),
    )
    op.create_index("ix_outreach_due_at", "outreach", ["due_at"])
    op.create_index("ix_outreach_customer_id_sent_at", "outreach", ["customer_id", "sent_at"])
    op.create_index("ix_outreach_created_at", "outreach", ["created_at"])
    op.create_index("ix_outreach_message_id", "outreach", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outreach_message_id", table_name="outreach")
    op.drop_index("ix_outreach_created_at", table_name="outreach")
    op.drop_index("ix_outreach_customer_id_sent_at", table_name="outreach")
    op.drop_index("ix_outreach_due_at", table_name="outreach")
    op.drop_table("outreach")
