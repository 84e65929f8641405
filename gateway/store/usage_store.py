"""The `usage` table's writes (gateway/usage.py): with a turn (`record_turn` calls
`sqlite_usage_rows` / `pg_usage_rows`) and on their own (`UsageRecorder`, one
class per backend; `open_usage` picks it). One SQL text for both backends."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError
from gateway.protocols import EventDraft, Store
from gateway.store.rows import now_ms
from gateway.usage import USAGE_COLUMNS, USAGE_EVENT, Usage, UsageRecorder

if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SqliteStore

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

_COLUMNS = ("conversation_id", "source", *USAGE_COLUMNS, "created_at")
INSERT = (
    f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    " ON CONFLICT (source) DO NOTHING"
)
_PG_INSERT = INSERT.replace("?", "${}").format(*range(1, len(_COLUMNS) + 1))
# A call's conversation: the `phone.call_started` event naming its sid (on the kind index).
CALL_STARTED = (
    "SELECT conversation_id, data FROM events WHERE kind = 'phone.call_started'"
    " AND data LIKE ? ORDER BY id DESC LIMIT 5"
)
_PG_CALL_STARTED = CALL_STARTED.replace("?", "$1")


def split_usage(events: Iterable[EventDraft]) -> tuple[list[EventDraft], Usage | None]:
    """A turn's events without its `usage` ones, and those summed (None: none)."""
    kept: list[EventDraft] = []
    total: dict[str, int] = {}
    for event in events:
        if event.kind != USAGE_EVENT:
            kept.append(event)
            continue
        for name, value in Usage.of(event.data).model_dump().items():
            total[name] = total.get(name, 0) + value
    usage = Usage(**total) if total else None
    return kept, None if usage is None or usage.empty() else usage


def _args(conversation_id: int, usage: Usage, source: str | None, ts: int) -> tuple[Any, ...]:
    return (conversation_id, source, *usage.model_dump().values(), ts)


def _sid_pattern(call_sid: str) -> str:
    return f'%"call_sid":"{call_sid}"%' if call_sid.isalnum() else "%\x00%"


def _call_of(rows: Iterable[Any], call_sid: str) -> int | None:
    for row in rows:
        try:
            if json.loads(row["data"]).get("call_sid") == call_sid:
                return int(row["conversation_id"])
        except (ValueError, AttributeError):
            continue
    return None


def sqlite_insert(
    conn: sqlite3.Connection, conversation_id: int, usage: Usage, source: str | None, ts: int
) -> bool:
    cur = conn.execute(INSERT, _args(conversation_id, usage, source, ts))
    return cur.rowcount == 1


async def pg_insert(
    conn: Conn, conversation_id: int, usage: Usage, source: str | None, ts: int
) -> bool:
    status = await conn.execute(_PG_INSERT, *_args(conversation_id, usage, source, ts))
    return str(status).endswith(" 1")


class SqliteUsage:
    """`UsageRecorder` on the SQLite store (through its one writer)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def record(self, conversation_id: int, usage: Usage, *, source: str) -> bool:
        return await self._store.write(
            lambda conn: sqlite_insert(conn, conversation_id, usage, source[:100], now_ms())
        )

    async def record_call(self, call_sid: str, usage: Usage) -> int | None:
        def op(conn: sqlite3.Connection) -> int | None:
            rows = conn.execute(CALL_STARTED, (_sid_pattern(call_sid),)).fetchall()
            cid = _call_of(rows, call_sid)
            if cid is None:
                return None
            return cid if sqlite_insert(conn, cid, usage, f"call:{call_sid}", now_ms()) else None

        return await self._store.write(op)


class PostgresUsage:
    """`UsageRecorder` on PostgreSQL (the unique `source` settles concurrent retries)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def record(self, conversation_id: int, usage: Usage, *, source: str) -> bool:
        async def op(conn: Conn) -> bool:
            return await pg_insert(conn, conversation_id, usage, source[:100], now_ms())

        return await self._store.write(op)

    async def record_call(self, call_sid: str, usage: Usage) -> int | None:
        async def op(conn: Conn) -> int | None:
            rows = await conn.fetch(_PG_CALL_STARTED, _sid_pattern(call_sid))
            cid = _call_of(rows, call_sid)
            if cid is None:
                return None
            return cid if await pg_insert(conn, cid, usage, f"call:{call_sid}", now_ms()) else None

        return await self._store.write(op)


def open_usage(store: Store) -> UsageRecorder:
    """The usage recorder of the configured store (same database, same writer)."""
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteUsage(store)
    if isinstance(store, PostgresStore):
        return PostgresUsage(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no usage recorder for {type(store).__name__}")


__all__ = [
    "INSERT", "PostgresUsage", "SqliteUsage", "open_usage", "pg_insert", "split_usage",
    "sqlite_insert",
]  # fmt: skip
