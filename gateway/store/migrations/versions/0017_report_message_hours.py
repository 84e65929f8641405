"""report message hours: the messages of each conversation counted by hour since the
epoch and direction, kept by triggers in the writing transaction and filled from the
stored messages

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07 08:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

# The triggers (plain SQL per store, as in 0013). Messages are never deleted nor moved
# between conversations today (a customer merge, merge.py, changes their customer and
# seq only), but a delete or an update of a message's conversation, time or direction
# is counted too, so the rows stay exact whatever writes them.
_HOUR = "created_at / 3600000"
_SQLITE_ADD = (
    "INSERT INTO report_message_hours (conversation_id, epoch_hour, direction, n)"
    f" VALUES (NEW.conversation_id, NEW.{_HOUR}, NEW.direction, 1)"
    " ON CONFLICT (conversation_id, epoch_hour, direction) DO UPDATE SET n = n + 1;"
)
_SQLITE_REMOVE = (
    "UPDATE report_message_hours SET n = n - 1 WHERE conversation_id = OLD.conversation_id"
    f" AND epoch_hour = OLD.{_HOUR} AND direction = OLD.direction;"
)
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER report_message_hour_insert AFTER INSERT ON messages BEGIN {_SQLITE_ADD} END",
    "CREATE TRIGGER report_message_hour_delete AFTER DELETE ON messages"
    f" BEGIN {_SQLITE_REMOVE} END",
    "CREATE TRIGGER report_message_hour_update"
    " AFTER UPDATE OF conversation_id, created_at, direction ON messages"
    " WHEN OLD.conversation_id IS NOT NEW.conversation_id OR OLD.created_at IS NOT NEW.created_at"
    f" OR OLD.direction IS NOT NEW.direction BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
)
_SQLITE_TRIGGER_NAMES = (
    "report_message_hour_insert", "report_message_hour_delete", "report_message_hour_update",
)  # fmt: skip

_PG_TRIGGERS = (
    """CREATE FUNCTION report_message_hour() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        UPDATE report_message_hours SET n = n - 1
        WHERE conversation_id = OLD.conversation_id AND epoch_hour = OLD.created_at / 3600000
          AND direction = OLD.direction;
      END IF;
      IF TG_OP <> 'DELETE' THEN
        INSERT INTO report_message_hours (conversation_id, epoch_hour, direction, n)
        VALUES (NEW.conversation_id, NEW.created_at / 3600000, NEW.direction, 1)
        ON CONFLICT (conversation_id, epoch_hour, direction)
        DO UPDATE SET n = report_message_hours.n + 1;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_message_hour AFTER INSERT OR DELETE ON messages FOR EACH ROW"
    " EXECUTE FUNCTION report_message_hour()",
    "CREATE TRIGGER report_message_hour_update AFTER UPDATE ON messages FOR EACH ROW"
    " WHEN ((OLD.conversation_id, OLD.created_at, OLD.direction)"
    " IS DISTINCT FROM (NEW.conversation_id, NEW.created_at, NEW.direction))"
    " EXECUTE FUNCTION report_message_hour()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS report_message_hour ON messages",
    "DROP TRIGGER IF EXISTS report_message_hour_update ON messages",
    "DROP FUNCTION IF EXISTS report_message_hour()",
)
_BACKFILL = (
    "INSERT INTO report_message_hours (conversation_id, epoch_hour, direction, n)"
    f" SELECT conversation_id, {_HOUR}, direction, COUNT(*) FROM messages"
    f" GROUP BY conversation_id, {_HOUR}, direction"
)


def upgrade() -> None:
    op.create_table(
        "report_message_hours",
        sa.Column("conversation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_report_message_hours_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint(
            "conversation_id", "epoch_hour", "direction", name=op.f("pk_report_message_hours")
        ),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Triggers, then the backfill, in the migration's one transaction.
    for sql in _SQLITE_TRIGGERS if sqlite else _PG_TRIGGERS:
        op.execute(sql)
    op.execute(_BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for sql in _PG_DROP:
            op.execute(sql)
    op.drop_table("report_message_hours")
