"""Closing quiet bot conversations in the store (gateway/idle_close.py decides what
to close; this module reads the candidates and closes one safely), on SQLite and
PostgreSQL through each store's own `read` / `write` / `turn_in`.

A close is a turn (`TurnRecord` with state `closed` and its events) written only
when, inside the write's transaction:

- the conversation is still at the version the sweep read (no turn, rep or other
  node moved it on: a second node's close of the same conversation loses here), and
- no inbound message of it is waiting for an answer (one stored after the sweep's
  read is answered in the open conversation, never left in a closed one).

On PostgreSQL the write first locks the customer's row, as storing a message
does (gateway/store/pg_ingest.py), so a message cannot slip in between the check
and the close; on SQLite the single writer serializes both.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.models import Conversation
from gateway.protocols import TurnRecord, TurnStored
from gateway.store.pg_turns import lock_turn
from gateway.store.postgres import PostgresStore
from gateway.store.rows import conversation_from_row, to_ms
from gateway.store.sqlite import SqliteStore

# Bot conversations last moved before a time whose agent's answer still stands
# (`answered` in agent_state, see agent/resolution.py); oldest first, bounded.
_SQLITE_IDLE = (
    "SELECT * FROM conversations WHERE state='bot' AND updated_at < ?"
    " AND json_extract(agent_state, '$.answered') IS NOT NULL ORDER BY updated_at LIMIT ?"
)
_PG_IDLE = (
    "SELECT * FROM conversations WHERE state='bot' AND updated_at < $1"
    " AND (agent_state::jsonb ->> 'answered') IS NOT NULL ORDER BY updated_at LIMIT $2"
)
_SQLITE_WAITING = (
    "SELECT 1 FROM messages WHERE conversation_id=? AND handled=0 AND direction='inbound' LIMIT 1"
)
_PG_WAITING = (
    "SELECT 1 FROM messages WHERE conversation_id=$1 AND NOT handled"
    " AND direction='inbound' LIMIT 1"
)


async def idle_answered(
    store: SqliteStore | PostgresStore, before: datetime, limit: int
) -> list[Conversation]:
    """Bot conversations untouched since `before` whose agent's answer still stands."""
    cutoff = to_ms(before)
    if isinstance(store, SqliteStore):

        def read_sqlite(conn: sqlite3.Connection) -> list[Conversation]:
            rows = conn.execute(_SQLITE_IDLE, (cutoff, limit)).fetchall()
            return [conversation_from_row(r) for r in rows]

        return await store.read(read_sqlite)

    async def read_pg(conn: Any) -> list[Conversation]:
        rows = await conn.fetch(_PG_IDLE, cutoff, limit)
        return [conversation_from_row(r) for r in rows]

    return await store.read(read_pg)


async def close_if_quiet(store: SqliteStore | PostgresStore, turn: TurnRecord) -> TurnStored | None:
    """Write `turn` (a close) only if the conversation is still at
    `turn.expected_version` with no inbound message waiting; None when it is not."""
    if isinstance(store, SqliteStore):

        def close_sqlite(conn: sqlite3.Connection) -> TurnStored | None:
            row = conn.execute(
                "SELECT version FROM conversations WHERE id=?", (turn.conversation_id,)
            ).fetchone()
            if row is None or row["version"] != turn.expected_version:
                return None
            if conn.execute(_SQLITE_WAITING, (turn.conversation_id,)).fetchone() is not None:
                return None
            return store.turn_in(conn, turn)

        return await store.write(close_sqlite)

    async def close_pg(conn: Any) -> TurnStored | None:
        conv = await lock_turn(conn, turn.conversation_id)  # the customer's row, then its
        if conv["version"] != turn.expected_version:
            return None
        if await conn.fetchval(_PG_WAITING, turn.conversation_id) is not None:
            return None
        return await store.turn_in(conn, turn, check=True)

    return await store.write(close_pg)


__all__ = ["close_if_quiet", "idle_answered"]
