"""The outreach rows on both stores: one row per event id, and each due row claimed
by one sender when several look at once (PostgreSQL: two stores, two pools)."""

from __future__ import annotations

import asyncio

from gateway.outreach.models import CustomerRef, OutreachEvent, OutreachState
from gateway.outreach.setup import open_outreach_store
from gateway.store.rows import now_ms
from tests.support.stores import open_store


def _event(n: int) -> OutreachEvent:
    return OutreachEvent(id=f"e-{n}", type="order.delayed", customer=CustomerRef(account="C-1"),
                         data={"order_id": str(n)})  # fmt: skip


async def test_one_row_per_event_and_each_due_row_claimed_once(store_url: str) -> None:
    store = await open_store(store_url)
    other = await open_store(store_url) if store_url.startswith("postgres") else store
    try:
        rows, other_rows = open_outreach_store(store), open_outreach_store(other)
        now = now_ms()
        made = [await rows.insert(f"or_{n}", _event(n), now) for n in range(20)]
        assert all(created for _, created in made)
        again, created = await other_rows.insert("or_new", _event(3), now)
        assert not created and again.id == "or_3" and again.state is OutreachState.QUEUED
        claims = await asyncio.gather(
            *(s.claim(7, 60_000, now_ms()) for s in [rows, other_rows] * 3)
        )
        ids = [o.id for batch in claims for o in batch]
        assert sorted(ids) == sorted(f"or_{n}" for n in range(20))  # each once, none left out
        assert await rows.claim(100, 60_000, now_ms()) == []  # all held
        assert await rows.release() == 20  # a single node starting takes them back
        assert len(await rows.claim(100, 60_000, now_ms())) == 20
        await rows.update("or_0", now_ms(), state="sent", due_at=None, claimed_until=None,
                          sent_at=now_ms(), tried=["sms"])  # fmt: skip
        sent = await rows.get("or_0")
        assert sent is not None and sent.state is OutreachState.SENT and sent.due_at is None
        assert [c.value for c in sent.tried] == ["sms"]
    finally:
        if other is not store:
            await other.close()
        await store.close()
