"""cost: what each conversation consumed (LLM tokens, speech, SMS segments, call time)

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-07 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("llm_prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("llm_completion_tokens", sa.Integer(), nullable=False),
        sa.Column("stt_ms", sa.Integer(), nullable=False),
        sa.Column("tts_ms", sa.Integer(), nullable=False),
        sa.Column("sms_segments", sa.Integer(), nullable=False),
        sa.Column("call_s", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_usage_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage")),
        sa.UniqueConstraint("source", name=op.f("uq_usage_source")),
    )
    op.create_index("ix_usage_conversation_id", "usage", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_conversation_id", table_name="usage")
    op.drop_table("usage")
