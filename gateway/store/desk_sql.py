"""The desk's SQL, the same text on SQLite and PostgreSQL (`?` marks: `numbered`
turns them into asyncpg's `$n`), and its row converters.

A period's report facts are one range read of `report_facts` (one row per
conversation, kept by triggers in the transaction that writes what they count:
migration 0013) and one of its next responses (`report_responses`), with the
filters in the WHERE clause; five reads of the source tables (0009) cost ten times
more at 100,000 conversations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.desk.store import ApiToken, ConversationFacts, ConversationHit, SearchQuery
from gateway.store.rows import Row, to_dt, to_ms

FACT_COLUMNS = (
    "f.conversation_id, f.channel, f.state, f.queue, f.created_at, f.closed_at, f.handover_at,"
    " f.resolved_at, f.resolved_how, f.rep_reply_at, f.score, f.queue_wait_ms, f.handle_ms"
)


def facts_sql(
    since_ms: int, until_ms: int, *, channels: set[str] | None, queues: set[str] | None,
    rep_ids: set[int] | None,
) -> tuple[str, str, list[Any]] | None:  # fmt: skip
    """The reads of a period's facts and of their next responses (`?` marks, the same
    arguments for both); None when a filter is an empty set (nothing matches)."""
    where = ["f.created_at >= ?", "f.created_at < ?"]
    args: list[Any] = [since_ms, until_ms]
    for clause, values in (
        ("f.channel IN ({})", channels),
        ("f.queue IN ({})", queues),
        ("f.conversation_id IN (SELECT q.conversation_id FROM queue_entries q"
         " WHERE q.rep_id IN ({}))", rep_ids),
    ):  # fmt: skip
        if values is None:
            continue
        if not values:
            return None
        where.append(clause.format(", ".join("?" * len(values))))
        args += sorted(values)
    cond = " AND ".join(where)
    return (
        f"SELECT {FACT_COLUMNS} FROM report_facts f WHERE {cond}",
        "SELECT r.conversation_id, r.asked_at, r.replied_at FROM report_responses r"
        f" JOIN report_facts f ON f.conversation_id = r.conversation_id WHERE {cond}"
        " ORDER BY r.id",
        args,
    )


CANNED = "SELECT id, name, text FROM canned_responses ORDER BY name"
ADD_CANNED = "INSERT INTO canned_responses (name, text, created_by, created_at) VALUES (?,?,?,?)"
DELETE_CANNED = "DELETE FROM canned_responses WHERE id = ?"
RATINGS_OF = (
    "SELECT conversation_id, score FROM ratings WHERE customer_id = ? AND score IS NOT NULL"
    " ORDER BY conversation_id DESC"
)
OPEN_CONVERSATION = (
    "SELECT id FROM conversations WHERE customer_id = ? AND state != 'closed'"
    " ORDER BY id DESC LIMIT 1"
)
WORKED_ON = "SELECT 1 FROM queue_entries WHERE conversation_id = ? AND rep_id = ? LIMIT 1"
ADD_TOKEN = "INSERT INTO api_tokens (name, token_hash, created_by, created_at) VALUES (?,?,?,?)"
TOKENS = "SELECT * FROM api_tokens ORDER BY id DESC"
TOKEN_BY_HASH = "SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"


def search_sql(query: SearchQuery, *, sqlite: bool) -> tuple[str, list[Any]]:
    """The search's SQL (`?` marks) and its arguments; the text clause is the store's
    own full-text engine: FTS5 on SQLite, a tsvector match (GIN index) on PostgreSQL."""
    where: list[str] = []
    args: list[Any] = []
    if query.text and (words := re.findall(r"\w+", query.text)):
        if sqlite:
            # Each word as an FTS5 string (no operators from user input), all required.
            where.append(
                "c.id IN (SELECT m.conversation_id FROM messages m WHERE m.id IN"
                " (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?))"
            )
            args.append(" ".join(f'"{w}"' for w in words))
        else:
            where.append(
                "c.id IN (SELECT m.conversation_id FROM messages m WHERE"
                " to_tsvector('simple', m.text) @@ plainto_tsquery('simple', ?))"
            )
            args.append(" ".join(words))
    if query.customer:
        where.append(
            "(LOWER(cu.display_name) LIKE ? OR c.customer_id IN"
            " (SELECT i.customer_id FROM identities i WHERE i.value = ?))"
        )
        escaped = query.customer.lower().replace("%", "").replace("_", "")
        args += [f"%{escaped}%", query.customer]
    for column, value in (("c.channel", query.channel), ("c.state", query.state),
                          ("c.queue", query.queue)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            args.append(str(value))
    if query.customer_id is not None:
        where.append("c.customer_id = ?")
        args.append(query.customer_id)
    if query.since is not None:
        where.append("c.created_at >= ?")
        args.append(to_ms(query.since))
    if query.until is not None:
        where.append("c.created_at < ?")
        args.append(to_ms(query.until))
    if query.worked_by is not None:
        where.append("c.id IN (SELECT e.conversation_id FROM queue_entries e WHERE e.rep_id = ?)")
        args.append(query.worked_by)
    sql = (
        "SELECT c.id, c.customer_id, cu.display_name, c.channel, c.state, c.queue,"
        " c.created_at, c.closed_at FROM conversations c"
        " JOIN customers cu ON cu.id = c.customer_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY c.id DESC LIMIT ?"
    )
    return sql, [*args, query.limit]


def hit_from_row(row: Row) -> ConversationHit:
    return ConversationHit(
        id=row["id"],
        customer_id=row["customer_id"],
        customer=row["display_name"],
        channel=row["channel"],
        state=row["state"],
        queue=row["queue"],
        created_at=to_dt(row["created_at"]),
        closed_at=None if row["closed_at"] is None else to_dt(row["closed_at"]),
    )


def numbered(sql: str) -> str:
    """`?` marks as PostgreSQL's `$1, $2, ...` (the desk's SQL has no `?` in literals;
    user input is always an argument)."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def token_from_row(row: Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        created_by=row["created_by"],
        created_at=to_dt(row["created_at"]),
        revoked_at=None if row["revoked_at"] is None else to_dt(row["revoked_at"]),
    )


def facts_from_rows(
    rows: Iterable[Sequence[Any]], responses: Iterable[Sequence[Any]]
) -> list[ConversationFacts]:
    """`ConversationFacts` from the rows of the two reads (positional, as `facts_sql`
    lists the columns: 100,000 dicts would cost more than the reads)."""
    answered: dict[int, list[tuple[int, int]]] = {}
    for cid, asked_at, replied_at in responses:
        answered.setdefault(cid, []).append((asked_at, replied_at))
    waits = {cid: tuple(pairs) for cid, pairs in answered.items()}
    make, get, none = ConversationFacts._make, waits.get, ()
    return [make((*row, get(row[0], none))) for row in rows]
