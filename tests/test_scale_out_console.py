"""The console page's approvals on two real `gateway serve` processes (one
PostgreSQL database, one Redis bus; skipped without them, required in CI).

Node A starts first and leads routing. A customer signed in as account C-1001
chats on node B with the LLM agent (the real `openai` client in each node against
one scripted local server) and confirms a refund over the approval limit. The
approvers of the billing queue, one with a console on each node, are told live;
both approve at the same moment: the refund is made once, one of them is told it
is already decided (404), and the customer is told on B.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.llm.approvals import APPROVAL_DECIDED
from gateway.routing.models import RepDraft
from gateway.routing.passwords import hash_password
from gateway.store.pg_routing import PostgresRoutingStore
from gateway.store.postgres import PostgresStore
from tests.support import services
from tests.support.fake_openai import FakeOpenAI, text, tool_calls
from tests.support.nodes import Chat, Cluster, Console, Frame

PASSWORD = "rep password 123"
IDENTITY_SECRET = "scale-out-identity-secret"


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def cluster(
    pg_url: str, redis_url: str, tmp_path: Path, llm: FakeOpenAI
) -> AsyncIterator[Cluster]:
    store = await PostgresStore.open(pg_url)
    try:
        routing = PostgresRoutingStore(store)
        for username in ("bea", "cal"):
            await routing.add_rep(RepDraft(
                username=username, display_name=username.title(), skills=("billing",),
                password_hash=hash_password(PASSWORD),
            ))  # fmt: skip
    finally:
        await store.close()
    env = {
        "GATEWAY_LLM_BASE_URL": llm.base_url,
        "GATEWAY_LLM_MODEL": "test-model",
        "GATEWAY_WEBCHAT_IDENTITY_SECRET": IDENTITY_SECRET,
    }
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path, env=env)
    yield nodes
    nodes.stop()


def signed_in(account: str, name: str) -> Frame:
    """The embedding site's signed-in user (channels/webchat/PROTOCOL.md)."""
    signature = hmac.new(IDENTITY_SECRET.encode(), account.encode(), hashlib.sha256).hexdigest()
    return {"id": account, "name": name, "signature": signature}


def refunds_of(order_id: str, data_dir: Path) -> int:
    """Refunds of the order in a node's demo backend (each node has its own file)."""
    path = data_dir / "demo_backend.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM charges WHERE order_id=? AND kind='refund'", (order_id,)
        ).fetchone()
    return int(row[0])


async def test_approvers_on_two_nodes_decide_a_refund_once_for_a_customer_on_the_other(
    cluster: Cluster, llm: FakeOpenAI, pg_url: str, tmp_path: Path
) -> None:
    a = await cluster.start("a")  # starts first: routes conversations, decides approvals
    b = await cluster.start("b")
    bea, cal = Console(a), Console(b)
    async with aiohttp.ClientSession() as session:
        chat = Chat(session, user=signed_in("C-1001", "Jane Doe"))
        try:
            await bea.login("bea", PASSWORD)
            await cal.login("cal", PASSWORD)
            me = await cal.get("/me")  # on B: the leader's answer
            assert me["approver"] is True and me["rep"]["username"] == "cal"
            assert await cal.get("/approvals") == {"approvals": []}

            llm.add(
                tool_calls(("refund_order", {"order_id": "1001", "reason": "arrived broken"})),
                text("I can help with that."),
            )
            await chat.connect(b)
            await chat.say("Order 1001 arrived broken, I want a refund")
            await chat.wait(lambda f: f["type"] == "message" and "shall I refund" in f["text"])
            await chat.say("yes")
            await chat.wait(lambda f: f["type"] == "message" and "needs a quick" in f["text"])

            # The turn ran on B; the leader announced it to the approvers on both nodes.
            announced = [
                await c.event(lambda e: e["kind"] == "approval.pending") for c in (bea, cal)
            ]
            assert announced[0]["seq"] == announced[1]["seq"]
            conv_id = announced[0]["data"]["conversation_id"]
            assert announced[0]["data"]["amount_cents"] == 12999
            [waiting] = (await cal.get("/approvals"))["approvals"]
            assert (waiting["conversation_id"], waiting["amount"]) == (conv_id, "$129.99")
            assert waiting["may_decide"] is True
            on_b = await cal.get(f"/conversations/{conv_id}/approvals")
            assert [x["approval_id"] for x in on_b["approvals"]] == [waiting["approval_id"]]
            view = await cal.get(f"/conversations/{conv_id}")
            assert any("arrived broken" in m["text"] for m in view["messages"])

            # Both approve at once, one through each node: one refund, one 404.
            decide = f"/conversations/{conv_id}/approvals/{waiting['approval_id']}"
            results = await asyncio.gather(
                bea.request("POST", decide, {"approve": True}),
                cal.request("POST", decide, {"approve": True}),
            )
            assert sorted(status for status, _ in results) == [200, 404]
            [body] = [answer for status, answer in results if status == 200]
            assert body["approved"] is True and body["rep"] in ("Bea", "Cal")
            # The decision was made on A; the customer's socket is on B.
            told = await chat.wait(lambda f: f["type"] == "message" and "was approved" in f["text"])
            assert told["text"] == body["message"]["text"]
            for console in (bea, cal):
                decided = await console.event(lambda e: e["kind"] == "approval.decided")
                assert decided["data"]["approval_id"] == waiting["approval_id"]
            assert await bea.get("/approvals") == {"approvals": []}
            assert (await cal.request("POST", decide, {"approve": False}))[0] == 404
        finally:
            await chat.close()
            await bea.close()
            await cal.close()

    cluster.stop()
    assert sum(refunds_of("1001", tmp_path / n) for n in ("a", "b")) == 1
    store = await PostgresStore.open(pg_url)
    try:
        kinds = [e.kind for e in await store.events(conv_id)]
        assert kinds.count(APPROVAL_DECIDED) == 1 and kinds.count("tool.refund_order") == 1
    finally:
        await store.close()
