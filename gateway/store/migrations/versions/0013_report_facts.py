"""report facts: one row of what the reports count per conversation (and each next
response), kept by triggers in the writing transaction and filled from the stored rows

Revision ID: 0013
Revises: 0005
Create Date: 2026-12-07 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

# The triggers (not in schema.py: plain SQL per store; the schema test compares
# tables and indexes only). Every write path (turns, routing, ratings, the idle
# sweep, other nodes) goes through these tables, so the facts are written with
# what they come from, in the same transaction.
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER report_conversation_insert AFTER INSERT ON conversations BEGIN"
    " INSERT INTO report_facts (conversation_id, channel, state, queue, created_at, closed_at)"
    " VALUES (NEW.id, NEW.channel, NEW.state, NEW.queue, NEW.created_at, NEW.closed_at); END",
    "CREATE TRIGGER report_conversation_update AFTER UPDATE OF channel, state, queue, closed_at"
    " ON conversations WHEN OLD.channel IS NOT NEW.channel OR OLD.state IS NOT NEW.state"
    " OR OLD.queue IS NOT NEW.queue OR OLD.closed_at IS NOT NEW.closed_at BEGIN"
    " UPDATE report_facts SET channel = NEW.channel, state = NEW.state, queue = NEW.queue,"
    " closed_at = NEW.closed_at,"
    " awaiting_since = CASE WHEN NEW.state = 'with_rep' THEN awaiting_since END"
    " WHERE conversation_id = NEW.id; END",
    "CREATE TRIGGER report_handover AFTER INSERT ON events WHEN NEW.kind = 'handover' BEGIN"
    " UPDATE report_facts SET handover_at = COALESCE(handover_at, NEW.created_at)"
    " WHERE conversation_id = NEW.conversation_id; END",
    "CREATE TRIGGER report_resolved AFTER INSERT ON events"
    " WHEN NEW.kind = 'conversation.resolved' BEGIN"
    " UPDATE report_facts SET resolved_at = NEW.created_at, resolved_how ="
    " CASE WHEN json_valid(NEW.data) AND json_type(NEW.data, '$.how') = 'text'"
    " THEN substr(json_extract(NEW.data, '$.how'), 1, 40) END"
    " WHERE conversation_id = NEW.conversation_id AND resolved_at IS NULL; END",
    "CREATE TRIGGER report_rep_reply AFTER INSERT ON messages"
    " WHEN NEW.author = 'rep' AND NEW.direction = 'outbound' BEGIN"
    " INSERT INTO report_responses (conversation_id, asked_at, replied_at)"
    " SELECT conversation_id, awaiting_since, NEW.created_at FROM report_facts"
    " WHERE conversation_id = NEW.conversation_id AND awaiting_since IS NOT NULL;"
    " UPDATE report_facts SET rep_reply_at = COALESCE(rep_reply_at, NEW.created_at),"
    " awaiting_since = NULL WHERE conversation_id = NEW.conversation_id; END",
    "CREATE TRIGGER report_customer_message AFTER INSERT ON messages"
    " WHEN NEW.author = 'customer' AND NEW.direction = 'inbound' BEGIN"
    " UPDATE report_facts SET awaiting_since = NEW.created_at"
    " WHERE conversation_id = NEW.conversation_id AND state = 'with_rep'"
    " AND rep_reply_at IS NOT NULL AND awaiting_since IS NULL; END",
    "CREATE TRIGGER report_rating_insert AFTER INSERT ON ratings BEGIN"
    " UPDATE report_facts SET score = NEW.score WHERE conversation_id = NEW.conversation_id; END",
    "CREATE TRIGGER report_rating_update AFTER UPDATE OF score ON ratings BEGIN"
    " UPDATE report_facts SET score = NEW.score WHERE conversation_id = NEW.conversation_id; END",
    "CREATE TRIGGER report_entry_taken AFTER UPDATE OF assigned_at ON queue_entries"
    " WHEN NEW.assigned_at IS NOT NULL AND OLD.assigned_at IS NULL AND NEW.from_rep_id IS NULL"
    " BEGIN UPDATE report_facts"
    " SET queue_wait_ms = COALESCE(queue_wait_ms, NEW.assigned_at - NEW.enqueued_at)"
    " WHERE conversation_id = NEW.conversation_id; END",
    "CREATE TRIGGER report_entry_ended AFTER UPDATE OF ended_at ON queue_entries"
    " WHEN NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL AND NEW.assigned_at IS NOT NULL"
    " BEGIN UPDATE report_facts"
    " SET handle_ms = COALESCE(handle_ms, 0) + NEW.ended_at - NEW.assigned_at"
    " WHERE conversation_id = NEW.conversation_id; END",
)
_SQLITE_TRIGGER_NAMES = (
    "report_conversation_insert", "report_conversation_update", "report_handover",
    "report_resolved", "report_rep_reply", "report_customer_message", "report_rating_insert",
    "report_rating_update", "report_entry_taken", "report_entry_ended",
)  # fmt: skip

_PG_TRIGGERS = (
    # An event's `how`, or NULL (its data is not JSON, or `how` not a string): a bad
    # payload must never fail the write it comes with.
    """CREATE FUNCTION report_how(data text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE how jsonb;
    BEGIN
      how := data::jsonb -> 'how';
      RETURN CASE WHEN jsonb_typeof(how) = 'string' THEN left(how #>> '{}', 40) END;
    EXCEPTION WHEN others THEN RETURN NULL;
    END $$""",
    """CREATE FUNCTION report_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO report_facts (conversation_id, channel, state, queue, created_at, closed_at)
        VALUES (NEW.id, NEW.channel, NEW.state, NEW.queue, NEW.created_at, NEW.closed_at);
      ELSE
        UPDATE report_facts SET channel = NEW.channel, state = NEW.state, queue = NEW.queue,
          closed_at = NEW.closed_at,
          awaiting_since = CASE WHEN NEW.state = 'with_rep' THEN awaiting_since END
        WHERE conversation_id = NEW.id;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_conversation_insert AFTER INSERT ON conversations"
    " FOR EACH ROW EXECUTE FUNCTION report_conversation()",
    "CREATE TRIGGER report_conversation_update AFTER UPDATE ON conversations FOR EACH ROW"
    " WHEN ((OLD.channel, OLD.state, OLD.queue, OLD.closed_at)"
    " IS DISTINCT FROM (NEW.channel, NEW.state, NEW.queue, NEW.closed_at))"
    " EXECUTE FUNCTION report_conversation()",
    """CREATE FUNCTION report_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.kind = 'handover' THEN
        UPDATE report_facts SET handover_at = COALESCE(handover_at, NEW.created_at)
        WHERE conversation_id = NEW.conversation_id;
      ELSE
        UPDATE report_facts SET resolved_at = NEW.created_at, resolved_how = report_how(NEW.data)
        WHERE conversation_id = NEW.conversation_id AND resolved_at IS NULL;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_event AFTER INSERT ON events FOR EACH ROW"
    " WHEN (NEW.kind IN ('handover', 'conversation.resolved'))"
    " EXECUTE FUNCTION report_event()",
    # The row is locked before it is read: a customer message and a rep reply written
    # at once by two nodes are counted in the order they commit.
    """CREATE FUNCTION report_message() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE waiting bigint;
    BEGIN
      IF NEW.author = 'rep' THEN
        SELECT awaiting_since INTO waiting FROM report_facts
        WHERE conversation_id = NEW.conversation_id FOR UPDATE;
        IF waiting IS NOT NULL THEN
          INSERT INTO report_responses (conversation_id, asked_at, replied_at)
          VALUES (NEW.conversation_id, waiting, NEW.created_at);
        END IF;
        UPDATE report_facts SET rep_reply_at = COALESCE(rep_reply_at, NEW.created_at),
          awaiting_since = NULL
        WHERE conversation_id = NEW.conversation_id;
      ELSE
        UPDATE report_facts SET awaiting_since = NEW.created_at
        WHERE conversation_id = NEW.conversation_id AND state = 'with_rep'
          AND rep_reply_at IS NOT NULL AND awaiting_since IS NULL;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_message AFTER INSERT ON messages FOR EACH ROW"
    " WHEN ((NEW.author = 'rep' AND NEW.direction = 'outbound')"
    " OR (NEW.author = 'customer' AND NEW.direction = 'inbound'))"
    " EXECUTE FUNCTION report_message()",
    """CREATE FUNCTION report_rating() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE report_facts SET score = NEW.score WHERE conversation_id = NEW.conversation_id;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_rating AFTER INSERT OR UPDATE OF score ON ratings FOR EACH ROW"
    " EXECUTE FUNCTION report_rating()",
    """CREATE FUNCTION report_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.assigned_at IS NOT NULL AND OLD.assigned_at IS NULL AND NEW.from_rep_id IS NULL THEN
        UPDATE report_facts
        SET queue_wait_ms = COALESCE(queue_wait_ms, NEW.assigned_at - NEW.enqueued_at)
        WHERE conversation_id = NEW.conversation_id;
      END IF;
      IF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL AND NEW.assigned_at IS NOT NULL THEN
        UPDATE report_facts SET handle_ms = COALESCE(handle_ms, 0) + NEW.ended_at - NEW.assigned_at
        WHERE conversation_id = NEW.conversation_id;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_entry AFTER UPDATE ON queue_entries FOR EACH ROW"
    " EXECUTE FUNCTION report_entry()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS report_conversation_insert ON conversations",
    "DROP TRIGGER IF EXISTS report_conversation_update ON conversations",
    "DROP TRIGGER IF EXISTS report_event ON events",
    "DROP TRIGGER IF EXISTS report_message ON messages",
    "DROP TRIGGER IF EXISTS report_rating ON ratings",
    "DROP TRIGGER IF EXISTS report_entry ON queue_entries",
    "DROP FUNCTION IF EXISTS report_conversation()",
    "DROP FUNCTION IF EXISTS report_event()",
    "DROP FUNCTION IF EXISTS report_message()",
    "DROP FUNCTION IF EXISTS report_rating()",
    "DROP FUNCTION IF EXISTS report_entry()",
    "DROP FUNCTION IF EXISTS report_how(text)",
)

_SQLITE_HOW = (
    "CASE WHEN json_valid(e.data) AND json_type(e.data, '$.how') = 'text'"
    " THEN substr(json_extract(e.data, '$.how'), 1, 40) END"
)
_PG_HOW = "report_how(e.data)"


def _held_since(conversation: str, before: str) -> str:
    """SQL: when the rep holding `conversation` at `before` took it: the first
    `rep.assigned` after its last release (a transfer between reps keeps it held)."""
    return (
        "COALESCE((SELECT MIN(a.created_at) FROM events a WHERE a.kind = 'rep.assigned'"
        f" AND a.conversation_id = {conversation} AND a.created_at <= {before}"
        " AND a.created_at > COALESCE((SELECT MAX(x.created_at) FROM events x"
        f" WHERE x.conversation_id = {conversation}"
        " AND x.kind IN ('rep.closed', 'rep.handed_back')"
        f" AND x.created_at <= {before}), 0)), 0)"
    )


def _backfill(how: str) -> tuple[str, ...]:
    """The facts of the conversations already stored, by the rules the triggers follow."""
    this = "report_facts.conversation_id"
    never = "9223372036854775807"
    return (
        "INSERT INTO report_facts (conversation_id, channel, state, queue, created_at, closed_at)"
        " SELECT id, channel, state, queue, created_at, closed_at FROM conversations",
        "UPDATE report_facts SET"
        " handover_at = (SELECT MIN(e.created_at) FROM events e WHERE e.kind = 'handover'"
        f" AND e.conversation_id = {this}),"
        " resolved_at = (SELECT e.created_at FROM events e WHERE e.kind = 'conversation.resolved'"
        f" AND e.conversation_id = {this} ORDER BY e.id LIMIT 1),"
        f" resolved_how = (SELECT {how} FROM events e WHERE e.kind = 'conversation.resolved'"
        f" AND e.conversation_id = {this} ORDER BY e.id LIMIT 1),"
        " rep_reply_at = (SELECT MIN(m.created_at) FROM messages m WHERE m.author = 'rep'"
        f" AND m.direction = 'outbound' AND m.conversation_id = {this}),"
        f" score = (SELECT r.score FROM ratings r WHERE r.conversation_id = {this}),"
        " queue_wait_ms = (SELECT q.assigned_at - q.enqueued_at FROM queue_entries q"
        f" WHERE q.conversation_id = {this} AND q.from_rep_id IS NULL"
        " AND q.assigned_at IS NOT NULL ORDER BY q.assigned_at, q.id LIMIT 1),"
        " handle_ms = (SELECT SUM(q.ended_at - q.assigned_at) FROM queue_entries q"
        f" WHERE q.conversation_id = {this} AND q.assigned_at IS NOT NULL"
        " AND q.ended_at IS NOT NULL)",
        # A customer message waiting for a rep now: after the last rep reply and since
        # the rep (or reps, a transfer) holding it now took it.
        "UPDATE report_facts SET awaiting_since = (SELECT MIN(m.created_at) FROM messages m"
        f" WHERE m.conversation_id = {this} AND m.author = 'customer'"
        " AND m.direction = 'inbound' AND m.created_at > (SELECT MAX(r.created_at)"
        f" FROM messages r WHERE r.conversation_id = {this} AND r.author = 'rep'"
        f" AND r.direction = 'outbound') AND m.created_at > {_held_since(this, never)})"
        " WHERE state = 'with_rep' AND rep_reply_at IS NOT NULL",
        # Each rep reply after the first: the first customer message since the previous
        # one, and since the holding reps took the conversation, waited for it.
        "INSERT INTO report_responses (conversation_id, asked_at, replied_at)"
        " SELECT r.conversation_id, MIN(m.created_at), r.created_at FROM"
        " (SELECT id, conversation_id, created_at, LAG(created_at) OVER"
        " (PARTITION BY conversation_id ORDER BY created_at, id) AS prev FROM messages"
        " WHERE author = 'rep' AND direction = 'outbound') r"
        " JOIN messages m ON m.conversation_id = r.conversation_id AND m.author = 'customer'"
        " AND m.direction = 'inbound' AND m.created_at > r.prev"
        " AND m.created_at <= r.created_at"
        f" AND m.created_at > {_held_since('r.conversation_id', 'r.created_at')}"
        " WHERE r.prev IS NOT NULL GROUP BY r.id, r.conversation_id, r.created_at ORDER BY r.id",
    )


def upgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_queue_entries_rep_conversation", ["rep_id", "conversation_id"], unique=False
        )
    op.create_table(
        "report_facts",
        sa.Column("conversation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("queue", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("handover_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_how", sa.String(length=40), nullable=True),
        sa.Column("rep_reply_at", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("queue_wait_ms", sa.BigInteger(), nullable=True),
        sa.Column("handle_ms", sa.BigInteger(), nullable=True),
        sa.Column("awaiting_since", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_report_facts_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_report_facts")),
    )
    op.create_index("ix_report_facts_created_at", "report_facts", ["created_at"], unique=False)
    op.create_table(
        "report_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.BigInteger(), nullable=False),
        sa.Column("replied_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_report_responses_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_responses")),
    )
    op.create_index(
        op.f("ix_report_responses_conversation_id"), "report_responses", ["conversation_id"]
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # The triggers first (PostgreSQL: report_how is used by the backfill), then the
    # backfill: Alembic runs a migration in one transaction, so no write falls between.
    for sql in _SQLITE_TRIGGERS if sqlite else _PG_TRIGGERS:
        op.execute(sql)
    for sql in _backfill(_SQLITE_HOW if sqlite else _PG_HOW):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for sql in _PG_DROP:
            op.execute(sql)
    op.drop_index(op.f("ix_report_responses_conversation_id"), table_name="report_responses")
    op.drop_table("report_responses")
    op.drop_index("ix_report_facts_created_at", table_name="report_facts")
    op.drop_table("report_facts")
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_entries_rep_conversation")
