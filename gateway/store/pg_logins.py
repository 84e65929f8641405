"""The console's login failures in PostgreSQL (gateway/routing/throttle.py's `LoginLog`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.store.pg_session import Conn
from gateway.store.postgres import PostgresStore
from gateway.store.rows import to_ms


class PostgresLoginLog:
    """`LoginLog` on the gateway's PostgreSQL store (shared by every node)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def count_failures(self, keys: Sequence[str], since: datetime) -> dict[str, int]:
        async def op(conn: Conn) -> dict[str, int]:
            rows = await conn.fetch(
                "SELECT key, COUNT(*) AS n FROM login_failures WHERE key = ANY($1::text[])"
                " AND failed_at >= $2 GROUP BY key",
                list(keys), to_ms(since),
            )  # fmt: skip
            return {str(r["key"]): int(r["n"]) for r in rows}

        return await self._store.read(op)

    async def add_failure(self, keys: Sequence[str], at: datetime, forget_before: datetime) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute("DELETE FROM login_failures WHERE failed_at < $1",
                               to_ms(forget_before))  # fmt: skip
            await conn.executemany(
                "INSERT INTO login_failures (key, failed_at) VALUES ($1, $2)",
                [(key, to_ms(at)) for key in keys],
            )

        await self._store.write(op)

    async def clear_failures(self, key: str) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute("DELETE FROM login_failures WHERE key = $1", key)

        await self._store.write(op)


__all__ = ["PostgresLoginLog"]
