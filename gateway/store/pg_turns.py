"""A turn's reads and writes on PostgreSQL in as few round trips as the locking allows.

Each round trip costs both the node and the database a wake-up, and several
nodes on a few cores spend more on those than on the statements themselves.
So a stored turn is four (BEGIN, one statement that locks the customer and the
conversation, one that writes everything, COMMIT), and what a turn starts from
under its gate is one read. The rules (what a turn changes) stay in rules.py,
the locking order (customer, then conversation) stays the store's.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import NotFoundError
from gateway.models import DeliveryStatus, Direction, Message
from gateway.protocols import FreshTurn, TurnRecord, TurnStored
from gateway.store.pg_linking import IdentityMoved
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    draft_meta,
    dumps,
    identity_from_row,
    message_from_row,
)
from gateway.store.rules import OUTBOX_LEASE_MS, turn_changes

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

# The customer's row, then the conversation's (FOR UPDATE OF locks them in that order,
# the order every other path takes); the customer's numbering comes with it.
_LOCK = (
    "SELECT v.*, c.last_seq AS _last_seq FROM customers c"
    " JOIN conversations v ON v.customer_id = c.id WHERE v.id = $1 FOR UPDATE OF c, v"
)

# Everything a turn writes, in one statement. Data-modifying CTEs all run, referenced
# or not; rows are inserted in the order of their arrays (ids follow it).
_WRITE = """
WITH s AS (
    UPDATE customers SET last_seq = $4 WHERE id = $2 AND cardinality($5::bigint[]) > 0
), m AS (
    INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel,
                          text, meta, handled, status, next_attempt_at, claimed_until,
                          created_at)
    SELECT $1, $2, t.seq, t.direction, t.author, t.channel, t.text, t.meta, true,
           CASE WHEN t.direction = 'outbound' THEN 'queued' END,
           CASE WHEN t.direction = 'outbound' THEN $3::bigint END,
           CASE WHEN t.direction = 'outbound' THEN $3::bigint + {lease} END, $3
    FROM unnest($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $13::text[])
         WITH ORDINALITY AS t(seq, direction, author, channel, text, meta, n)
    ORDER BY t.n
    RETURNING id, seq
), h AS (
    UPDATE messages SET handled = true WHERE id = $10
), e AS (
    INSERT INTO events (conversation_id, customer_id, kind, data, created_at)
    SELECT $1, $2, t.kind, t.data, $3
    FROM unnest($11::text[], $12::text[]) WITH ORDINALITY AS t(kind, data, n)
    ORDER BY t.n
), v AS (
    UPDATE conversations SET {sets} WHERE id = $1 RETURNING *
)
SELECT v.*, ARRAY(SELECT id FROM m ORDER BY seq) AS _message_ids FROM v
"""
_FIXED_PARAMS = 13


async def lock_turn(conn: Conn, conversation_id: int) -> dict[str, Any]:
    """Lock the conversation's customer, then the conversation; its row, with the
    customer's `_last_seq`."""
    row = await conn.fetchrow(_LOCK, conversation_id)
    if row is None:
        if await conn.fetchval("SELECT 1 FROM conversations WHERE id=$1", conversation_id):
            raise IdentityMoved  # merged into another customer meanwhile: run it again
        raise NotFoundError(f"no conversation {conversation_id}")
    return dict(row)


async def write_turn(
    conn: Conn,
    conv: dict[str, Any],
    turn: TurnRecord,
    events: list[tuple[str, str]],
    ts: int,
    lease_ms: int = OUTBOX_LEASE_MS,
) -> TurnStored:
    """Write `turn` on the conversation locked by `lock_turn` (version checked by the
    caller): its messages, numbered after the customer's last, `events` (kind, JSON
    data) and the state.changed event the rules add, the handled flag, the
    conversation's new columns. Its replies enter the outbox claimed for `lease_ms`."""
    cust = int(conv["customer_id"])
    first = int(conv["_last_seq"]) + 1
    drafts = turn.outbound
    changes = turn_changes(conv, turn, ts)
    if changes.state_event is not None:
        events = [*events, ("state.changed", dumps(changes.state_event))]
    updates = changes.updates
    sets = ", ".join(f"{k}=${i}" for i, k in enumerate(updates, start=_FIXED_PARAMS + 1))
    row = await conn.fetchrow(
        _WRITE.format(sets=sets, lease=int(lease_ms)),
        conv["id"], cust, ts, first + len(drafts) - 1,
        list(range(first, first + len(drafts))),
        [d.direction.value for d in drafts], [d.author.value for d in drafts],
        [d.channel.value for d in drafts], [d.text for d in drafts],
        turn.handled_message_id,
        [kind for kind, _ in events], [data for _, data in events],
        [draft_meta(d) for d in drafts],
        *updates.values(),
    )  # fmt: skip
    messages = tuple(
        message_from_row({
            "id": mid, "conversation_id": conv["id"], "customer_id": cust, "seq": seq,
            "direction": d.direction.value, "author": d.author.value,
            "channel": d.channel.value, "text": d.text, "external_id": None,
            "confidence": None, "start_ms": None, "end_ms": None, "meta": draft_meta(d),
            "status": DeliveryStatus.QUEUED.value if d.direction is Direction.OUTBOUND else None,
            "error_code": None, "created_at": ts,
        })
        for mid, seq, d in zip(row["_message_ids"], range(first, first + len(drafts)), drafts,
                               strict=True)
    )  # fmt: skip
    return TurnStored(conversation=conversation_from_row(row), messages=messages)


# What a turn starts from, in one read: the message's handled flag, the conversation,
# its customer with their identities, and (when asked) the customer's latest visible
# messages as a record array.
_FRESH = f"""
SELECT m.handled AS _handled, v.*,
       c.display_name AS _c_display_name, c.account_ref AS _c_account_ref,
       c.created_at AS _c_created_at,
       ARRAY(SELECT i FROM identities i WHERE i.customer_id = c.id ORDER BY i.id) AS _identities,
       CASE WHEN $2 > 0 THEN ARRAY(
           SELECT h FROM messages h
           WHERE h.customer_id = c.id AND h.direction != '{Direction.INTERNAL.value}'
           ORDER BY h.seq DESC LIMIT $2
       ) END AS _history
FROM messages m
JOIN conversations v ON v.id = m.conversation_id
JOIN customers c ON c.id = v.customer_id
WHERE m.id = $1
"""


async def fresh_turn(conn: Conn, message: Message, history: int) -> FreshTurn | None:
    """See `TurnGate.fresh`."""
    row = await conn.fetchrow(_FRESH, message.id, history)
    if row is None:
        raise NotFoundError(f"no message {message.id}")
    if row["_handled"]:
        return None
    customer = customer_from_row(
        {"id": row["customer_id"], "display_name": row["_c_display_name"],
         "account_ref": row["_c_account_ref"], "created_at": row["_c_created_at"]},
        [identity_from_row(i) for i in row["_identities"]],
    )  # fmt: skip
    recent = None
    if row["_history"] is not None:
        recent = tuple(message_from_row(h) for h in reversed(row["_history"]))
    return FreshTurn(customer=customer, conversation=conversation_from_row(row), history=recent)


__all__ = ["fresh_turn", "lock_turn", "write_turn"]
