"""The SQLite store's reads: plain functions of a (read-only) connection."""

from __future__ import annotations

import sqlite3
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

_VISIBLE = f"customer_id=? AND direction != '{Direction.INTERNAL.value}'"


def customer_row(conn: sqlite3.Connection, customer_id: int) -> dict[str, Any]:
    """The customer's row (a dict) with its `identities`, in the order they were added."""
    row: dict[str, Any] | None = conn.execute(
        "SELECT * FROM customers WHERE id=?", (customer_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no customer {customer_id}")
    idents = conn.execute(
        "SELECT kind, value, verified FROM identities WHERE customer_id=? ORDER BY id",
        (customer_id,),
    ).fetchall()
    row["identities"] = [identity_from_row(r) for r in idents]
    return row


def customer(conn: sqlite3.Connection, customer_id: int) -> Customer:
    row = customer_row(conn, customer_id)
    return customer_from_row(row, row["identities"])


def customer_by_identity(conn: sqlite3.Connection, identity: Identity) -> Customer | None:
    row = conn.execute(
        "SELECT customer_id FROM identities WHERE kind=? AND value=?",
        (identity.kind.value, identity.value),
    ).fetchone()
    return None if row is None else customer(conn, int(row["customer_id"]))


def conversation(conn: sqlite3.Connection, conversation_id: int) -> Conversation:
    row = conn.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    return conversation_from_row(row)


def history(
    conn: sqlite3.Connection, customer_id: int, after_seq: int | None, limit: int
) -> list[Message]:
    """The customer's visible messages, oldest first: the latest `limit`, or those
    after `after_seq`."""
    if after_seq is None:
        rows = conn.execute(
            f"SELECT * FROM messages WHERE {_VISIBLE} ORDER BY seq DESC LIMIT ?",
            (customer_id, limit),
        ).fetchall()
        rows.reverse()
    else:
        rows = conn.execute(
            f"SELECT * FROM messages WHERE {_VISIBLE} AND seq > ? ORDER BY seq LIMIT ?",
            (customer_id, after_seq, limit),
        ).fetchall()
    return [message_from_row(r) for r in rows]


def conversation_messages(conn: sqlite3.Connection, conversation_id: int) -> list[Message]:
    rows = conn.execute(
        "SELECT * FROM messages WHERE conversation_id=? ORDER BY seq", (conversation_id,)
    ).fetchall()
    return [message_from_row(r) for r in rows]


def events(conn: sqlite3.Connection, conversation_id: int) -> list[Event]:
    rows = conn.execute(
        "SELECT * FROM events WHERE conversation_id=? ORDER BY id", (conversation_id,)
    ).fetchall()
    return [event_from_row(r) for r in rows]


def count_events(conn: sqlite3.Connection, customer_id: int, kind: str, since_ms: int) -> int:
    row = conn.execute(
        "SELECT COUNT(*) AS n FROM events WHERE customer_id=? AND kind=? AND created_at>=?",
        (customer_id, kind, since_ms),
    ).fetchone()
    return int(row["n"])


def unhandled_messages(conn: sqlite3.Connection) -> list[Message]:
    rows = conn.execute(
        "SELECT * FROM messages WHERE handled=0 AND direction='inbound' ORDER BY id"
    ).fetchall()
    return [message_from_row(r) for r in rows]


def message_by_external_id(
    conn: sqlite3.Connection, channel: ChannelKind, external_id: str
) -> Message | None:
    row = conn.execute(
        "SELECT * FROM messages WHERE channel=? AND external_id=?", (channel.value, external_id)
    ).fetchone()
    return None if row is None else message_from_row(row)


def opted_out(conn: sqlite3.Connection, identity: Identity) -> bool:
    row = conn.execute(
        "SELECT opted_out_at FROM identities WHERE kind=? AND value=?",
        (identity.kind.value, identity.value),
    ).fetchone()
    return row is not None and row["opted_out_at"] is not None
