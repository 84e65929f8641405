"""search without the GIN pending list: PostgreSQL's message search index updated at
once (fastupdate off), so a search never scans a list of unindexed recent messages

Revision ID: 0012
Revises: 0005
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0005"
branch_labels = None
depends_on = None

# With GIN's default fastupdate, new messages go to a pending list that every search
# reads in full (up to gin_pending_list_limit, 4 MB) until a vacuum merges it: on a
# store written all day that is hundreds of pages per search, most of its time. With
# it off each insert updates the index (a few index pages per message, at the rate
# people write). gin_clean_pending_list merges what is pending now. SQLite (FTS5) has
# nothing of the kind: nothing to do there.
INDEX = "ix_messages_text_search"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} SET (fastupdate = off)")
    op.execute(f"SELECT gin_clean_pending_list('{INDEX}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} RESET (fastupdate)")
