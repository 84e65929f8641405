"""`Campaigns`: create a campaign from a CSV, report its progress and recipients,
pause, resume and cancel it (the people's side; the sending is the core's loop)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.errors import ConflictError, NotFoundError
from gateway.outreach.campaign_store import OPEN_STATES, CampaignStore
from gateway.outreach.campaigns import (
    Campaign,
    CampaignSpec,
    CampaignState,
    outreach_id,
    parse_csv,
    rule_of,
)
from gateway.outreach.models import Outreach
from gateway.outreach.rules import Rules
from gateway.store.rows import to_ms

S = CampaignState
# action -> (the states it acts from, the state it leads to)
ACTIONS: dict[str, tuple[tuple[CampaignState, ...], CampaignState]] = {
    "pause": ((S.RUNNING,), S.PAUSED),
    "resume": ((S.PAUSED,), S.RUNNING),
    "cancel": ((S.RUNNING, S.PAUSED), S.CANCELLED),
}


class Campaigns:
    def __init__(self, store: CampaignStore, rules: Rules, wake: Callable[[], None],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.store, self.rules, self.wake, self.clock = store, rules, wake, clock

    async def create(self, spec: CampaignSpec, raw: bytes, by: str | None) -> Campaign:
        """Check the message and every row (CampaignInvalid naming them), then store
        the campaign with one queued outreach per row, running."""
        rule = rule_of(spec.message, self.rules)
        campaign_id = "cp_" + secrets.token_hex(8)
        # Parsing and checking ten thousand rows is CPU work: off the event loop.
        events = await asyncio.to_thread(parse_csv, raw, rule, campaign_id, spec.message)
        now = self.clock()
        campaign = Campaign(id=campaign_id, name=spec.name, state=S.RUNNING,
                            message=spec.message, rate=spec.rate, total=len(events),
                            created_by=by, created_at=now, updated_at=now)  # fmt: skip
        rows = []
        for event in events:
            n = int(event.id.rsplit(":", 1)[1])
            rows.append((outreach_id(campaign_id, n), n, event))
        await self.store.create(campaign, rows, to_ms(now))
        self.wake()
        return campaign

    async def get(self, campaign_id: str) -> Campaign:
        found = await self.store.get(campaign_id) if len(campaign_id) <= 40 else None
        if found is None:
            raise NotFoundError(f"no campaign {campaign_id!r}")
        return found

    async def progress(self, campaign_id: str) -> dict[str, Any]:
        """The campaign with its recipients counted by state (and `done` once nobody
        is left to send to)."""
        campaign = await self.get(campaign_id)
        counts = await self.store.counts(campaign_id)
        now = to_ms(self.clock())
        if campaign.state is S.CANCELLED and counts["queued"] + counts["deferred"]:
            # A row a sender held while it was cancelled may have been deferred after
            # (quiet hours): skip it now too (nobody sends it: its campaign is not running).
            await self.store.set_state(campaign_id, S.CANCELLED, S.CANCELLED, now)
            counts = await self.store.counts(campaign_id)
        left = sum(counts[s] for s in OPEN_STATES)
        if (campaign.state is S.RUNNING and left == 0
                and await self.store.set_state(campaign_id, S.DONE, S.RUNNING, now)):  # fmt: skip
            campaign = campaign.model_copy(update={"state": S.DONE})
        return {**view(campaign), "counts": counts, "finished": campaign.total - left}

    async def latest(self, limit: int = 50) -> list[dict[str, Any]]:
        return [await self.progress(c.id) for c in await self.store.latest(limit)]

    async def recipients(self, campaign_id: str, after_row: int, limit: int) -> (
        list[dict[str, Any]]
    ):  # fmt: skip
        await self.get(campaign_id)
        return [recipient(o) for o in await self.store.recipients(campaign_id, after_row, limit)]

    async def act(self, campaign_id: str, action: str) -> dict[str, Any]:
        """pause, resume or cancel (ConflictError when the campaign is not in a state
        the action applies to; NotFoundError for an unknown action or campaign)."""
        if action not in ACTIONS:
            raise NotFoundError(f"no campaign action {action!r} (pause, resume, cancel)")
        campaign = await self.get(campaign_id)
        sources, target = ACTIONS[action]
        if campaign.state not in sources or not await self.store.set_state(
            campaign_id, target, campaign.state, to_ms(self.clock())
        ):
            raise ConflictError(f"the campaign is {campaign.state.value}: it cannot {action}")
        if target is S.RUNNING:
            self.wake()
        return await self.progress(campaign_id)


def view(campaign: Campaign) -> dict[str, Any]:
    return campaign.model_dump(mode="json", exclude_none=True)


def recipient(o: Outreach) -> dict[str, Any]:
    """One recipient of a campaign, as the API and the console show it."""
    return {
        "row": o.campaign_row, "outreach_id": o.id,
        "customer": o.event.customer.model_dump(exclude_none=True),
        "state": o.state.value, "channel": o.channel.value if o.channel else None,
        "error": o.error, "conversation_id": o.conversation_id,
        "sent_at": o.sent_at.isoformat() if o.sent_at else None,
    }  # fmt: skip


__all__ = ["ACTIONS", "Campaigns", "recipient", "view"]
