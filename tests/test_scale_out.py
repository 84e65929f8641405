"""Several gateway nodes as one system: two real `gateway serve` processes on one
PostgreSQL database and one Redis bus (skipped without them, required in CI).

- a rep connected to node A answers a chat customer whose websocket is on node B,
  and a handover decided on node B is offered to that rep on node A; the rep's
  console read on node B (`/me`, the conversation) shows what the leader holds;
- a chat's deliveries cross the bus only while another node holds one of its
  sockets (a second tab on the other node gets everything live);
- a node killed (SIGKILL) mid-conversation loses nothing: its chat reconnects to
  the other node and continues by sequence number, its queued work is offered
  again by the node that takes over routing, and a message it had stored but not
  answered is answered by the other node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis

from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
from gateway.routing.models import RepDraft
from gateway.routing.passwords import hash_password
from gateway.store.pg_routing import PostgresRoutingStore
from gateway.store.postgres import PostgresStore
from tests.support import services
from tests.support.nodes import Chat, Cluster, Console, Frame

PASSWORD = "rep password 123"


@pytest.fixture
async def cluster(pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    store = await PostgresStore.open(pg_url)
    try:
        draft = RepDraft(username="alice", display_name="Alice", skills=("general",),
                         password_hash=hash_password(PASSWORD))  # fmt: skip
        await PostgresRoutingStore(store).add_rep(draft)
    finally:
        await store.close()
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path)
    yield nodes
    nodes.stop()


async def test_a_rep_on_node_a_takes_and_answers_a_chat_on_node_b(cluster: Cluster) -> None:
    a = await cluster.start("a")  # starts first: routes conversations
    b = await cluster.start("b")
    rep = Console(a)
    async with aiohttp.ClientSession() as session:
        chat = Chat(session)
        try:
            await rep.login("alice", PASSWORD)
            await rep.post("/presence", {"status": "available"})
            await chat.connect(b)
            await chat.say("hello")
            await chat.wait(lambda f: f["type"] == "message" and f["author"] == "agent")
            # The handover is decided on B (the chat's node); the offer reaches A's console.
            await chat.say("I want to talk to a real person please")
            offer = await rep.event(lambda e: e["kind"] == "offer")
            conv_id = offer["data"]["conversation_id"]
            await rep.post(f"/offers/{offer['data']['offer_id']}/accept")
            await chat.wait(lambda f: f["type"] == "message" and "Alice" in f["text"])
            # The console read on B (not the leader) shows the leader's picture.
            again = Console(b)
            try:
                await again.login("alice", PASSWORD)
                [held] = (await again.get("/me"))["held"]
                assert held["conversation_id"] == conv_id and held["need"]
                view = await again.get(f"/conversations/{conv_id}")
                assert view["held_by_you"] is True
                assert view["conversation"]["brief"]["need"] == held["need"]
                assert any(m["text"] == "hello" for m in view["messages"])
            finally:
                await again.close()
            # The rep's answer, stored on A, reaches the socket on B.
            await rep.post(f"/conversations/{conv_id}/reply", {"text": "Hi, Alice here."})
            got = await chat.wait(lambda f: f["type"] == "message" and f["author"] == "rep")
            assert got["text"] == "Hi, Alice here."
            # And the customer's next words, taken on B, reach the rep's console on A.
            await chat.say("thanks, my order is late")
            said = await rep.event(
                lambda e: (
                    e["kind"] == "message"
                    and e["data"]["message"]["text"] == "thanks, my order is late"
                )
            )
            assert said["data"]["conversation_id"] == conv_id
            overview = await rep.post("/presence", {"status": "available"})
            assert overview["presence"] == "available"
        finally:
            await chat.close()
            await rep.close()


async def test_a_killed_node_loses_nothing_and_its_work_continues(
    cluster: Cluster, pg_url: str
) -> None:
    a = await cluster.start("a")  # the routing leader
    b = await cluster.start("b")
    async with aiohttp.ClientSession() as session:
        talker, waiter = Chat(session), Chat(session)
        try:
            # A conversation under way on A...
            await talker.connect(a)
            for text in ("hello", "what are your opening hours"):
                await talker.say(text)
            await talker.wait(lambda f: f["type"] == "message" and f["author"] == "agent"
                              and f["seq"] >= 4)  # fmt: skip
            # ...and one waiting in the queue (nobody available), handed over on B.
            await waiter.connect(b)
            await waiter.say("let me speak to a human")
            await waiter.wait(lambda f: f["type"] == "message" and f["author"] == "system")
            a.kill()

            # The talker's browser reconnects to B and resumes after the last seq it saw.
            seen = talker.last_seq
            await talker.connect(b)
            ack = await talker.say("do you ship internationally")
            assert ack["seq"] == seen + 1  # numbering continues without a gap
            await talker.wait(lambda f: f["type"] == "message" and f["author"] == "agent"
                              and f["seq"] > ack["seq"])  # fmt: skip

            # B took over routing: the queued conversation is offered to the rep there.
            rep = Console(b)
            try:
                await rep.login("alice", PASSWORD)
                await rep.post("/presence", {"status": "available"})
                offer = await rep.event(lambda e: e["kind"] == "offer", timeout_s=30)
                await rep.post(f"/offers/{offer['data']['offer_id']}/accept")
                await waiter.wait(lambda f: f["type"] == "message" and "Alice" in f["text"])
            finally:
                await rep.close()
        finally:
            await talker.close()
            await waiter.close()

    # A message a dead node stored but never answered is answered by the living one.
    store = await PostgresStore.open(pg_url)
    try:
        orphan = await store.ingest(InboundMessage(
            channel=ChannelKind.WEBCHAT, text="hello, anyone there?",
            identity=Identity(kind=IdentityKind.WEBCHAT, value="orphan",
                              verified=Verification.SIGNED_TOKEN),
        ))  # fmt: skip
        async with asyncio.timeout(30):
            while not await store.message_handled(orphan.message.id):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        texts = [m.author.value for m in await store.conversation_messages(
            orphan.conversation.id)]  # fmt: skip
        assert texts[0] == "customer" and "agent" in texts
        # Nothing anyone sent was lost or left unanswered.
        assert await store.unhandled_messages() == []
    finally:
        await store.close()


async def test_a_chat_crosses_the_bus_only_while_another_node_holds_one_of_its_sockets(
    cluster: Cluster, redis_url: str
) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"{cluster.prefix}:b:channel.webchat")
    crossed: list[bytes] = []

    async def watch() -> None:
        while True:
            got = await pubsub.get_message(timeout=1.0)
            if got is not None:
                crossed.append(got["data"])

    watcher = asyncio.create_task(watch())

    def answered(chat: Chat, after: int) -> Callable[[Frame], bool]:
        return lambda f: f["type"] == "message" and f["author"] == "agent" and f["seq"] > after

    async with aiohttp.ClientSession() as session:
        tab1, tab2 = Chat(session), Chat(session)
        try:
            # One tab, on A: its deliveries stay on A.
            await tab1.connect(a)
            ack = await tab1.say("hello")
            await tab1.wait(answered(tab1, ack["seq"]))
            await asyncio.sleep(0.3)
            assert crossed == []
            # The same visitor opens a second tab, on B: both see everything, live.
            tab2.token = tab1.token
            await tab2.connect(b)
            ack = await tab1.say("what are your opening hours")
            await tab2.wait(lambda f: f["type"] == "message" and f["seq"] == ack["seq"])
            reply = await tab2.wait(answered(tab2, ack["seq"]))
            assert (await tab1.wait(answered(tab1, ack["seq"])))["text"] == reply["text"]
            assert crossed  # the turn ran on A; B's socket got it over the bus
            # B's tab closes: A stops broadcasting once B no longer holds it.
            await tab2.close()
            await asyncio.sleep(0.5)
            before = len(crossed)
            ack = await tab1.say("thanks!")
            await tab1.wait(answered(tab1, ack["seq"]))
            await asyncio.sleep(0.3)
            assert len(crossed) == before
        finally:
            await tab1.close()
            await tab2.close()
            watcher.cancel()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()
