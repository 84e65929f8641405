"""report reasons and reps: each conversation's first handover reason in report_facts,
the reps who took each conversation (report_rep_conversations), and a deleted rating
cleared from report_facts, kept by triggers in the writing transaction and filled
from the stored rows

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The reason of a handover event's brief, as the reports read it before this
# migration: SQLite's JSON functions; on PostgreSQL a function that answers NULL for
# data that is not JSON (a bad payload must never fail the write it comes with).
_SQLITE_REASON = "CASE WHEN json_valid(e.data) THEN json_extract(e.data, '$.reason') END"
_PG_REASON = "report_reason(e.data)"


def _reason_of(reason: str, conversation: str, first_at: str) -> str:
    """SQL: the reason of `conversation`'s first handover (the one at `first_at`,
    report_facts.handover_at; the lowest id among several at that time)."""
    return (
        f"(SELECT {reason} FROM events e WHERE e.conversation_id = {conversation}"
        f" AND e.kind = 'handover' AND e.created_at = {first_at} ORDER BY e.id LIMIT 1)"
    )


def _set_reason(reason: str, row: str, *, inserted: bool = False) -> str:
    """SQL: recompute the handover reason of the conversation of `row` (NEW or OLD). On
    an insert the first handover may be this one, whichever trigger runs first."""
    first_at = "COALESCE(report_facts.handover_at, NEW.created_at)" if inserted else (
        "report_facts.handover_at"
    )  # fmt: skip
    found = _reason_of(reason, f"{row}.conversation_id", first_at)
    return (
        f"UPDATE report_facts SET handover_reason = {found}"
        f" WHERE conversation_id = {row}.conversation_id;"
    )


# Each rep who took a conversation: how many of its queue entries that rep took (a row
# at 0 is a rep whose entries were all deleted or moved: never read).
_SQLITE_REP_ADD = (
    "INSERT INTO report_rep_conversations (conversation_id, rep_id, n)"
    " SELECT NEW.conversation_id, NEW.rep_id, 1 WHERE NEW.rep_id IS NOT NULL"
    " ON CONFLICT (conversation_id, rep_id) DO UPDATE SET n = n + 1;"
)
_SQLITE_REP_REMOVE = (
    "UPDATE report_rep_conversations SET n = n - 1 WHERE conversation_id = OLD.conversation_id"
    " AND rep_id = OLD.rep_id;"
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER report_reason_insert AFTER INSERT ON events WHEN NEW.kind = 'handover'"
    f" BEGIN {_set_reason(_SQLITE_REASON, 'NEW', inserted=True)} END",
    "CREATE TRIGGER report_reason_update AFTER UPDATE OF conversation_id, kind, data, created_at"
    " ON events WHEN OLD.kind = 'handover' OR NEW.kind = 'handover'"
    f" BEGIN {_set_reason(_SQLITE_REASON, 'OLD')} {_set_reason(_SQLITE_REASON, 'NEW')} END",
    "CREATE TRIGGER report_reason_delete AFTER DELETE ON events WHEN OLD.kind = 'handover'"
    f" BEGIN {_set_reason(_SQLITE_REASON, 'OLD')} END",
    "CREATE TRIGGER report_rating_delete AFTER DELETE ON ratings BEGIN"
    " UPDATE report_facts SET score = NULL WHERE conversation_id = OLD.conversation_id; END",
    "CREATE TRIGGER report_rating_move AFTER UPDATE OF conversation_id ON ratings"
    " WHEN OLD.conversation_id IS NOT NEW.conversation_id BEGIN"
    " UPDATE report_facts SET score = NULL WHERE conversation_id = OLD.conversation_id;"
    " UPDATE report_facts SET score = NEW.score WHERE conversation_id = NEW.conversation_id; END",
    f"CREATE TRIGGER report_rep_insert AFTER INSERT ON queue_entries BEGIN {_SQLITE_REP_ADD} END",
    "CREATE TRIGGER report_rep_delete AFTER DELETE ON queue_entries WHEN OLD.rep_id IS NOT NULL"
    f" BEGIN {_SQLITE_REP_REMOVE} END",
    "CREATE TRIGGER report_rep_update AFTER UPDATE OF conversation_id, rep_id ON queue_entries"
    " WHEN OLD.conversation_id IS NOT NEW.conversation_id OR OLD.rep_id IS NOT NEW.rep_id"
    f" BEGIN {_SQLITE_REP_REMOVE} {_SQLITE_REP_ADD} END",
)
_SQLITE_TRIGGER_NAMES = (
    "report_reason_insert", "report_reason_update", "report_reason_delete",
    "report_rating_delete", "report_rating_move", "report_rep_insert", "report_rep_delete",
    "report_rep_update",
)  # fmt: skip

_PG_TRIGGERS = (
    # As the reports' read did (`->>` on json): NULL where the data is not JSON.
    """CREATE FUNCTION report_reason(data text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      RETURN data::json ->> 'reason';
    EXCEPTION WHEN others THEN RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION report_handover_reason() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_set_reason(_PG_REASON, "NEW", inserted=True)}
        RETURN NULL;
      END IF;
      {_set_reason(_PG_REASON, "OLD")}
      IF TG_OP = 'UPDATE' THEN
        {_set_reason(_PG_REASON, "NEW")}
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_reason_insert AFTER INSERT ON events FOR EACH ROW"
    " WHEN (NEW.kind = 'handover') EXECUTE FUNCTION report_handover_reason()",
    "CREATE TRIGGER report_reason_update AFTER UPDATE ON events FOR EACH ROW"
    " WHEN ((OLD.kind = 'handover' OR NEW.kind = 'handover')"
    " AND (OLD.conversation_id, OLD.kind, OLD.data, OLD.created_at)"
    " IS DISTINCT FROM (NEW.conversation_id, NEW.kind, NEW.data, NEW.created_at))"
    " EXECUTE FUNCTION report_handover_reason()",
    "CREATE TRIGGER report_reason_delete AFTER DELETE ON events FOR EACH ROW"
    " WHEN (OLD.kind = 'handover') EXECUTE FUNCTION report_handover_reason()",
    """CREATE FUNCTION report_rating_gone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE report_facts SET score = NULL WHERE conversation_id = OLD.conversation_id;
      IF TG_OP = 'UPDATE' THEN
        UPDATE report_facts SET score = NEW.score WHERE conversation_id = NEW.conversation_id;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_rating_delete AFTER DELETE ON ratings FOR EACH ROW"
    " EXECUTE FUNCTION report_rating_gone()",
    "CREATE TRIGGER report_rating_move AFTER UPDATE ON ratings FOR EACH ROW"
    " WHEN (OLD.conversation_id IS DISTINCT FROM NEW.conversation_id)"
    " EXECUTE FUNCTION report_rating_gone()",
    """CREATE FUNCTION report_rep() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' AND OLD.rep_id IS NOT NULL THEN
        UPDATE report_rep_conversations SET n = n - 1
        WHERE conversation_id = OLD.conversation_id AND rep_id = OLD.rep_id;
      END IF;
      IF TG_OP <> 'DELETE' AND NEW.rep_id IS NOT NULL THEN
        INSERT INTO report_rep_conversations (conversation_id, rep_id, n)
        VALUES (NEW.conversation_id, NEW.rep_id, 1)
        ON CONFLICT (conversation_id, rep_id) DO UPDATE SET n = report_rep_conversations.n + 1;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER report_rep AFTER INSERT OR DELETE ON queue_entries FOR EACH ROW"
    " EXECUTE FUNCTION report_rep()",
    "CREATE TRIGGER report_rep_update AFTER UPDATE ON queue_entries FOR EACH ROW"
    " WHEN ((OLD.conversation_id, OLD.rep_id) IS DISTINCT FROM (NEW.conversation_id, NEW.rep_id))"
    " EXECUTE FUNCTION report_rep()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS report_reason_insert ON events",
    "DROP TRIGGER IF EXISTS report_reason_update ON events",
    "DROP TRIGGER IF EXISTS report_reason_delete ON events",
    "DROP TRIGGER IF EXISTS report_rating_delete ON ratings",
    "DROP TRIGGER IF EXISTS report_rating_move ON ratings",
    "DROP TRIGGER IF EXISTS report_rep ON queue_entries",
    "DROP TRIGGER IF EXISTS report_rep_update ON queue_entries",
    "DROP FUNCTION IF EXISTS report_handover_reason()",
    "DROP FUNCTION IF EXISTS report_rating_gone()",
    "DROP FUNCTION IF EXISTS report_rep()",
    "DROP FUNCTION IF EXISTS report_reason(text)",
)


def _backfill(reason: str) -> tuple[str, ...]:
    """The rows already stored, by the rules the triggers follow."""
    return (
        "UPDATE report_facts SET handover_reason = "
        + _reason_of(reason, "report_facts.conversation_id", "report_facts.handover_at")
        + " WHERE handover_at IS NOT NULL",
        "UPDATE report_facts SET score = (SELECT r.score FROM ratings r"
        " WHERE r.conversation_id = report_facts.conversation_id)",
        "INSERT INTO report_rep_conversations (conversation_id, rep_id, n)"
        " SELECT conversation_id, rep_id, COUNT(*) FROM queue_entries WHERE rep_id IS NOT NULL"
        " GROUP BY conversation_id, rep_id",
    )


def upgrade() -> None:
    op.add_column("report_facts", sa.Column("handover_reason", sa.Text(), nullable=True))
    op.create_table(
        "report_rep_conversations",
        sa.Column("conversation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rep_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_report_rep_conversations_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["rep_id"], ["reps.id"], name=op.f("fk_report_rep_conversations_rep_id_reps")
        ),
        sa.PrimaryKeyConstraint(
            "conversation_id", "rep_id", name=op.f("pk_report_rep_conversations")
        ),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Triggers (PostgreSQL: report_reason is used by the backfill), then the backfill,
    # in the migration's one transaction.
    for sql in _SQLITE_TRIGGERS if sqlite else _PG_TRIGGERS:
        op.execute(sql)
    for sql in _backfill(_SQLITE_REASON if sqlite else _PG_REASON):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for sql in _PG_DROP:
            op.execute(sql)
    op.drop_table("report_rep_conversations")
    # Not a batch (a copy of the table): SQLite 3.35+ drops a column in place.
    op.execute("ALTER TABLE report_facts DROP COLUMN handover_reason")
