"""`CampaignStore` on `PostgresStore`'s database (the same SQL, `$n` marks)."""

from __future__ import annotations

from typing import Any

from gateway.outreach import campaign_store as q
from gateway.outreach.campaigns import Campaign, CampaignState
from gateway.outreach.models import Outreach, OutreachEvent
from gateway.store.desk_sql import numbered
from gateway.store.postgres import PostgresStore

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)


class PostgresCampaignStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def create(self, campaign: Campaign, events: list[tuple[str, int, OutreachEvent]],
                     now_ms: int) -> None:  # fmt: skip
        args = q.recipient_args(campaign.id, events, now_ms)

        async def op(conn: Conn) -> None:
            await conn.execute(numbered(q.INSERT_CAMPAIGN), *q.campaign_args(campaign, now_ms))
            await conn.executemany(numbered(q.INSERT_RECIPIENT), args)

        await self._store.write(op)

    async def get(self, campaign_id: str) -> Campaign | None:
        async def op(conn: Conn) -> Campaign | None:
            row = await conn.fetchrow(numbered(q.BY_ID), campaign_id)
            return None if row is None else q.campaign_from_row(row)

        return await self._store.read(op)

    async def latest(self, limit: int) -> list[Campaign]:
        async def op(conn: Conn) -> list[Campaign]:
            return [q.campaign_from_row(r) for r in await conn.fetch(numbered(q.LIST), limit)]

        return await self._store.read(op)

    async def set_state(self, campaign_id: str, state: CampaignState, was: CampaignState,
                        now_ms: int) -> bool:  # fmt: skip
        async def op(conn: Conn) -> bool:
            status = await conn.execute(numbered(q.SET_STATE), state.value, now_ms, campaign_id,
                                        was.value)  # fmt: skip
            moved = str(status).endswith(" 1")
            if moved and state is CampaignState.CANCELLED:
                await conn.execute(numbered(q.SKIP_REST), now_ms, campaign_id)
            return moved

        return await self._store.write(op)

    async def counts(self, campaign_id: str) -> dict[str, int]:
        async def op(conn: Conn) -> dict[str, int]:
            return q.tally(await conn.fetch(numbered(q.COUNTS), campaign_id))

        return await self._store.read(op)

    async def recipients(self, campaign_id: str, after_row: int, limit: int) -> list[Outreach]:
        async def op(conn: Conn) -> list[Outreach]:
            rows = await conn.fetch(numbered(q.RECIPIENTS), campaign_id, after_row, limit)
            return q.recipients_of(rows)

        return await self._store.read(op)

    async def reserve(self, key: str, now_us: int, interval_us: int) -> int:
        async def op(conn: Conn) -> int:
            found = await conn.fetchval(q.RESERVE_PG, key, now_us + interval_us, interval_us,
                                        interval_us)  # fmt: skip
            return int(found) - interval_us

        return await self._store.write(op)

    async def proceed(self, outreach_id: str, held_until: int, until: int) -> bool:
        async def op(conn: Conn) -> bool:
            status = await conn.execute(numbered(q.PROCEED), until, outreach_id, held_until)
            if str(status).endswith(" 1"):
                return True
            await conn.execute(numbered(q.LET_GO), outreach_id, held_until)
            return False

        return await self._store.write(op)

    async def saved(self, since_ms: int, until_ms: int, window_ms: int, now_ms: int) -> (
        tuple[int, int]
    ):  # fmt: skip
        async def op(conn: Conn) -> tuple[int, int]:
            rows = await conn.fetch(numbered(q.SAVED), window_ms, since_ms, until_ms,
                                    now_ms - window_ms)  # fmt: skip
            return sum(1 for r in rows if not r["contacts"]), len(rows)

        return await self._store.read(op)


__all__ = ["PostgresCampaignStore"]
