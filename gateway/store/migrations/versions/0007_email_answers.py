"""email answers: the loop limits (per sender, per domain, in all) kept in the store

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-07 04:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_answers")),
    )
    op.create_index("ix_email_answers_sender_created_at", "email_answers", ["sender", "created_at"])
    op.create_index("ix_email_answers_domain_created_at", "email_answers", ["domain", "created_at"])
    op.create_index("ix_email_answers_created_at", "email_answers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_email_answers_created_at", table_name="email_answers")
    op.drop_index("ix_email_answers_domain_created_at", table_name="email_answers")
    op.drop_index("ix_email_answers_sender_created_at", table_name="email_answers")
    op.drop_table("email_answers")
