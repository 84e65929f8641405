"""The email answer ledger (migration 0007) on SQLite and PostgreSQL: caps per sender,
per domain and in all, the window, and no cap passed by concurrent takers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from channels.email.limits import AnswerLedger, open_ledger
from tests.support.stores import AnyStore, open_store


@pytest.fixture
async def ledger(store_url: str) -> AsyncIterator[AnswerLedger]:
    store: AnyStore = await open_store(store_url)
    yield open_ledger(store)
    await store.close()


async def test_each_cap_holds_back_in_its_turn(ledger: AnswerLedger) -> None:
    caps = (2, 3, 4)
    take = ledger.take
    assert await take("a@x.example", "x.example", window_s=60, caps=caps) is None
    assert await take("a@x.example", "x.example", window_s=60, caps=caps) is None
    assert await take("a@x.example", "x.example", window_s=60, caps=caps) == "sender"
    assert await take("b@x.example", "x.example", window_s=60, caps=caps) is None
    assert await take("c@x.example", "x.example", window_s=60, caps=caps) == "domain"
    assert await take("d@y.example", "y.example", window_s=60, caps=caps) is None
    assert await take("e@z.example", "z.example", window_s=60, caps=caps) == "total"


async def test_answers_older_than_the_window_no_longer_count(ledger: AnswerLedger) -> None:
    caps = (1, 10, 10)
    assert await ledger.take("a@x.example", "x.example", window_s=0.2, caps=caps) is None
    assert await ledger.take("a@x.example", "x.example", window_s=0.2, caps=caps) == "sender"
    await asyncio.sleep(0.3)
    assert await ledger.take("a@x.example", "x.example", window_s=0.2, caps=caps) is None


async def test_concurrent_takers_never_pass_a_cap(store_url: str) -> None:
    nodes = 1 if store_url.startswith("sqlite") else 2  # SQLite has one writer process
    stores = [await open_store(store_url) for _ in range(nodes)]
    try:
        ledgers = [open_ledger(s) for s in stores]
        got = await asyncio.gather(
            *(
                ledgers[i % nodes].take(
                    f"s{i}@x.example", "x.example", window_s=60, caps=(5, 3, 99)
                )
                for i in range(12)
            )
        )
        assert got.count(None) == 3 and got.count("domain") == 9
    finally:
        for s in stores:
            await s.close()
