"""the rep's desk: rep roles, API tokens, canned responses, conversations by creation
time (reports), full-text search of messages

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-07 04:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
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
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["reps.id"], name=op.f("fk_canned_responses_created_by_reps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint("name", name=op.f("uq_canned_responses_name")),
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

    _full_text_up()


# Full-text search of messages, each store with its own engine (the desk's search):
# SQLite FTS5 (an external-content table kept by triggers), PostgreSQL a GIN index on
# the text's tsvector ('simple': no stemming, any language). Not in schema.py: neither
# is expressible as plain SQLAlchemy tables (the schema test leaves them out).
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
    " content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
)
_PG_FTS = (
    "CREATE INDEX ix_messages_text_search ON messages USING gin (to_tsvector('simple', text))",
)


def _full_text_up() -> None:
    for sql in _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _PG_FTS:
        op.execute(sql)


def _full_text_down() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_text_search")


def downgrade() -> None:
    _full_text_down()
    op.drop_index("ix_messages_author_conversation", table_name="messages")
    op.drop_index("ix_conversations_created_at", table_name="conversations")
    op.drop_table("canned_responses")
    op.drop_table("api_tokens")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("role")
