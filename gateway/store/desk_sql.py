"""The desk's SQL, the same text on SQLite and PostgreSQL (`?` marks: `numbered`
turns them into asyncpg's `$n`), and its row converters.

A period's report facts are one range read of `report_facts` (one row per
conversation, kept by triggers in the transaction that writes what they count:
migration 0013) and one of its next responses (`report_responses`), with the
filters in the WHERE clause; five reads of the source tables (0009) cost ten times
more at 100,000 conversations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.desk.cost import ConversationUsage, UsageRead
from gateway.desk.gaps import HandoverQuestion
from gateway.desk.store import ApiToken, ConversationHit, SearchQuery
from gateway.store.rows import Row, to_dt, to_ms

HANDOVER = "handover"

# The facts come back as columns: one row, each column's values joined into one
# string by the database (NULL as "nan"; text on a control character no name holds),
# parsed by numpy (gateway/desk/facts.py). 100,000 rows of 13 Python objects each
# cost three times more to make and take apart than to read.
NUMBERS = ("conversation_id", "created_at", "closed_at", "handover_at", "resolved_at",
           "rep_reply_at", "score", "queue_wait_ms", "handle_ms")  # fmt: skip
TEXTS = ("channel", "queue", "resolved_how")
TEXT_SEP = "\x1f"


def _joined(columns: Sequence[str], *, sqlite: bool, text: bool = False) -> str:
    """The SELECT list joining each column's values (in the same row order: one scan)."""
    join = "group_concat" if sqlite else "string_agg"
    sep = ("char(31)" if sqlite else "chr(31)") if text else "','"
    null = "''" if text else "'nan'"
    return ", ".join(f"{join}(COALESCE(CAST({c} AS TEXT), {null}), {sep})" for c in columns)


def period_where(
    since_ms: int, until_ms: int, *, channels: set[str] | None, queues: set[str] | None,
    rep_ids: set[int] | None,
) -> tuple[str, list[Any]] | None:  # fmt: skip
    """The WHERE condition on `report_facts f` selecting a period's conversations (created
    in [since_ms, until_ms)) narrowed by the filters, with its arguments (`?` marks); None
    when a filter is an empty set (nothing matches). The facts and the cost section's
    usage read both select by it, so they count the same conversations."""
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
    return " AND ".join(where), args


def facts_sql(
    since_ms: int, until_ms: int, *, channels: set[str] | None, queues: set[str] | None,
    rep_ids: set[int] | None, sqlite: bool,
) -> tuple[str, str, list[Any]] | None:  # fmt: skip
    """The reads of a period's facts (NUMBERS then TEXTS, each joined) and of their next
    responses (asked at, replied at; joined), with `?` marks and the same arguments
    for both; None when a filter is an empty set (nothing matches)."""
    selected = period_where(since_ms, until_ms, channels=channels, queues=queues,
                            rep_ids=rep_ids)  # fmt: skip
    if selected is None:
        return None
    cond, args = selected
    facts = (
        _joined([f"f.{c}" for c in NUMBERS], sqlite=sqlite)
        + ", "
        + _joined([f"f.{c}" for c in TEXTS], sqlite=sqlite, text=True)
    )
    return (
        f"SELECT {facts} FROM report_facts f WHERE {cond}",
        f"SELECT {_joined(['r.asked_at', 'r.replied_at'], sqlite=sqlite)} FROM report_responses r"
        f" JOIN report_facts f ON f.conversation_id = r.conversation_id WHERE {cond}",
        args,
    )


# Cost (gateway/desk/cost.py): some conversations' usage, summed, and priced per
# conversation in SQL (the unit prices are arguments: only id, cost pairs come back);
# their reps' handling time. Which conversations: `{ids}`, a condition on
# conversation_id (a range of ids, or those `period_where` selects). Each usage row is
# priced, then a conversation's rows summed, in the order they are read (the index
# on conversation_id). PostgreSQL sums BIGINTs as NUMERIC: cast.
_QUANTITIES = ("llm_prompt_tokens", "llm_completion_tokens", "stt_ms", "tts_ms",
               "sms_segments", "call_s")  # fmt: skip
USAGE_TOTALS = (
    "SELECT "
    + ", ".join(f"CAST(COALESCE(SUM({c}), 0) AS BIGINT)" for c in _QUANTITIES)
    + " FROM usage WHERE {ids}"
)
USAGE_COST = (
    "SELECT conversation_id, SUM("
    + " + ".join(f"{c} * CAST(? AS DOUBLE PRECISION)" for c in _QUANTITIES)
    + ") FROM usage WHERE {ids} GROUP BY conversation_id"
)
REP_TIME = (
    "SELECT conversation_id, CAST(SUM(ended_at - assigned_at) AS BIGINT) FROM queue_entries"
    " WHERE {ids} AND rep_id IS NOT NULL"
    " AND assigned_at IS NOT NULL AND ended_at IS NOT NULL GROUP BY conversation_id"
)
ID_RANGE = "conversation_id BETWEEN ? AND ?"
IN_PERIOD = "conversation_id IN (SELECT f.conversation_id FROM report_facts f WHERE {cond})"
# A period's usage: when the conversations `period_where` selects are all those of
# their id range (the usual unfiltered period: the ids follow creation), the range is
# read (the index on conversation_id alone, 2-3 times cheaper than IN_PERIOD at
# 100,000 conversations); otherwise IN_PERIOD. The same rows either way.
SELECTED_IDS = (
    "SELECT MIN(f.conversation_id), MAX(f.conversation_id), COUNT(*) FROM report_facts f"
    " WHERE {cond}"
)
RANGE_COUNT = "SELECT COUNT(*) FROM report_facts WHERE conversation_id BETWEEN ? AND ?"


def period_ids(
    cond: str, args: list[Any], selected: Sequence[Any], in_range: int
) -> tuple[str, list[Any]]:
    """The condition on conversation_id (and its arguments) for the usage of the
    conversations `cond` selects, from SELECTED_IDS's row and RANGE_COUNT's count."""
    first, last, count = selected
    if count == in_range:
        return ID_RANGE, [first, last]
    return IN_PERIOD.format(cond=cond), args


def usage_sql(ids: str) -> tuple[str, str, str]:
    """USAGE_TOTALS, USAGE_COST and REP_TIME over the conversations `ids` selects
    (`?` marks: USAGE_COST takes the unit prices first, then the condition's arguments)."""
    return (USAGE_TOTALS.format(ids=ids), USAGE_COST.format(ids=ids), REP_TIME.format(ids=ids))


# Help-centre gaps (gateway/desk/gaps.py): the period's handovers, each with the
# customer's last message before it (the question the agent could not answer).
HANDOVER_QUESTIONS = (
    "SELECT h.conversation_id, c.channel, h.data, (SELECT m.text FROM messages m"
    " WHERE m.author = 'customer' AND m.direction = 'inbound'"
    " AND m.conversation_id = h.conversation_id AND m.created_at <= h.created_at"
    " ORDER BY m.created_at DESC, m.id DESC LIMIT 1)"
    f" FROM events h JOIN conversations c ON c.id = h.conversation_id WHERE h.kind = '{HANDOVER}'"
    " AND c.created_at >= ? AND c.created_at < ? ORDER BY h.id DESC LIMIT ?"
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


# PostgreSQL: the planner cannot tell a rare word from a common one when it has no
# statistics for it (an order number: "order 4242"), takes it for common and walks
# every conversation newest first to find the one that has it (10-40 ms at 100,000,
# growing with the store). So one statement with two branches, one run: a probe takes
# at most RARE + 1 matching messages (the GIN index for a rare word; a scan that stops
# at once for a common one); under RARE, the conversations are fetched by those ids;
# otherwise the usual walk, which finds a common word's conversations at once.
RARE = 200
PG_WORDS = "plainto_tsquery('simple', ?)"
PG_MATCHES = "SELECT conversation_id FROM messages WHERE to_tsvector('simple', text) @@ {q}"


def search_words(text: str | None) -> str | None:
    """The words searched for (letters and digits only: no operators from user input)."""
    words = re.findall(r"\w+", text or "")
    return " ".join(words) if words else None


def search_sql(query: SearchQuery, *, sqlite: bool) -> tuple[str, list[Any]]:
    """The search's SQL (`?` marks) and its arguments; the text clause is the store's
    own full-text engine: FTS5 on SQLite, a tsvector match (GIN index) on PostgreSQL."""
    words = search_words(query.text)
    if words is None or sqlite:
        return _search_sql(query, sqlite=sqlite)
    # The gates are one-time filters: PostgreSQL runs only the branch whose gate holds.
    hits = "c.id = ANY(ARRAY(SELECT conversation_id FROM hits))"
    rare, rare_args = _search_sql(query, sqlite=False, text=hits, gate="(SELECT yes FROM rare)")
    common, common_args = _search_sql(query, sqlite=False, gate="NOT (SELECT yes FROM rare)")
    sql = (
        f"WITH hits AS MATERIALIZED ({PG_MATCHES.format(q=PG_WORDS)} LIMIT ?),"
        f" rare AS (SELECT count(*) <= {RARE} AS yes FROM hits)"
        f" SELECT * FROM (({rare}) UNION ALL ({common})) AS found ORDER BY id DESC"
    )
    return sql, [words, RARE + 1, *rare_args, *common_args]


def _search_sql(
    query: SearchQuery, *, sqlite: bool, text: str | None = None, gate: str | None = None
) -> tuple[str, list[Any]]:
    where: list[str] = [] if gate is None else [gate]
    args: list[Any] = []
    if text is not None:
        where.append(text)
    elif query.text and (words := re.findall(r"\w+", query.text)):
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
                f" to_tsvector('simple', m.text) @@ {PG_WORDS})"
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
    if query.label is not None:
        where.append(
            "c.id IN (SELECT cl.conversation_id FROM conversation_labels cl"
            " JOIN labels l ON l.id = cl.label_id WHERE l.name = ?)"
        )
        args.append(query.label)
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


def usage_prices(prices: Sequence[float]) -> tuple[float, ...]:
    """The unit prices USAGE_COST takes (one per summed column; missing ones 0)."""
    return tuple(float(p) for p in prices[: len(_QUANTITIES)]) + (0.0,) * max(
        0, len(_QUANTITIES) - len(prices)
    )


def usage_read(
    totals: Sequence[Any], costs: Iterable[Sequence[Any]], rep_time: Iterable[Sequence[Any]]
) -> UsageRead:
    """A `UsageRead` from the rows of USAGE_TOTALS (one), USAGE_COST and REP_TIME."""
    # The sums are never null (summed columns are NOT NULL, groups never empty): the
    # rows (tuples, asyncpg records) are the pairs, as they come.
    rep_ms: dict[int, int] = dict(rep_time)  # type: ignore[arg-type]
    summed = ConversationUsage._make((*(int(v or 0) for v in tuple(totals)), sum(rep_ms.values())))
    return UsageRead(summed, dict(costs), rep_ms)  # type: ignore[arg-type]


def handover_from_row(row: Sequence[Any]) -> HandoverQuestion:
    try:
        brief = json.loads(row[2] or "{}")
    except ValueError:
        brief = {}
    return HandoverQuestion(
        conversation_id=int(row[0]), channel=str(row[1]),
        reason=str(brief.get("reason", "")) if isinstance(brief, dict) else "",
        confidence=float(brief.get("confidence", 1.0)) if isinstance(brief, dict) else 1.0,
        question=row[3] or "",
    )  # fmt: skip
