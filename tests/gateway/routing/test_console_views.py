"""What the console page reads: the overview's resume point, the transfer directory,
and the live timeline of a conversation still waiting in a queue."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.gateway.routing.desk import Desk


async def _frames(ws: aiohttp.ClientWebSocketResponse, until: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads((await ws.receive(timeout=5)).data)
        frames.append(frame)
        if frame.get("kind") == until or frame.get("type") == until:
            return frames


async def test_the_overview_says_where_live_updates_resume(desk: Desk) -> None:
    ann = await desk.rep("ann")
    first = await desk.handover("v1")
    _, csrf = await desk.login("ann")
    me = await (await desk.client.get("/console/api/me")).json()
    [offer] = me["offers"]
    assert offer["conversation_id"] == first.id
    assert offer["channel"] == "webchat" and offer["need"] == "help with general"
    assert me["approver"] is False  # ann does not serve the billing queue
    assert me["seq"] == await desk.routing.last_console_seq() > 0

    ws = await desk.client.ws_connect(f"/console/ws?after={me['seq']}")
    replayed = await _frames(ws, "replayed")
    assert [f["type"] for f in replayed] == ["hello", "replayed"]  # the picture had it all
    await desk.post(f"/console/api/offers/{offer['offer_id']}/accept", csrf=csrf)
    assigned = await _frames(ws, "assigned")
    assert assigned[-1]["seq"] > me["seq"]
    me = await (await desk.client.get("/console/api/me")).json()
    assert [h["conversation_id"] for h in me["held"]] == [first.id]
    assert me["held"][0]["state"] == "with_rep" and me["offers"] == []
    assert ann.id == me["rep"]["id"]
    await ws.close()


async def test_the_directory_lists_every_queue_and_the_other_reps(desk: Desk) -> None:
    assert (await desk.client.get("/console/api/directory")).status == 401
    await desk.rep("ann")
    bob = await desk.rep("bob", "billing", available=False)
    await desk.login("ann")
    found = await (await desk.client.get("/console/api/directory")).json()
    assert [q["name"] for q in found["queues"]] == ["billing", "technical", "general"]
    assert found["reps"] == [{"id": bob.id, "display_name": "Bob", "presence": "offline"}]


async def test_a_waiting_customers_words_reach_the_reps_of_the_queue_live(desk: Desk) -> None:
    ann = await desk.rep("ann", "billing", available=False)  # serves the queue, no offer
    tess = await desk.rep("tess", "technical")
    conv = await desk.handover("v1", "billing")
    await desk.login("ann")
    me = await (await desk.client.get("/console/api/me")).json()
    assert [w["conversation_id"] for w in me["waiting"]] == [conv.id]
    ws = await desk.client.ws_connect(f"/console/ws?after={me['seq']}")
    await _frames(ws, "replayed")

    await desk.say("v1", "are you still there?")
    frames = await _frames(ws, "message")
    live = frames[-1]["data"]
    assert live["conversation_id"] == conv.id
    assert live["message"]["text"] == "are you still there?"
    assert live["message"]["attachments"] == []
    view = await (await desk.client.get(f"/console/api/conversations/{conv.id}")).json()
    assert view["held_by_you"] is False and view["offers"] == []
    assert view["messages"][-1]["id"] == live["message"]["id"]

    # Reps of other queues are told nothing about it.
    theirs = await desk.routing.console_events(tess.id, desk.service.queues_of(tess.id), 0, 100)
    assert not [e for e in theirs if e.kind == "message"]
    assert ann.id != tess.id
    await ws.close()


async def test_a_rep_offered_a_transfer_sees_the_customer_write_meanwhile(desk: Desk) -> None:
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, conv_id = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    bob = await desk.rep("bob", "technical")
    await desk.service.transfer(ann.id, conv_id, to_rep=bob.id, note="needs a tech")
    offered, _ = await desk.offer_for(bob.id)
    await desk.say("v1", "hello?")
    seen = await desk.routing.console_events(bob.id, desk.service.queues_of(bob.id), 0, 100)
    messages = [e.data["message"]["text"] for e in seen if e.kind == "message"]
    assert messages == ["hello?"]
    theirs = await desk.routing.console_events(ann.id, desk.service.queues_of(ann.id), 0, 100)
    assert [e.data["message"]["text"] for e in theirs if e.kind == "message"] == ["hello?"]
    view = await desk.views.conversation(bob.id, conv.id)
    assert view["offers"] == [
        {"offer_id": offered, "expires_at": view["offers"][0]["expires_at"],
         "note": "needs a tech", "from_rep_id": ann.id}
    ]  # fmt: skip
