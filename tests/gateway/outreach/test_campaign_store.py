"""The send pace on both stores: slots taken at once by several nodes (PostgreSQL:
two stores, two pools) are all different and one interval apart."""

from __future__ import annotations

import asyncio

from gateway.outreach.setup import open_campaign_store
from tests.support.stores import open_store


async def test_slots_taken_at_once_by_two_nodes_are_one_interval_apart(store_url: str) -> None:
    store = await open_store(store_url)
    other = await open_store(store_url) if store_url.startswith("postgres") else store
    try:
        paces = [open_campaign_store(store), open_campaign_store(other)]
        now_us, interval = 1_000_000_000_000, 250_000
        slots = await asyncio.gather(*(paces[n % 2].reserve("all", now_us, interval)
                                       for n in range(20)))  # fmt: skip
        assert sorted(slots) == [now_us + k * interval for k in range(20)]
        # Another pace is its own; after a quiet spell the next slot is now, not a burst.
        assert await paces[0].reserve("campaign:x", now_us, interval) == now_us
        later = now_us + 60_000_000
        assert await paces[1].reserve("all", later, interval) == later
        assert await paces[0].reserve("all", later, interval) == later + interval
    finally:
        if other is not store:
            await other.close()
        await store.close()
