"""`DeskStore` on the SQLite store's file (writes through its one writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from gateway.desk.cost import ConversationUsage, UsageRead
from gateway.desk.extras import ExtrasRead, ReportReads
from gateway.desk.facts import FactColumns
from gateway.desk.gaps import HandoverQuestion
from gateway.desk.store import ApiToken, Canned, ConversationHit, SearchQuery
from gateway.errors import ConflictError
from gateway.routing.models import Rep
from gateway.store import desk_sql as q
from gateway.store.extras_sql import extras_read, extras_sql
from gateway.store.routing_rows import REP_SELECT, rep_from_row
from gateway.store.rows import now_ms, to_ms
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_desk_org import SqliteDeskOrg


class SqliteDeskStore(SqliteDeskOrg):
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def get_rep(self, rep_id: int) -> Rep | None:
        def op(conn: sqlite3.Connection) -> Rep | None:
            row = conn.execute(f"{REP_SELECT} WHERE r.id=?", (rep_id,)).fetchone()
            return None if row is None else rep_from_row(row)

        return await self._store.read(op)

    async def canned(self) -> list[Canned]:
        def op(conn: sqlite3.Connection) -> list[Canned]:
            return [Canned.model_validate(r) for r in conn.execute(q.CANNED).fetchall()]

        return await self._store.read(op)

    async def add_canned(self, name: str, text: str, created_by: int) -> Canned:
        def op(conn: sqlite3.Connection) -> Canned:
            try:
                cur = conn.execute(q.ADD_CANNED, (name, text, created_by, now_ms()))
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"a canned response named {name!r} exists") from exc
            return Canned(id=int(cur.lastrowid or 0), name=name, text=text)

        return await self._store.write(op)

    async def delete_canned(self, canned_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.DELETE_CANNED, (canned_id,)).rowcount == 1

        return await self._store.write(op)

    async def ratings_of(self, customer_id: int) -> list[tuple[int, int]]:
        def op(conn: sqlite3.Connection) -> list[tuple[int, int]]:
            rows = conn.execute(q.RATINGS_OF, (customer_id,)).fetchall()
            return [(r["conversation_id"], r["score"]) for r in rows]

        return await self._store.read(op)

    async def open_conversation_of(self, customer_id: int) -> int | None:
        def op(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(q.OPEN_CONVERSATION, (customer_id,)).fetchone()
            return None if row is None else int(row["id"])

        return await self._store.read(op)

    async def worked_on(self, rep_id: int, conversation_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.WORKED_ON, (conversation_id, rep_id)).fetchone() is not None

        return await self._store.read(op)

    async def add_token(self, name: str, token_hash: str, created_by: int | None) -> ApiToken:
        def op(conn: sqlite3.Connection) -> ApiToken:
            cur = conn.execute(q.ADD_TOKEN, (name, token_hash, created_by, now_ms()))
            row = conn.execute("SELECT * FROM api_tokens WHERE id=?", (cur.lastrowid,))
            return q.token_from_row(row.fetchone())

        return await self._store.write(op)

    async def tokens(self) -> list[ApiToken]:
        def op(conn: sqlite3.Connection) -> list[ApiToken]:
            return [q.token_from_row(r) for r in conn.execute(q.TOKENS).fetchall()]

        return await self._store.read(op)

    async def revoke_token(self, token_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.REVOKE_TOKEN, (now_ms(), token_id)).rowcount == 1

        return await self._store.write(op)

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        def op(conn: sqlite3.Connection) -> ApiToken | None:
            row = conn.execute(q.TOKEN_BY_HASH, (token_hash,)).fetchone()
            return None if row is None else q.token_from_row(row)

        return await self._store.read(op)

    async def facts(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
    ) -> FactColumns:  # fmt: skip
        reads = q.facts_sql(to_ms(since), to_ms(until), channels=channels, queues=queues,
                            rep_ids=rep_ids, sqlite=True)  # fmt: skip
        if reads is None:
            return FactColumns.of_rows([], [])
        facts_sql, responses_sql, args = reads

        def op(conn: sqlite3.Connection) -> FactColumns:
            cur = conn.cursor()
            cur.row_factory = None  # plain tuples
            # One read transaction for the two reads (WAL: one snapshot), so they agree.
            conn.execute("BEGIN")
            try:
                columns = cur.execute(facts_sql, args).fetchone()
                responses = cur.execute(responses_sql, args).fetchone()
            finally:
                conn.execute("COMMIT")
            return FactColumns.of_joined(columns, responses, q.TEXT_SEP)

        return await self._store.read(op)

    async def usage(self, first_id: int, last_id: int, prices: Sequence[float] = ()) -> UsageRead:
        def op(conn: sqlite3.Connection) -> UsageRead:
            conn.execute("BEGIN")  # one snapshot for the reads
            try:
                return _read_usage(conn, [first_id, last_id], prices, None)
            finally:
                conn.execute("COMMIT")

        return await self._store.read(op)

    async def handover_questions(
        self, since: datetime, until: datetime, limit: int
    ) -> list[HandoverQuestion]:
        def op(conn: sqlite3.Connection) -> list[HandoverQuestion]:
            cur = conn.cursor()
            cur.row_factory = None
            rows = cur.execute(q.HANDOVER_QUESTIONS, (to_ms(since), to_ms(until), limit))
            return [q.handover_from_row(r) for r in rows.fetchall()]

        return await self._store.read(op)

    async def search(self, query: SearchQuery) -> list[ConversationHit]:
        sql, args = q.search_sql(query, sqlite=True)

        def op(conn: sqlite3.Connection) -> list[ConversationHit]:
            return [q.hit_from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self._store.read(op)

    async def report_reads(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
        target_queues: Collection[str] = (), prices: Sequence[float] = (),
    ) -> ReportReads:  # fmt: skip
        since_ms, until_ms = to_ms(since), to_ms(until)
        found = q.period_where(since_ms, until_ms, channels=channels, queues=queues,
                               rep_ids=rep_ids)  # fmt: skip
        facts_reads = q.facts_sql(since_ms, until_ms, channels=channels, queues=queues,
                                  rep_ids=rep_ids, sqlite=True)  # fmt: skip
        if found is None or facts_reads is None:
            return ReportReads(FactColumns.of_rows([], []), ExtrasRead([], [], [], []),
                               UsageRead(ConversationUsage(), {}, {}))  # fmt: skip
        cond, args = found
        facts_sql, responses_sql, _ = facts_reads
        extra = extras_sql(cond, args, set(target_queues))

        def op(conn: sqlite3.Connection) -> ReportReads:
            cur = conn.cursor()
            cur.row_factory = None  # plain tuples
            # One read transaction (WAL: one snapshot) for every read, one after the
            # other on this connection (docs/reports.md: as fast as several at once).
            conn.execute("BEGIN")
            try:
                columns = cur.execute(facts_sql, args).fetchone()
                responses = cur.execute(responses_sql, args).fetchone()
                rows = [cur.execute(sql, a).fetchall() for sql, a in extra]
                usage = _read_usage(conn, args, prices, cond)
            finally:
                conn.execute("COMMIT")
            return ReportReads(FactColumns.of_joined(columns, responses, q.TEXT_SEP),
                               extras_read(rows), usage)  # fmt: skip

        return await self._store.read(op)


def _read_usage(
    conn: sqlite3.Connection, args: list[Any], prices: Sequence[float], period: str | None
) -> UsageRead:
    """The usage of an id range (`args`: first, last) or, given `period` (a
    `period_where` condition, `args` its arguments), of the conversations it selects;
    inside the caller's read transaction."""
    unit = q.usage_prices(prices)
    cur = conn.cursor()
    cur.row_factory = None

    def rows(sql: str, args: Sequence[Any]) -> list[Any]:
        return cur.execute(sql, args).fetchall()

    ids, ids_args = q.ID_RANGE, args
    if period is not None:
        selected = rows(q.SELECTED_IDS.format(cond=period), args)[0]
        in_range = rows(q.RANGE_COUNT, selected[:2])[0][0]
        ids, ids_args = q.period_ids(period, args, selected, in_range)
    totals_sql, cost_sql, rep_sql = q.usage_sql(ids)
    return q.usage_read(rows(totals_sql, ids_args)[0], rows(cost_sql, (*unit, *ids_args)),
                        rows(rep_sql, ids_args))  # fmt: skip


__all__ = ["SqliteDeskStore"]
