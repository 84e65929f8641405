"""Live chat across two real gateway nodes (one PostgreSQL, one Redis): one signed
customer with a tab on each node writes in both tabs at once. Deliveries from the
two writers reach each socket out of `seq` order; every tab still receives every
message of the customer, each once (issue 15: a lower `seq` that arrived after a
higher one used to be dropped, leaving a hole no resume could fill)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.models import ChannelKind, Direction, Identity, IdentityKind
from gateway.store.postgres import PostgresStore
from tests.support import services
from tests.support.nodes import Chat, Cluster, Frame

IDENTITY_SECRET = "webchat-identity-secret-for-tests-0123"
PER_TAB = 30


@pytest.fixture
async def cluster(pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    env = {
        "GATEWAY_WEBCHAT_IDENTITY_SECRET": IDENTITY_SECRET,
        "GATEWAY_WEBCHAT_FRAMES_PER_MINUTE": "6000",
        "GATEWAY_WEBCHAT_FRAME_BURST": "200",
    }
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path, env=env)
    yield nodes
    nodes.stop()


def signed_in(account: str, name: str) -> Frame:
    signature = hmac.new(IDENTITY_SECRET.encode(), account.encode(), hashlib.sha256).hexdigest()
    return {"id": account, "name": name, "signature": signature}


def seqs(chat: Chat) -> list[int]:
    """Every message seq the tab was sent (live frames and history), repeats included."""
    out: list[int] = []
    for frame in chat.frames:
        for m in frame.get("messages", [frame] if frame["type"] == "message" else []):
            out.append(int(m["seq"]))
    return out


async def write(chat: Chat, tab: str) -> None:
    """Send PER_TAB messages without waiting for answers (acks are awaited at the end)."""
    assert chat.ws is not None
    ids = []
    for n in range(PER_TAB):
        client_id = uuid.uuid4().hex
        ids.append(client_id)
        await chat.ws.send_json({"type": "message", "text": f"{tab} says {n}: hello",
                                 "client_id": client_id})  # fmt: skip
        await asyncio.sleep(0.01)
    for client_id in ids:
        await chat.wait(lambda f, c=client_id: f["type"] == "ack" and f["client_id"] == c)


async def test_two_tabs_on_two_nodes_writing_at_once_each_receive_every_message(
    cluster: Cluster, pg_url: str
) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    user = signed_in("C-1001", "Jane Doe")
    async with aiohttp.ClientSession() as session:
        tab_a, tab_b = Chat(session, user=user), Chat(session, user=user)
        try:
            await tab_a.connect(a)
            await tab_b.connect(b)
            await asyncio.gather(write(tab_a, "A"), write(tab_b, "B"))

            store = await PostgresStore.open(pg_url)
            try:
                customer = await store.find_customer(
                    Identity(kind=IdentityKind.ACCOUNT, value="C-1001")
                )
                assert customer is not None
                # Every message answered: nothing more will be written for the customer.
                async with asyncio.timeout(60):
                    while await store.unhandled_messages():  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                stored = [
                    m for m in await store.history(customer.id, limit=10_000)
                    if m.direction is not Direction.INTERNAL and m.channel is ChannelKind.WEBCHAT
                ]  # fmt: skip
            finally:
                await store.close()
            assert sum(m.author.value == "customer" for m in stored) == 2 * PER_TAB
            wanted = {m.seq for m in stored}
            for tab in (tab_a, tab_b):
                async with asyncio.timeout(20):
                    while not wanted <= set(seqs(tab)):
                        await tab.wait(lambda f: f["type"] == "message", timeout_s=20)
                        await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
            for tab in (tab_a, tab_b):
                repeated = [s for s, n in Counter(seqs(tab)).items() if n > 1]
                assert repeated == [], "a message was sent twice to one tab"
        finally:
            await tab_a.close()
            await tab_b.close()
