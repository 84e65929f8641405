"""The console's login failures in SQLite (gateway/routing/throttle.py's `LoginLog`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from gateway.store.rows import to_ms
from gateway.store.sqlite import SqliteStore


class SqliteLoginLog:
    """`LoginLog` on the gateway's SQLite store (its writer, its reader pool)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def count_failures(self, keys: Sequence[str], since: datetime) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            marks = ",".join("?" * len(keys))
            rows = conn.execute(
                f"SELECT key, COUNT(*) AS n FROM login_failures WHERE key IN ({marks})"
                " AND failed_at >= ? GROUP BY key",
                (*keys, to_ms(since)),
            ).fetchall()
            return {str(r["key"]): int(r["n"]) for r in rows}

        return await self._store.read(op)

    async def add_failure(self, keys: Sequence[str], at: datetime, forget_before: datetime) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM login_failures WHERE failed_at < ?", (to_ms(forget_before),))
            conn.executemany(
                "INSERT INTO login_failures (key, failed_at) VALUES (?, ?)",
                [(key, to_ms(at)) for key in keys],
            )

        await self._store.write(op)

    async def clear_failures(self, key: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))

        await self._store.write(op)


__all__ = ["SqliteLoginLog"]
