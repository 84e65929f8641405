"""the rep's desk: rep roles, API tokens, conversations by creation time (reports)

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-07 04:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="rep")
        )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["reps.id"], name=op.f("fk_api_tokens_created_by_reps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(
        "ix_conversations_created_at",
        "conversations",
        ["created_at", "channel", "state", "queue", "closed_at"],
    )
    op.create_index(
        "ix_messages_author_conversation",
        "messages",
        ["author", "direction", "conversation_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_author_conversation", table_name="messages")
    op.drop_index("ix_conversations_created_at", table_name="conversations")
    op.drop_table("api_tokens")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("role")
