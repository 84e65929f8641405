"""`OutreachStore` on `PostgresStore`'s database (the same SQL as SQLite, `$n` marks).
Claims take rows with `FOR UPDATE SKIP LOCKED`: nodes claiming at once get
different rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.models import DeliveryStatus
from gateway.outreach import store as q
from gateway.outreach.models import Outreach, OutreachEvent, OutreachFigures
from gateway.protocols import TurnRecord, TurnStored
from gateway.store.desk_sql import numbered
from gateway.store.postgres import PostgresStore
from gateway.store.rows import to_ms

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

_CLAIM = (
    "UPDATE outreach SET claimed_until = $1 WHERE id IN (SELECT id FROM outreach"
    f" WHERE due_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) AND {q.RUNNING}"
    " ORDER BY CASE WHEN campaign_id IS NULL THEN 0 ELSE 1 END, due_at LIMIT $3"
    " FOR UPDATE SKIP LOCKED) RETURNING *"
)


class PostgresOutreachStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def insert(self, outreach_id: str, event: OutreachEvent, now_ms: int) -> (
        tuple[Outreach, bool]
    ):  # fmt: skip
        payload = event.model_dump_json()

        async def op(conn: Conn) -> tuple[Outreach, bool]:
            status = await conn.execute(numbered(q.INSERT), outreach_id, event.id, event.type,
                                        payload, now_ms, now_ms, now_ms)  # fmt: skip
            row = await conn.fetchrow(numbered(q.BY_EVENT), event.id)
            return q.outreach_from_row(row), str(status).endswith(" 1")

        return await self._store.write(op)

    async def get(self, outreach_id: str) -> Outreach | None:
        return await self._one(q.BY_ID, outreach_id)

    async def by_message(self, message_id: int) -> Outreach | None:
        return await self._one(q.BY_MESSAGE, message_id)

    async def _one(self, sql: str, arg: Any) -> Outreach | None:
        async def op(conn: Conn) -> Outreach | None:
            row = await conn.fetchrow(numbered(sql), arg)
            return None if row is None else q.outreach_from_row(row)

        return await self._store.read(op)

    async def claim(self, limit: int, lease_ms: int, now_ms: int) -> list[Outreach]:
        async def op(conn: Conn) -> list[Outreach]:
            rows = await conn.fetch(_CLAIM, now_ms + lease_ms, now_ms, limit)
            return sorted((q.outreach_from_row(r) for r in rows),
                          key=lambda o: (o.campaign_id is not None,
                                         o.due_at or o.created_at))  # fmt: skip

        return await self._store.write(op)

    async def update(self, outreach_id: str, now_ms: int, **fields: Any) -> None:
        sql, values = q.update_sql(fields)

        async def op(conn: Conn) -> None:
            await conn.execute(numbered(sql), *values, now_ms, outreach_id)

        await self._store.write(op)

    async def begin_send(self, outreach_id: str, turn: TurnRecord, now_ms: int,
                         **fields: Any) -> TurnStored:  # fmt: skip
        async def op(conn: Conn) -> TurnStored:
            stored = await self._store.turn_in(conn, turn)
            first = stored.messages[0].id if stored.messages else None  # a call: none
            sql, values = q.update_sql({**fields, "message_id": first})
            await conn.execute(numbered(sql), *values, now_ms, outreach_id)
            return stored

        return await self._store.write(op)

    async def message_status(self, message_id: int) -> tuple[DeliveryStatus | None, str | None]:
        async def op(conn: Conn) -> tuple[DeliveryStatus | None, str | None]:
            row = await conn.fetchrow(numbered(q.MESSAGE_STATUS), message_id)
            if row is None or row["status"] is None:
                return None, None
            return DeliveryStatus(row["status"]), row["error_code"]

        return await self._store.read(op)

    async def sent_since(self, customer_id: int, since_ms: int, other_than: str) -> int:
        async def op(conn: Conn) -> int:
            found = await conn.fetchval(numbered(q.SENT_SINCE), customer_id, since_ms, other_than)
            return int(found)

        return await self._store.read(op)

    async def release(self) -> int:
        async def op(conn: Conn) -> int:
            status = await conn.execute(q.RELEASE)
            return int(str(status).rsplit(" ", 1)[-1])

        return await self._store.write(op)

    async def figures(self, since: datetime, until: datetime) -> OutreachFigures:
        async def op(conn: Conn) -> OutreachFigures:
            rows = await conn.fetch(numbered(q.FIGURES), to_ms(since), to_ms(until))
            return q.figures(rows)

        return await self._store.read(op)


__all__ = ["PostgresOutreachStore"]
