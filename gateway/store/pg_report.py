"""The summary's reads on PostgreSQL (`DeskStore.report_reads`): one snapshot, read on
several connections at once.

A connection opens a REPEATABLE READ READ ONLY transaction and exports its snapshot
(`pg_export_snapshot`); the other reads run on other pooled connections, each in a
transaction that imports it (`SET TRANSACTION SNAPSHOT`), so every read sees the
same committed rows, as if they were one transaction, and the database works on
them at once (on the 2-core bench VM one connection running them one after the
other took 0.1-0.2 s longer: docs/reports.md). A read that finds no free pooled
connection within `SPARE_WAIT_S` runs on the first connection after its own reads,
so a busy pool slows a report down but never deadlocks it.

Rows come back as few as the figures allow: the facts as joined columns (desk_sql),
the per-conversation rows (usage cost, reps' time, next-response waits) as one
row of arrays each (`array_agg`, binary-decoded by asyncpg) rather than 100,000
records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

import asyncpg

from gateway.desk.cost import ConversationUsage, UsageRead
from gateway.desk.extras import ExtrasRead, ReportReads
from gateway.desk.facts import FactColumns
from gateway.errors import StoreError
from gateway.store import desk_sql as q
from gateway.store.extras_sql import extras_sql

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)
T = TypeVar("T")
Read = Callable[[Conn], Awaitable[T]]

SPARE_WAIT_S = 0.2  # how long a read waits for a second pooled connection


def _arrays(sql: str, names: Sequence[str]) -> str:
    """`sql`'s rows as one row of arrays, one per column (`names`), in the same order."""
    aggs = ", ".join(f"array_agg({n})" for n in names)
    return q.numbered(f"SELECT {aggs} FROM ({sql}) AS t({', '.join(names)})")


async def _columns(conn: Conn, sql: str, names: Sequence[str], args: Sequence[Any]) -> list[Any]:
    row = await conn.fetchrow(_arrays(sql, names), *args)
    return [list(row[i] or ()) for i in range(len(names))]


async def read_usage(
    conn: Conn, args: list[Any], prices: Sequence[float], period: str | None = None
) -> UsageRead:
    """The usage of an id range (`args`: first, last) or, given `period` (a
    `period_where` condition, `args` its arguments), of the conversations it selects;
    inside the caller's transaction."""
    unit = q.usage_prices(prices)
    ids, ids_args = q.ID_RANGE, args
    if period is not None:
        selected = tuple(await conn.fetchrow(q.numbered(q.SELECTED_IDS.format(cond=period)), *args))
        in_range = await conn.fetchval(q.numbered(q.RANGE_COUNT), *selected[:2])
        ids, ids_args = q.period_ids(period, args, selected, in_range)
    totals_sql, cost_sql, rep_sql = q.usage_sql(ids)
    totals = await conn.fetchrow(q.numbered(totals_sql), *ids_args)
    costs = await _columns(conn, cost_sql, ("id", "cost"), (*unit, *ids_args))
    rep_time = await _columns(conn, rep_sql, ("id", "ms"), ids_args)
    return q.usage_read(totals, zip(*costs, strict=True), zip(*rep_time, strict=True))


async def _shared(pool: Any, reads: Sequence[Read[Any]]) -> list[Any]:
    """Each read's result, all as of one snapshot: the first on the exporting
    connection, the others on spare pooled connections that import it."""
    async with pool.acquire() as lead, lead.transaction(isolation="repeatable_read", readonly=True):
        snapshot = await lead.fetchval("SELECT pg_export_snapshot()")
        on_lead = asyncio.Lock()

        async def lead_read(read: Read[T]) -> T:
            async with on_lead:
                return await read(lead)

        async def spare_read(read: Read[T]) -> T:
            try:
                conn = await pool.acquire(timeout=SPARE_WAIT_S)
            except TimeoutError:
                return await lead_read(read)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    return await read(conn)
            finally:
                await pool.release(conn)

        return list(await asyncio.gather(lead_read(reads[0]), *map(spare_read, reads[1:])))


async def report_reads(
    pool: Any, since_ms: int, until_ms: int, *, channels: set[str] | None,
    queues: set[str] | None, rep_ids: set[int] | None, target_queues: Collection[str],
    prices: Sequence[float],
) -> ReportReads:  # fmt: skip
    """DeskStore.report_reads on `pool` (asyncpg)."""
    found = q.period_where(since_ms, until_ms, channels=channels, queues=queues,
                           rep_ids=rep_ids)  # fmt: skip
    facts_reads = q.facts_sql(since_ms, until_ms, channels=channels, queues=queues,
                              rep_ids=rep_ids, sqlite=False)  # fmt: skip
    if found is None or facts_reads is None:
        return ReportReads(FactColumns.of_rows([], []), ExtrasRead([], [], [], []),
                           UsageRead(ConversationUsage(), {}, {}))  # fmt: skip
    cond, args = found
    facts_sql, responses_sql, _ = facts_reads
    (messages, m_args), (reasons, r_args), (reps, p_args), (waits, w_args) = extras_sql(
        cond, args, set(target_queues)
    )

    async def facts(conn: Conn) -> FactColumns:
        columns = await conn.fetchrow(q.numbered(facts_sql), *args)
        responses = await conn.fetchrow(q.numbered(responses_sql), *args)
        return FactColumns.of_joined(tuple(columns), tuple(responses), q.TEXT_SEP)

    async def message_rows(conn: Conn) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await conn.fetch(q.numbered(messages), *m_args)]

    async def groups(conn: Conn) -> tuple[list[Any], list[Any], list[Any]]:
        why = [tuple(r) for r in await conn.fetch(q.numbered(reasons), *r_args)]
        by_rep = [tuple(r) for r in await conn.fetch(q.numbered(reps), *p_args)]
        wait_rows = list(zip(*await _columns(conn, waits, ("c", "q", "a", "r"), w_args),
                             strict=True))  # fmt: skip
        return why, by_rep, wait_rows

    async def usage(conn: Conn) -> UsageRead:
        return await read_usage(conn, args, prices, period=cond)

    try:
        f, m, (why, by_rep, wait_rows), u = await _shared(pool, (facts, message_rows, groups,
                                                                 usage))  # fmt: skip
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"store read failed: {str(exc).splitlines()[0]}") from exc
    return ReportReads(f, ExtrasRead(m, why, by_rep, wait_rows), u)


__all__ = ["SPARE_WAIT_S", "read_usage", "report_reads"]
