"""`CampaignStore` on the SQLite store's file (writes through its one writer)."""

from __future__ import annotations

import sqlite3

from gateway.outreach import campaign_store as q
from gateway.outreach.campaigns import Campaign, CampaignState
from gateway.outreach.models import Outreach, OutreachEvent
from gateway.store.sqlite import SqliteStore


class SqliteCampaignStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def create(self, campaign: Campaign, events: list[tuple[str, int, OutreachEvent]],
                     now_ms: int) -> None:  # fmt: skip
        args = q.recipient_args(campaign.id, events, now_ms)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(q.INSERT_CAMPAIGN, q.campaign_args(campaign, now_ms))
            conn.executemany(q.INSERT_RECIPIENT, args)

        await self._store.write(op)

    async def get(self, campaign_id: str) -> Campaign | None:
        def op(conn: sqlite3.Connection) -> Campaign | None:
            row = conn.execute(q.BY_ID, (campaign_id,)).fetchone()
            return None if row is None else q.campaign_from_row(row)

        return await self._store.read(op)

    async def latest(self, limit: int) -> list[Campaign]:
        def op(conn: sqlite3.Connection) -> list[Campaign]:
            return [q.campaign_from_row(r) for r in conn.execute(q.LIST, (limit,)).fetchall()]

        return await self._store.read(op)

    async def set_state(self, campaign_id: str, state: CampaignState, was: CampaignState,
                        now_ms: int) -> bool:  # fmt: skip
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(q.SET_STATE, (state.value, now_ms, campaign_id, was.value))
            if cur.rowcount == 1 and state is CampaignState.CANCELLED:
                conn.execute(q.SKIP_REST, (now_ms, campaign_id))
            return cur.rowcount == 1

        return await self._store.write(op)

    async def counts(self, campaign_id: str) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            return q.tally(conn.execute(q.COUNTS, (campaign_id,)).fetchall())

        return await self._store.read(op)

    async def recipients(self, campaign_id: str, after_row: int, limit: int) -> list[Outreach]:
        def op(conn: sqlite3.Connection) -> list[Outreach]:
            rows = conn.execute(q.RECIPIENTS, (campaign_id, after_row, limit)).fetchall()
            return q.recipients_of(rows)

        return await self._store.read(op)

    async def reserve(self, key: str, now_us: int, interval_us: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                q.RESERVE_SQLITE, (key, now_us + interval_us, interval_us, interval_us)
            ).fetchone()
            return int(row["next_at"]) - interval_us

        return await self._store.write(op)

    async def proceed(self, outreach_id: str, held_until: int, until: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(q.PROCEED, (until, outreach_id, held_until)).rowcount == 1:
                return True
            conn.execute(q.LET_GO, (outreach_id, held_until))
            return False

        return await self._store.write(op)

    async def saved(self, since_ms: int, until_ms: int, window_ms: int, now_ms: int) -> (
        tuple[int, int]
    ):  # fmt: skip
        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            rows = conn.execute(q.SAVED, (window_ms, since_ms, until_ms,
                                          now_ms - window_ms)).fetchall()  # fmt: skip
            return sum(1 for r in rows if not r["contacts"]), len(rows)

        return await self._store.read(op)


__all__ = ["SqliteCampaignStore"]
