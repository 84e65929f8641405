"""The PostgreSQL store's reads: plain coroutines of an asyncpg connection
(the same queries as sqlite_reads.py, the same row converters from rows.py)."""

from __future__ import annotations

from typing import Any

from gateway.errors import NotFoundError
from gateway.models import ChannelKind, Conversation, Customer, Direction, Event, Identity, Message
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    event_from_row,
    identity_from_row,
    message_from_row,
)

Conn = Any  # asyncpg.Connection or a pool proxy (asyncpg ships no type hints)

_VISIBLE = f"customer_id=$1 AND direction != '{Direction.INTERNAL.value}'"


async def customer(conn: Conn, customer_id: int) -> Customer:
    row = await conn.fetchrow("SELECT * FROM customers WHERE id=$1", customer_id)
    if row is None:
        raise NotFoundError(f"no customer {customer_id}")
    idents = await conn.fetch(
        "SELECT kind, value, verified FROM identities WHERE customer_id=$1 ORDER BY id",
        customer_id,
    )
    return customer_from_row(row, [identity_from_row(r) for r in idents])


async def customer_by_identity(conn: Conn, identity: Identity) -> Customer | None:
    customer_id = await conn.fetchval(
        "SELECT customer_id FROM identities WHERE kind=$1 AND value=$2",
        identity.kind.value,
        identity.value,
    )
    return None if customer_id is None else await customer(conn, int(customer_id))


async def conversation(conn: Conn, conversation_id: int) -> Conversation:
    row = await conn.fetchrow("SELECT * FROM conversations WHERE id=$1", conversation_id)
    if row is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    return conversation_from_row(row)


async def history(conn: Conn, customer_id: int, after_seq: int | None, limit: int) -> list[Message]:
    """The customer's visible messages, oldest first: the latest `limit`, or those
    after `after_seq` (both on the (customer_id, seq) unique index)."""
    if after_seq is None:
        rows = await conn.fetch(
            f"SELECT * FROM messages WHERE {_VISIBLE} ORDER BY seq DESC LIMIT $2",
            customer_id,
            limit,
        )
        rows = list(reversed(rows))
    else:
        rows = await conn.fetch(
            f"SELECT * FROM messages WHERE {_VISIBLE} AND seq > $2 ORDER BY seq LIMIT $3",
            customer_id,
            after_seq,
            limit,
        )
    return [message_from_row(r) for r in rows]


async def conversation_messages(conn: Conn, conversation_id: int) -> list[Message]:
    rows = await conn.fetch(
        "SELECT * FROM messages WHERE conversation_id=$1 ORDER BY seq", conversation_id
    )
    return [message_from_row(r) for r in rows]


async def events(conn: Conn, conversation_id: int) -> list[Event]:
    rows = await conn.fetch(
        "SELECT * FROM events WHERE conversation_id=$1 ORDER BY id", conversation_id
    )
    return [event_from_row(r) for r in rows]


async def count_events(conn: Conn, customer_id: int, kind: str, since_ms: int) -> int:
    n = await conn.fetchval(
        "SELECT COUNT(*) FROM events WHERE customer_id=$1 AND kind=$2 AND created_at>=$3",
        customer_id,
        kind,
        since_ms,
    )
    return int(n)


async def unhandled_messages(conn: Conn, older_than_ms: int | None = None) -> list[Message]:
    """Inbound messages never answered; with `older_than_ms`, only those stored before it."""
    rows = await conn.fetch(
        "SELECT * FROM messages WHERE handled=false AND direction='inbound'"
        " AND created_at <= $1 ORDER BY id",
        older_than_ms if older_than_ms is not None else 2**62,
    )
    return [message_from_row(r) for r in rows]


async def message_by_external_id(
    conn: Conn, channel: ChannelKind, external_id: str
) -> Message | None:
    row = await conn.fetchrow(
        "SELECT * FROM messages WHERE channel=$1 AND external_id=$2", channel.value, external_id
    )
    return None if row is None else message_from_row(row)


async def opted_out(conn: Conn, identity: Identity) -> bool:
    row = await conn.fetchrow(
        "SELECT opted_out_at FROM identities WHERE kind=$1 AND value=$2",
        identity.kind.value,
        identity.value,
    )
    return row is not None and row["opted_out_at"] is not None


async def message_handled(conn: Conn, message_id: int) -> bool:
    return bool(await conn.fetchval("SELECT handled FROM messages WHERE id=$1", message_id))
