"""The contact profile beside a conversation: identities, the backend's tier and
orders, the customer's other conversations and ratings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from agent.demo_backend import DemoBackend
from gateway.app import BACKEND, DISPATCHER
from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage
from gateway.routing.models import Role
from tests.gateway.routing.desk import Desk, HandoverBrain, build

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_the_profile_shows_tier_orders_past_conversations_and_ratings(
    tmp_path: Path, store_url: str, aiohttp_client: MakeClient
) -> None:
    app = build(tmp_path / "data", HandoverBrain(), database_url=store_url,
                secret_key="desk-test-secret-0123456789")  # fmt: skip
    backend = DemoBackend(tmp_path / "demo.sqlite3")
    app[BACKEND] = backend
    desk = Desk(await aiohttp_client(app), HandoverBrain())
    ann = await desk.rep("ann")
    jane = Identity(kind=IdentityKind.EMAIL, value="jane@example.com")

    async def say(text: str) -> int:
        got = await app[DISPATCHER].handle(InboundMessage(
            channel=ChannelKind.EMAIL, identity=jane, text=text, account_ref="C-1001",
            display_name="Jane Doe"))  # fmt: skip
        await app[DISPATCHER].drain()
        return got.conversation.id

    first = await say("human general")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.close(ann.id, first, "resolved")
    assert await desk.routing.rate(first, 5) is not None
    second = await say("human general")
    assert second != first
    await desk.offer_for(ann.id)
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.rep("eve", "technical", available=False)

    await desk.login("eve")  # neither offered it nor serving its queue
    assert (await desk.client.get(f"/console/api/conversations/{second}/profile")).status == 404
    await desk.login("lead")
    resp = await desk.client.get(f"/console/api/conversations/{second}/profile")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["emails"] == ["jane@example.com"] and body["account"] == "C-1001"
    assert body["tier"] == "gold"
    expected = await backend.list_orders("C-1001", limit=5)
    assert [o["id"] for o in body["orders"]] == [o.id for o in expected] and expected
    assert [c["id"] for c in body["conversations"]] == [first]
    assert body["conversations"][0]["state"] == "closed"
    assert body["ratings"] == [{"conversation_id": first, "score": 5}]
    await backend.close()


async def test_canned_responses_fill_their_variables_for_the_conversation(
    tmp_path: Path, store_url: str, aiohttp_client: MakeClient
) -> None:
    app = build(tmp_path / "data", HandoverBrain(), database_url=store_url,
                secret_key="desk-test-secret-0123456789")  # fmt: skip
    backend = DemoBackend(tmp_path / "demo.sqlite3")
    app[BACKEND] = backend
    desk = Desk(await aiohttp_client(app), HandoverBrain())
    ann = await desk.rep("ann")
    await desk.rep("boss", role=Role.ADMIN, available=False)
    got = await app[DISPATCHER].handle(InboundMessage(
        channel=ChannelKind.EMAIL, identity=Identity(kind=IdentityKind.EMAIL,
                                                     value="jane@example.com"),
        text="human general", account_ref="C-1001", display_name="Jane Doe"))  # fmt: skip
    await app[DISPATCHER].drain()
    cid = got.conversation.id
    await desk.offer_for(ann.id)

    _, csrf = await desk.login("boss")
    text = (
        "Hi {first_name}, order {order} is on its way. {rep_name} {unknown} {first_name.__class__}"
    )
    made = await desk.post("/console/api/admin/canned", {"name": "shipped", "text": text}, csrf)
    assert made.status == 200
    canned_id = (await made.json())["id"]
    twice = await desk.post("/console/api/admin/canned", {"name": "shipped", "text": "x"}, csrf)
    assert twice.status == 409
    assert (await desk.post("/console/api/admin/canned", {"name": ""}, csrf)).status == 400

    _, csrf = await desk.login("ann")
    assert (
        await desk.post("/console/api/admin/canned", {"name": "n", "text": "t"}, csrf)
    ).status == 403
    listed = await (await desk.client.get("/console/api/canned")).json()
    assert [c["name"] for c in listed["canned"]] == ["shipped"]
    resp = await desk.client.get(f"/console/api/conversations/{cid}/canned/{canned_id}")
    assert resp.status == 200, await resp.text()
    (latest,) = await backend.list_orders("C-1001", limit=1)
    assert (await resp.json())["text"] == (
        f"Hi Jane, order {latest.id} is on its way. Ann {{unknown}} {{first_name.__class__}}"
    )
    missing = await desk.client.get(f"/console/api/conversations/{cid}/canned/999")
    assert missing.status == 404
    await backend.close()
