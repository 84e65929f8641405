"""The desk's SQL, the same text on SQLite and PostgreSQL (`?` marks: `numbered`
turns them into asyncpg's `$n`), and its row converters."""

from __future__ import annotations

import json
import re

from gateway.desk.store import ApiToken, ConversationFacts
from gateway.store.rows import Row, to_dt

RESOLVED = "conversation.resolved"
HANDOVER = "handover"

FACTS = f"""
SELECT c.id, c.channel, c.state, c.queue, c.created_at, c.closed_at,
  (SELECT MIN(e.created_at) FROM events e
    WHERE e.kind = '{HANDOVER}' AND e.conversation_id = c.id) AS handover_at,
  (SELECT e.created_at FROM events e
    WHERE e.kind = '{RESOLVED}' AND e.conversation_id = c.id
    ORDER BY e.id LIMIT 1) AS resolved_at,
  (SELECT e.data FROM events e
    WHERE e.kind = '{RESOLVED}' AND e.conversation_id = c.id
    ORDER BY e.id LIMIT 1) AS resolved_data,
  (SELECT MIN(m.created_at) FROM messages m
    WHERE m.conversation_id = c.id AND m.author = 'rep' AND m.direction = 'outbound')
    AS rep_reply_at,
  (SELECT r.score FROM ratings r WHERE r.conversation_id = c.id) AS score
FROM conversations c
WHERE c.created_at >= ? AND c.created_at < ?
"""

WORKED_ON = "SELECT 1 FROM queue_entries WHERE conversation_id = ? AND rep_id = ? LIMIT 1"
ADD_TOKEN = "INSERT INTO api_tokens (name, token_hash, created_by, created_at) VALUES (?,?,?,?)"
TOKENS = "SELECT * FROM api_tokens ORDER BY id DESC"
TOKEN_BY_HASH = "SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"


def numbered(sql: str) -> str:
    """`?` marks as PostgreSQL's `$1, $2, ...` (the desk's SQL has no `?` in literals)."""
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


def facts_from_row(row: Row) -> ConversationFacts:
    how = None
    if row["resolved_data"]:
        try:
            how = json.loads(row["resolved_data"]).get("how")
        except (ValueError, AttributeError):
            how = None
    return ConversationFacts(
        row["id"], row["channel"], row["state"], row["queue"], row["created_at"],
        row["closed_at"], row["handover_at"], row["resolved_at"],
        how if isinstance(how, str) else None, row["rep_reply_at"], row["score"],
    )  # fmt: skip
