"""outreach campaigns: a one-off notice to a list, a send rate shared by every node

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach_campaigns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_campaigns")),
    )
    op.create_index("ix_outreach_campaigns_created_at", "outreach_campaigns", ["created_at"])
    op.create_table(
        "outreach_pace",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_outreach_pace")),
    )
    with op.batch_alter_table("outreach") as batch:
        batch.add_column(sa.Column("campaign_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("campaign_row", sa.Integer(), nullable=True))
    op.create_index(
        "ix_outreach_campaign_id_campaign_row", "outreach", ["campaign_id", "campaign_row"]
    )


def downgrade() -> None:
    op.drop_index("ix_outreach_campaign_id_campaign_row", table_name="outreach")
    with op.batch_alter_table("outreach") as batch:
        batch.drop_column("campaign_row")
        batch.drop_column("campaign_id")
    op.drop_table("outreach_pace")
    op.drop_index("ix_outreach_campaigns_created_at", table_name="outreach_campaigns")
    op.drop_table("outreach_campaigns")
