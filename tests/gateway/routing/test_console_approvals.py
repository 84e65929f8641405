"""Refunds over the limit, decided from the console.

The real LLM agent (the `openai` client against a scripted local server) asks the
customer to confirm a refund of order 1001 ($129.99, over the $50 default limit);
their "yes" records `approval.pending`, and the console's approvers take it from there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agent.demo_backend import DemoBackend
from gateway.app import BACKEND, DISPATCHER, create_app
from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
from tests.gateway.routing.desk import Desk, HandoverBrain, desk_settings
from tests.support.fake_openai import FakeOpenAI, text, tool_calls

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
JANE = Identity(kind=IdentityKind.WEBCHAT, value="jane", verified=Verification.HMAC)


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def llm_desk(
    tmp_path: Path, llm: FakeOpenAI, aiohttp_client: MakeClient, store_url: str, **extra: Any
) -> Desk:
    """The desk with the LLM agent, on each store backend (`store_url`)."""
    settings = desk_settings(tmp_path / "data", llm_base_url=llm.base_url,
                             llm_model="test-model", database_url=store_url,
                             secret_key="desk-test-secret-0123456789", **extra)  # fmt: skip
    return Desk(await aiohttp_client(create_app(settings)), HandoverBrain())


async def jane_says(desk: Desk, words: str) -> int:
    ingested = await desk.app[DISPATCHER].handle(
        InboundMessage(channel=ChannelKind.WEBCHAT, identity=JANE, text=words,
                       account_ref="C-1001", display_name="Jane Doe")
    )  # fmt: skip
    await desk.app[DISPATCHER].drain()
    return ingested.conversation.id


async def pending_refund(desk: Desk, llm: FakeOpenAI) -> int:
    llm.add(
        tool_calls(("refund_order", {"order_id": "1001", "reason": "arrived broken"})),
        text("I can help with that."),
    )
    await jane_says(desk, "order 1001 arrived broken, refund please")
    return await jane_says(desk, "yes")


async def refunds(desk: Desk) -> list[tuple[str | None, int]]:
    backend = desk.app[BACKEND]
    assert isinstance(backend, DemoBackend)
    summary = await backend.billing_summary("C-1001")
    return [(c.order_id, c.amount_cents) for c in summary.recent if c.kind == "refund"]


async def _event(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads((await ws.receive(timeout=5)).data)
        if frame.get("kind") == kind:
            return frame  # type: ignore[no-any-return]


async def test_an_approver_is_told_live_and_approves_the_refund(
    tmp_path: Path, llm: FakeOpenAI, aiohttp_client: MakeClient, store_url: str
) -> None:
    desk = await llm_desk(tmp_path, llm, aiohttp_client, store_url)
    bea = await desk.rep("bea", "billing", available=False)
    await desk.rep("gus", "general", available=False)
    _, csrf = await desk.login("bea")
    me = await (await desk.client.get("/console/api/me")).json()
    assert me["approver"] is True
    ws = await desk.client.ws_connect(f"/console/ws?after={me['seq']}")

    conv_id = await pending_refund(desk, llm)
    announced = await _event(ws, "approval.pending")
    assert announced["data"]["conversation_id"] == conv_id
    assert announced["data"]["amount_cents"] == 12999
    listed = (await (await desk.client.get("/console/api/approvals")).json())["approvals"]
    assert [(a["conversation_id"], a["amount"], a["may_decide"]) for a in listed] == [
        (conv_id, "$129.99", True)
    ]
    [approval] = listed
    assert approval["args"] == {"order_id": "1001", "reason": "arrived broken"}
    assert (await desk.client.get(f"/console/api/conversations/{conv_id}")).status == 200
    decide = f"/console/api/conversations/{conv_id}/approvals/{approval['approval_id']}"
    assert (await desk.post(decide, {"approve": True})).status == 403  # no CSRF token
    assert (await desk.post(decide, {"approve": "maybe"}, csrf=csrf)).status == 400
    assert await refunds(desk) == []
    await desk.post("/console/logout", csrf=csrf)

    # Another queue's rep can neither see nor decide it, nor can a logged-out browser.
    assert (await desk.client.get("/console/api/approvals")).status == 401
    assert (await desk.post(decide, {"approve": True}, csrf=csrf)).status == 401
    _, gus_csrf = await desk.login("gus")
    assert (await (await desk.client.get("/console/api/approvals")).json())["approvals"] == []
    assert (await desk.client.get(f"/console/api/conversations/{conv_id}")).status == 404
    hidden = await desk.client.get(f"/console/api/conversations/{conv_id}/approvals")
    assert hidden.status == 404
    assert (await desk.post(decide, {"approve": True}, csrf=gus_csrf)).status == 404
    assert await refunds(desk) == []
    await desk.post("/console/logout", csrf=gus_csrf)

    _, csrf = await desk.login("bea")
    ws = await desk.client.ws_connect(f"/console/ws?after={announced['seq']}")
    done = await desk.post(decide, {"approve": True}, csrf=csrf)
    assert done.status == 200
    body = await done.json()
    assert body["approved"] is True and body["rep"] == "Bea"
    assert "refund of $129.99 for order 1001 was approved" in body["message"]["text"]
    assert await refunds(desk) == [("1001", 12999)]
    decided = await _event(ws, "approval.decided")
    assert decided["data"]["approval_id"] == approval["approval_id"]
    texts = await desk.texts(conv_id)
    assert texts[-1] == body["message"]["text"]
    assert (await desk.post(decide, {"approve": True}, csrf=csrf)).status == 404  # final
    assert (await (await desk.client.get("/console/api/approvals")).json())["approvals"] == []
    assert (await desk.client.get(f"/console/api/conversations/{conv_id}")).status == 404
    assert await refunds(desk) == [("1001", 12999)]
    assert bea.id == me["rep"]["id"]
    await ws.close()


async def test_the_holding_rep_decides_and_a_decline_tells_the_customer(
    tmp_path: Path, llm: FakeOpenAI, aiohttp_client: MakeClient, store_url: str
) -> None:
    desk = await llm_desk(tmp_path, llm, aiohttp_client, store_url, approvals_queue="")
    gus = await desk.rep("gus", "general,billing,technical")
    conv_id = await pending_refund(desk, llm)
    _, csrf = await desk.login("gus")
    me = await (await desk.client.get("/console/api/me")).json()
    assert me["approver"] is False  # nobody is, without an approvals queue
    assert (await (await desk.client.get("/console/api/approvals")).json())["approvals"] == []

    await jane_says(desk, "I want to talk to a real person")
    offer_id, offered = await desk.offer_for(gus.id)
    assert offered == conv_id
    waiting = await desk.client.get(f"/console/api/conversations/{conv_id}/approvals")
    [approval] = (await waiting.json())["approvals"]
    assert approval["may_decide"] is False  # offered, not held yet
    decide = f"/console/api/conversations/{conv_id}/approvals/{approval['approval_id']}"
    assert (await desk.post(decide, {"approve": True}, csrf=csrf)).status == 409
    assert (await desk.post(f"/console/api/offers/{offer_id}/accept", csrf=csrf)).status == 200

    listed = (await (await desk.client.get("/console/api/approvals")).json())["approvals"]
    assert [a["approval_id"] for a in listed] == [approval["approval_id"]]
    assert listed[0]["may_decide"] is True
    done = await desk.post(decide, {"approve": False}, csrf=csrf)
    assert done.status == 200
    assert "could not approve it" in (await done.json())["message"]["text"]
    assert "could not approve it" in (await desk.texts(conv_id))[-1]
    assert await refunds(desk) == []


async def test_what_waits_is_read_back_after_a_restart(
    tmp_path: Path, llm: FakeOpenAI, aiohttp_client: MakeClient, store_url: str
) -> None:
    desk = await llm_desk(tmp_path, llm, aiohttp_client, store_url)
    await desk.rep("bea", "billing", available=False)
    conv_id = await pending_refund(desk, llm)
    await desk.client.close()

    desk = await llm_desk(tmp_path, llm, aiohttp_client, store_url)
    _, csrf = await desk.login("bea")
    [approval] = (await (await desk.client.get("/console/api/approvals")).json())["approvals"]
    assert approval["conversation_id"] == conv_id
    decide = f"/console/api/conversations/{conv_id}/approvals/{approval['approval_id']}"
    assert (await desk.post(decide, {"approve": True}, csrf=csrf)).status == 200
    assert await refunds(desk) == [("1001", 12999)]
