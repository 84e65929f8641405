"""The reports' summary on two real `gateway serve` processes (one PostgreSQL
database, one Redis bus; skipped without them, required in CI): conversations with
known outcomes handled on both nodes, then `GET /api/v1/reports/summary` asked of
each node gives the same exact figures.

Web chat customers on both nodes: two are answered by the embedded agent and say
thanks (resolved, confirmed), one only says hello (still with the agent), two ask
for a person. Each of those is answered by a rep whose console is on the *other*
node, closed there, and rated through the rating link on a node again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from gateway.desk.summary import percentile
from gateway.routing.models import RepDraft, Role
from gateway.routing.passwords import hash_password
from gateway.store.pg_routing import PostgresRoutingStore
from gateway.store.postgres import PostgresStore
from tests.support import services
from tests.support.nodes import Chat, Cluster, Console, Node

PASSWORD = "rep password 123"
TOKEN = "scale-out-reports-token-0123"


@pytest.fixture
async def cluster(pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    store = await PostgresStore.open(pg_url)
    try:
        routing = PostgresRoutingStore(store)
        for username, role in (("ann", Role.REP), ("bea", Role.SUPERVISOR)):
            await routing.add_rep(RepDraft(
                username=username, display_name=username.title(), skills=("general",),
                password_hash=hash_password(PASSWORD), role=role,
            ))  # fmt: skip
    finally:
        await store.close()
    env = {"GATEWAY_API_TOKEN": TOKEN, "GATEWAY_SLA_FIRST_RESPONSE_S": '{"general": 3600}'}
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path, env=env)
    yield nodes
    nodes.stop()


async def _resolved_by_the_agent(session: aiohttp.ClientSession, node: Node) -> None:
    chat = Chat(session)
    try:
        await chat.connect(node)
        await chat.say("what is your refund policy?")
        await chat.wait(lambda f: f["type"] == "message" and f.get("author") == "agent")
        await chat.say("great, thanks, that's all")
        await chat.wait(lambda f: len(chat.texts("agent")) >= 2)  # the answer to the thanks
    finally:
        await chat.close()


async def _handled_by_a_rep(
    session: aiohttp.ClientSession, node: Node, rep: Console, score: int, rate_on: Node
) -> int:
    """A customer on `node` asks for a person; `rep` (on the other node) answers and
    closes; the customer rates through the link's path on `rate_on`."""
    chat = Chat(session)
    try:
        await chat.connect(node)
        await chat.say("I want to talk to a real person please")
        offer = await rep.event(lambda e: e["kind"] == "offer")
        cid = int(offer["data"]["conversation_id"])
        await rep.post(f"/offers/{offer['data']['offer_id']}/accept")
        await rep.post(f"/conversations/{cid}/reply", {"text": "Hello, a person here"})
        await chat.wait(lambda f: f["type"] == "message" and "a person here" in f["text"])
        await rep.post(f"/conversations/{cid}/close", {"disposition": "resolved"})
        rating = await chat.wait(lambda f: f["type"] == "rating")
        path = urlsplit(rating["url"]).path
        async with session.post(f"{rate_on.http}{path}", data={"score": str(score)}) as r:
            assert r.status == 200, await r.text()
        return cid
    finally:
        await chat.close()


async def _summary(session: aiohttp.ClientSession, node: Node, since: str, until: str) -> Any:
    async with session.get(
        f"{node.http}/api/v1/reports/summary", params={"since": since, "until": until},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as r:  # fmt: skip
        assert r.status == 200, await r.text()
        return await r.json()


async def _timings(pg_url: str, handed: list[int], others: list[int]) -> dict[str, Any]:
    """First response and resolution times, from the store's ordinary reads of each
    conversation (not from the reports' own queries)."""
    store = await PostgresStore.open(pg_url)
    first, resolution = [], []
    try:
        for cid in others:
            events = await store.events(cid)
            done = [e.created_at for e in events if e.kind == "conversation.resolved"]
            if done:
                conv = await store.get_conversation(cid)
                resolution.append((min(done) - conv.created_at).total_seconds())
        for cid in handed:
            conv = await store.get_conversation(cid)
            events = await store.events(cid)
            handover = min(e.created_at for e in events if e.kind == "handover")
            replies = [m.created_at for m in await store.conversation_messages(cid)
                       if m.author.value == "rep" and m.direction.value == "outbound"]  # fmt: skip
            first.append((min(replies) - handover).total_seconds())
            (closed,) = [e.created_at for e in events
                         if e.kind == "state.changed" and e.data["to"] == "closed"]  # fmt: skip
            resolution.append((closed - conv.created_at).total_seconds())
    finally:
        await store.close()
    return {"first": first, "resolution": resolution}


def _spread(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    return {"p50": round(percentile(values, 0.5) or 0, 3),
            "p90": round(percentile(values, 0.9) or 0, 3), "count": len(values)}  # fmt: skip


async def test_both_nodes_report_the_same_exact_figures(cluster: Cluster, pg_url: str) -> None:
    a = await cluster.start("a")  # the routing leader
    b = await cluster.start("b")
    since = datetime.now(UTC) - timedelta(seconds=1)
    ann, bea = Console(b), Console(a)  # each rep's console on one node
    async with aiohttp.ClientSession() as session:
        try:
            await _resolved_by_the_agent(session, a)
            await _resolved_by_the_agent(session, b)
            hello = Chat(session)
            await hello.connect(a)
            await hello.say("hello")  # stays with the agent: neither resolved nor handed over
            await hello.close()

            await ann.login("ann", PASSWORD)
            await ann.post("/presence", {"status": "available"})
            on_a = await _handled_by_a_rep(session, a, ann, 5, rate_on=b)
            await ann.post("/presence", {"status": "away"})
            await bea.login("bea", PASSWORD)
            await bea.post("/presence", {"status": "available"})
            on_b = await _handled_by_a_rep(session, b, bea, 2, rate_on=a)

            until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            from_a = await _summary(session, a, since.isoformat(), until)
            from_b = await _summary(session, b, since.isoformat(), until)
            found = (await bea.get("/conversations"))["conversations"]  # a supervisor's search
        finally:
            await ann.close()
            await bea.close()

    assert from_a == from_b
    assert from_a["conversations"] == 5
    assert from_a["by_channel"] == {"webchat": 5, "sms": 0, "email": 0, "phone": 0}
    assert from_a["bot_resolved"] == 2
    assert from_a["bot_resolved_how"] == {"confirmed": 2, "assumed": 0, "closed": 0}
    assert from_a["handed_over"] == 2
    assert from_a["resolution_rate"] == 0.4 and from_a["handover_rate"] == 0.4
    assert from_a["csat"] == {"count": 2, "average": 3.5,
                              "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}  # fmt: skip
    assert from_a["sla_breaches"] == 0
    ids = [c["id"] for c in found]
    assert len(ids) == 5 and {on_a, on_b} <= set(ids)
    times = await _timings(pg_url, [on_a, on_b], [i for i in ids if i not in (on_a, on_b)])
    assert from_a["first_response_seconds"] == _spread(times["first"])
    # Resolution: the two the reps closed and the two the agent resolved.
    assert len(times["resolution"]) == 4
    assert from_a["resolution_seconds"] == _spread(times["resolution"])
