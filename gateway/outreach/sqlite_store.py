"""`OutreachStore` on the SQLite store's file (writes through its one writer, so a
claim and `begin_send` are each one transaction with nothing interleaved)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.models import DeliveryStatus
from gateway.outreach import store as q
from gateway.outreach.models import Outreach, OutreachEvent, OutreachFigures
from gateway.protocols import TurnRecord, TurnStored
from gateway.store.rows import to_ms
from gateway.store.sqlite import SqliteStore


class SqliteOutreachStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def insert(self, outreach_id: str, event: OutreachEvent, now_ms: int) -> (
        tuple[Outreach, bool]
    ):  # fmt: skip
        payload = event.model_dump_json()

        def op(conn: sqlite3.Connection) -> tuple[Outreach, bool]:
            cur = conn.execute(q.INSERT, (outreach_id, event.id, event.type, payload,
                                          now_ms, now_ms, now_ms))  # fmt: skip
            row = conn.execute(q.BY_EVENT, (event.id,)).fetchone()
            return q.outreach_from_row(row), cur.rowcount == 1

        return await self._store.write(op)

    async def get(self, outreach_id: str) -> Outreach | None:
        return await self._one(q.BY_ID, outreach_id)

    async def by_message(self, message_id: int) -> Outreach | None:
        return await self._one(q.BY_MESSAGE, message_id)

    async def _one(self, sql: str, arg: Any) -> Outreach | None:
        def op(conn: sqlite3.Connection) -> Outreach | None:
            row = conn.execute(sql, (arg,)).fetchone()
            return None if row is None else q.outreach_from_row(row)

        return await self._store.read(op)

    async def claim(self, limit: int, lease_ms: int, now_ms: int) -> list[Outreach]:
        def op(conn: sqlite3.Connection) -> list[Outreach]:
            ids = [r["id"] for r in conn.execute(q.DUE, (now_ms, now_ms, limit)).fetchall()]
            claimed = []
            for outreach_id in ids:
                conn.execute("UPDATE outreach SET claimed_until = ? WHERE id = ?",
                             (now_ms + lease_ms, outreach_id))  # fmt: skip
                row = conn.execute(q.BY_ID, (outreach_id,)).fetchone()
                claimed.append(q.outreach_from_row(row))
            return claimed

        return await self._store.write(op)

    async def update(self, outreach_id: str, now_ms: int, **fields: Any) -> None:
        sql, values = q.update_sql(fields)
        await self._store.write(lambda conn: conn.execute(sql, (*values, now_ms, outreach_id)))

    async def begin_send(self, outreach_id: str, turn: TurnRecord, now_ms: int,
                         **fields: Any) -> TurnStored:  # fmt: skip
        def op(conn: sqlite3.Connection) -> TurnStored:
            stored = self._store.turn_in(conn, turn)
            first = stored.messages[0].id if stored.messages else None  # a call: none
            sql, values = q.update_sql({**fields, "message_id": first})
            conn.execute(sql, (*values, now_ms, outreach_id))
            return stored

        return await self._store.write(op)

    async def message_status(self, message_id: int) -> tuple[DeliveryStatus | None, str | None]:
        def op(conn: sqlite3.Connection) -> tuple[DeliveryStatus | None, str | None]:
            row = conn.execute(q.MESSAGE_STATUS, (message_id,)).fetchone()
            if row is None or row["status"] is None:
                return None, None
            return DeliveryStatus(row["status"]), row["error_code"]

        return await self._store.read(op)

    async def sent_since(self, customer_id: int, since_ms: int, other_than: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(q.SENT_SINCE, (customer_id, since_ms, other_than)).fetchone()
            return int(row["n"])

        return await self._store.read(op)

    async def release(self) -> int:
        return await self._store.write(lambda conn: int(conn.execute(q.RELEASE).rowcount))

    async def figures(self, since: datetime, until: datetime) -> OutreachFigures:
        def op(conn: sqlite3.Connection) -> OutreachFigures:
            rows = conn.execute(q.FIGURES, (to_ms(since), to_ms(until))).fetchall()
            return q.figures(rows)

        return await self._store.read(op)


__all__ = ["SqliteOutreachStore"]
