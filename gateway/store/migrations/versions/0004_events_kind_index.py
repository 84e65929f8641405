"""events by kind: finding pending approvals at start-up without a table scan

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_kind_conversation", "events", ["kind", "conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_events_kind_conversation", table_name="events")
