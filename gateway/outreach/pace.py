"""`Pace`: the send rate of outreach, kept by every node together.

Before a send the sender takes the next free slot of the global pace
(`GATEWAY_OUTREACH_SEND_RATE`, key `all`) and of its campaign's own rate, if any
(`campaign:<id>`), from the database (campaign_store.py `reserve`), and sleeps until
it. Slots are not saved up: after a quiet spell the next one is now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from gateway.outreach.campaign_store import CampaignStore
from gateway.outreach.campaigns import Campaign
from gateway.outreach.models import Outreach


class Pace:
    def __init__(self, store: CampaignStore | None, rate: float,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.store, self.rate, self.clock = store, rate, clock
        self._campaigns: dict[str, Campaign] = {}

    async def campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign (its message and rate never change: read once per process)."""
        found = self._campaigns.get(campaign_id)
        if found is None and self.store is not None:
            found = await self.store.get(campaign_id)
            if found is not None:
                self._campaigns[campaign_id] = found
        return found

    async def wait(self, item: Outreach) -> bool:
        """Wait for the item's send slots; False when there is no pace (no store)."""
        if self.store is None:
            return False
        campaign = await self.campaign(item.campaign_id) if item.campaign_id else None
        if campaign is not None and campaign.rate:
            await self._slot(f"campaign:{campaign.id}", campaign.rate)
        if self.rate:
            await self._slot("all", self.rate)
        return True

    def _now_us(self) -> int:
        return int(self.clock().timestamp() * 1_000_000)

    async def _slot(self, key: str, rate: float) -> None:
        assert self.store is not None
        interval = max(1, int(1_000_000 / rate))
        slot = await self.store.reserve(key, self._now_us(), interval)
        wait = (slot - self._now_us()) / 1_000_000
        if wait > 0:
            await asyncio.sleep(wait)


__all__ = ["Pace"]
