"""`DeskStore` on `PostgresStore`'s database (the same SQL as SQLite, `$n` marks)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from gateway.desk.cost import UsageRead
from gateway.desk.extras import ReportReads
from gateway.desk.facts import FactColumns
from gateway.desk.gaps import HandoverQuestion
from gateway.desk.store import ApiToken, Canned, ConversationHit, SearchQuery
from gateway.errors import ConflictError
from gateway.routing.models import Rep
from gateway.store import desk_sql as q
from gateway.store.pg_desk_org import PostgresDeskOrg
from gateway.store.pg_report import read_usage, report_reads
from gateway.store.postgres import PostgresStore
from gateway.store.routing_rows import REP_SELECT, rep_from_row
from gateway.store.rows import now_ms, to_ms

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

_WORKED_ON = q.numbered(q.WORKED_ON)
_ADD_TOKEN = q.numbered(q.ADD_TOKEN) + " RETURNING *"
_TOKEN_BY_HASH = q.numbered(q.TOKEN_BY_HASH)
_REVOKE_TOKEN = q.numbered(q.REVOKE_TOKEN)
_HANDOVER_QUESTIONS = q.numbered(q.HANDOVER_QUESTIONS)


class PostgresDeskStore(PostgresDeskOrg):
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def get_rep(self, rep_id: int) -> Rep | None:
        async def op(conn: Conn) -> Rep | None:
            row = await conn.fetchrow(f"{REP_SELECT} WHERE r.id=$1", rep_id)
            return None if row is None else rep_from_row(row)

        return await self._store.read(op)

    async def canned(self) -> list[Canned]:
        async def op(conn: Conn) -> list[Canned]:
            return [Canned.model_validate(dict(r)) for r in await conn.fetch(q.CANNED)]

        return await self._store.read(op)

    async def add_canned(self, name: str, text: str, created_by: int) -> Canned:
        async def op(conn: Conn) -> Canned:
            try:
                async with conn.transaction():  # a savepoint: the unique key answers
                    canned_id = await conn.fetchval(
                        q.numbered(q.ADD_CANNED) + " RETURNING id",
                        name, text, created_by, now_ms(),
                    )  # fmt: skip
            except asyncpg.exceptions.UniqueViolationError as exc:
                raise ConflictError(f"a canned response named {name!r} exists") from exc
            return Canned(id=canned_id, name=name, text=text)

        return await self._store.write(op)

    async def delete_canned(self, canned_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            status = await conn.execute(q.numbered(q.DELETE_CANNED), canned_id)
            return str(status).endswith(" 1")

        return await self._store.write(op)

    async def ratings_of(self, customer_id: int) -> list[tuple[int, int]]:
        async def op(conn: Conn) -> list[tuple[int, int]]:
            rows = await conn.fetch(q.numbered(q.RATINGS_OF), customer_id)
            return [(r["conversation_id"], r["score"]) for r in rows]

        return await self._store.read(op)

    async def open_conversation_of(self, customer_id: int) -> int | None:
        async def op(conn: Conn) -> int | None:
            found = await conn.fetchval(q.numbered(q.OPEN_CONVERSATION), customer_id)
            return None if found is None else int(found)

        return await self._store.read(op)

    async def worked_on(self, rep_id: int, conversation_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            return await conn.fetchval(_WORKED_ON, conversation_id, rep_id) is not None

        return await self._store.read(op)

    async def add_token(self, name: str, token_hash: str, created_by: int | None) -> ApiToken:
        async def op(conn: Conn) -> ApiToken:
            row = await conn.fetchrow(_ADD_TOKEN, name, token_hash, created_by, now_ms())
            return q.token_from_row(row)

        return await self._store.write(op)

    async def tokens(self) -> list[ApiToken]:
        async def op(conn: Conn) -> list[ApiToken]:
            return [q.token_from_row(r) for r in await conn.fetch(q.TOKENS)]

        return await self._store.read(op)

    async def revoke_token(self, token_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            status = await conn.execute(_REVOKE_TOKEN, now_ms(), token_id)
            return str(status).endswith(" 1")

        return await self._store.write(op)

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        async def op(conn: Conn) -> ApiToken | None:
            row = await conn.fetchrow(_TOKEN_BY_HASH, token_hash)
            return None if row is None else q.token_from_row(row)

        return await self._store.read(op)

    async def facts(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
    ) -> FactColumns:  # fmt: skip
        reads = q.facts_sql(to_ms(since), to_ms(until), channels=channels, queues=queues,
                            rep_ids=rep_ids, sqlite=False)  # fmt: skip
        if reads is None:
            return FactColumns.of_rows([], [])
        facts_sql, responses_sql, args = reads

        async def op(conn: Conn) -> FactColumns:
            # One snapshot for the two reads (REPEATABLE READ), so they agree.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                columns = await conn.fetchrow(q.numbered(facts_sql), *args)
                responses = await conn.fetchrow(q.numbered(responses_sql), *args)
            return FactColumns.of_joined(tuple(columns), tuple(responses), q.TEXT_SEP)

        return await self._store.read(op)

    async def usage(self, first_id: int, last_id: int, prices: Sequence[float] = ()) -> UsageRead:
        async def op(conn: Conn) -> UsageRead:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await read_usage(conn, [first_id, last_id], prices, None)

        return await self._store.read(op)

    async def handover_questions(
        self, since: datetime, until: datetime, limit: int
    ) -> list[HandoverQuestion]:
        async def op(conn: Conn) -> list[HandoverQuestion]:
            rows = await conn.fetch(_HANDOVER_QUESTIONS, to_ms(since), to_ms(until), limit)
            return [q.handover_from_row(r) for r in rows]

        return await self._store.read(op)

    async def search(self, query: SearchQuery) -> list[ConversationHit]:
        sql, args = q.search_sql(query, sqlite=False)

        async def op(conn: Conn) -> list[ConversationHit]:
            return [q.hit_from_row(r) for r in await conn.fetch(q.numbered(sql), *args)]

        return await self._store.read(op)

    async def report_reads(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
        target_queues: Collection[str] = (), prices: Sequence[float] = (),
    ) -> ReportReads:  # fmt: skip
        return await report_reads(
            self._store.pool, to_ms(since), to_ms(until), channels=channels, queues=queues,
            rep_ids=rep_ids, target_queues=target_queues, prices=prices,
        )  # fmt: skip


__all__ = ["PostgresDeskStore"]
