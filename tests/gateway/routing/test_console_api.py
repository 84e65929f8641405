"""The console's HTTP API and websocket: login, CSRF, visibility, live updates."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gateway.routing.models import Presence
from tests.gateway.routing.conftest import OpenDesk
from tests.gateway.routing.desk import Desk, eventually


async def test_every_api_route_refuses_without_a_session(desk: Desk) -> None:
    rep = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(rep.id)
    for path in ("/console/api/me", f"/console/api/conversations/{conv.id}"):
        assert (await desk.client.get(path)).status == 401
    for path in (
        f"/console/api/offers/{offer_id}/accept",
        f"/console/api/conversations/{conv.id}/reply",
        "/console/api/presence",
    ):
        assert (await desk.post(path, {"text": "x"}, csrf="x")).status == 401
    ws = await desk.client.get("/console/ws")
    assert ws.status == 401
    assert desk.offers_for(rep.id) == [(offer_id, conv.id)]  # nothing was accepted


async def test_wrong_password_and_unknown_user_are_refused_alike(desk: Desk) -> None:
    await desk.rep("ann")
    assert (await desk.login("ann", "wrong password"))[0] == 401
    assert (await desk.login("nobody"))[0] == 401
    assert (await desk.client.get("/console/api/me")).status == 401


async def test_writes_need_the_csrf_token(desk: Desk) -> None:
    await desk.rep("ann", available=False)
    status, csrf = await desk.login("ann")
    assert status == 200 and csrf
    cookie = desk.client.session.cookie_jar.filter_cookies(desk.client.make_url("/"))
    assert "gw_console" in cookie
    refused = await desk.post("/console/api/presence", {"status": "available"})
    assert refused.status == 403
    wrong = await desk.post("/console/api/presence", {"status": "available"}, csrf="nope")
    assert wrong.status == 403
    me = await (await desk.client.get("/console/api/me")).json()
    assert me["rep"]["presence"] == "offline"
    ok = await desk.post("/console/api/presence", {"status": "available"}, csrf=csrf)
    assert ok.status == 200 and (await ok.json())["presence"] == "available"


async def test_login_cookie_is_httponly_and_strict(desk: Desk) -> None:
    await desk.rep("ann")
    resp = await desk.client.post(
        "/console/login", data=json.dumps({"username": "ann", "password": "correct horse battery"})
    )
    header = resp.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header


async def test_repeated_wrong_passwords_lock_the_username_for_a_while(desk: Desk) -> None:
    await desk.rep("ann")
    for _ in range(5):
        assert (await desk.login("ann", "guess"))[0] == 401
    assert (await desk.login("ann"))[0] == 429  # even the right one, for now
    await desk.rep("bob")
    assert (await desk.login("bob"))[0] == 200  # other usernames are not affected


async def test_a_lock_outlives_a_restart(open_desk: OpenDesk) -> None:
    desk = await open_desk()
    await desk.rep("ann")
    for _ in range(5):
        assert (await desk.login("ann", "guess"))[0] == 401
    await desk.client.close()
    again = await open_desk()  # the same database, a new process's worth of state
    assert (await again.login("ann"))[0] == 429
    await again.rep("bob")
    assert (await again.login("bob"))[0] == 200


async def test_guesses_spread_across_usernames_are_throttled_per_address(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk(console_login_failures_per_address=6)
    await desk.rep("ann")
    for n in range(6):  # one guess each at six usernames: no username is locked ...
        assert (await desk.login(f"user{n}", "guess"))[0] == 401
    assert (await desk.login("ann"))[0] == 429  # ... but this address is, for any username


async def test_logout_revokes_the_session(desk: Desk) -> None:
    ann = await desk.rep("ann")
    await desk.handover("v1")
    await desk.offer_for(ann.id)
    _, csrf = await desk.login("ann")
    cookies = desk.client.session.cookie_jar.filter_cookies(desk.client.make_url("/"))
    stolen = cookies["gw_console"].value
    ws = await desk.client.ws_connect("/console/ws")
    await _events(ws, "replayed")
    assert (await desk.post("/console/logout", csrf=csrf)).status == 204
    while not ws.closed:  # the open console is closed too
        await ws.receive(timeout=5)
    replay = await desk.client.get("/console/api/me", cookies={"gw_console": stolen})
    assert replay.status == 401
    assert desk.service.rep(ann.id).presence.value == "offline"
    assert desk.offers_for(ann.id) == []


async def test_a_rep_accepts_and_replies_over_http_and_others_cannot_read(desk: Desk) -> None:
    ann = await desk.rep("ann", "billing")
    await desk.rep("tess", "technical")
    conv = await desk.handover("v1", "billing")
    _, csrf = await desk.login("tess")
    hidden = await desk.client.get(f"/console/api/conversations/{conv.id}")
    assert hidden.status == 404
    me = await (await desk.client.get("/console/api/me")).json()
    assert me["offers"] == [] and me["waiting"] == []
    await desk.post("/console/logout", csrf=csrf)

    _, csrf = await desk.login("ann")
    me = await (await desk.client.get("/console/api/me")).json()
    [offer] = me["offers"]
    assert offer["conversation_id"] == conv.id
    view = await (await desk.client.get(f"/console/api/conversations/{conv.id}")).json()
    assert view["conversation"]["brief"]["need"] == "help with billing"
    assert [m["text"] for m in view["messages"]][:2] == ["human billing neutral", "connecting you"]
    accepted = await desk.post(f"/console/api/offers/{offer['offer_id']}/accept", csrf=csrf)
    assert accepted.status == 200 and (await accepted.json())["state"] == "with_rep"
    again = await desk.post(f"/console/api/offers/{offer['offer_id']}/accept", csrf=csrf)
    assert again.status == 409
    reply = await desk.post(
        f"/console/api/conversations/{conv.id}/reply", {"text": "Hello from Ann"}, csrf=csrf
    )
    assert reply.status == 200
    assert (await desk.texts(conv.id))[-1] == "Hello from Ann"
    empty = await desk.post(f"/console/api/conversations/{conv.id}/reply", {"text": ""}, csrf=csrf)
    assert empty.status == 400
    closed = await desk.post(
        f"/console/api/conversations/{conv.id}/close", {"disposition": "resolved"}, csrf=csrf
    )
    assert closed.status == 200 and (await closed.json())["state"] == "closed"
    assert ann.id == me["rep"]["id"]


async def _events(ws: aiohttp.ClientWebSocketResponse, until: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        msg = await ws.receive(timeout=5)
        frame = json.loads(msg.data)
        frames.append(frame)
        if frame.get("kind") == until or frame.get("type") == until:
            return frames


async def test_the_websocket_pushes_offers_and_resumes_by_sequence_number(desk: Desk) -> None:
    ann = await desk.rep("ann")
    await desk.login("ann")
    ws = await desk.client.ws_connect("/console/ws?after=0")
    await _events(ws, "replayed")
    conv = await desk.handover("v1")
    live = await _events(ws, "offer")
    offer = live[-1]
    assert offer["data"]["conversation_id"] == conv.id
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await _events(ws, "assigned")
    await ws.close()

    # Disconnected: a customer writes and a second conversation is offered.
    await desk.say("v1", "hello?")
    other = await desk.handover("v2")
    ws = await desk.client.ws_connect(f"/console/ws?after={offer['seq']}")
    missed = await _events(ws, "replayed")
    kinds = [f.get("kind") for f in missed if f["type"] == "event"]
    seqs = [f["seq"] for f in missed if f["type"] == "event"]
    assert seqs == sorted(seqs) and seqs[0] > offer["seq"]
    assert "offer" not in kinds[:1], "the offer seen before was replayed again"
    assert "assigned" in kinds and "message" in kinds
    replayed_offers = [f for f in missed if f.get("kind") == "offer"]
    assert [f["data"]["conversation_id"] for f in replayed_offers] == [other.id]
    message = next(f for f in missed if f.get("kind") == "message")
    assert message["data"]["message"]["text"] == "hello?"
    await ws.close()


async def test_a_rep_does_not_get_other_reps_events(desk: Desk) -> None:
    await desk.rep("ann", "billing")
    tess = await desk.rep("tess", "technical")
    await desk.handover("v1", "billing")
    await desk.login("tess")
    ws = await desk.client.ws_connect("/console/ws?after=0")
    frames = await _events(ws, "replayed")
    events = [f for f in frames if f["type"] == "event"]
    assert all(f["kind"] != "offer" for f in events)
    assert all(f["data"].get("queue") != "billing" for f in events)
    assert any(f["kind"] == "presence" for f in events)  # its own
    assert tess.id
    await ws.close()


async def test_typing_shows_both_ways_once_a_rep_holds_the_chat(desk: Desk) -> None:
    from tests.channels.chat import Chat

    ann = await desk.rep("ann")
    chat = await Chat.open(desk.client)
    await chat.send({"type": "hello"})
    await chat.expect("welcome")
    await chat.send({"type": "message", "text": "human", "client_id": "c1"})
    await chat.until(lambda f: f.get("text") == "connecting you")
    offer_id, conv_id = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.login("ann")
    ws = await desk.client.ws_connect("/console/ws?after=0")
    await _events(ws, "replayed")

    await chat.send({"type": "typing", "active": True})
    frame = await _events(ws, "typing")
    assert frame[-1] == {"type": "typing", "conversation_id": conv_id, "active": True}

    await ws.send_str(json.dumps({"type": "typing", "conversation_id": conv_id, "active": True}))
    shown = await chat.until(lambda f: f.get("type") == "typing")
    assert shown["active"] is True
    await ws.close()


async def test_a_rep_whose_console_closed_is_set_away(open_desk: OpenDesk) -> None:
    desk = await open_desk(console_away_after_s=0.05)
    ann = await desk.rep("ann")
    await desk.login("ann")
    ws = await desk.client.ws_connect("/console/ws")
    await _events(ws, "replayed")
    await ws.close()

    async def away() -> bool:
        return desk.service.rep(ann.id).presence is Presence.AWAY

    await eventually(away)
    await desk.handover("v1")
    assert desk.offers_for(ann.id) == []


async def test_old_console_events_are_pruned(desk: Desk) -> None:
    from datetime import UTC, datetime, timedelta

    ann = await desk.rep("ann")
    assert await desk.routing.console_events(ann.id, (), 0, 10)
    assert await desk.routing.prune_console(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await desk.routing.prune_console(datetime.now(UTC) + timedelta(seconds=1)) > 0
    assert await desk.routing.console_events(ann.id, (), 0, 10) == []


async def test_hostile_numbers_and_frames_get_4xx_or_are_ignored(desk: Desk) -> None:
    # Found by bench/fuzz.py: numbers beyond a database integer reached SQLite (500,
    # a crashed socket) and a too-deep JSON frame crashed the console's socket.
    await desk.rep("ann")
    _, csrf = await desk.login("ann")
    huge = "9" * 30
    for query in (huge, "-" + huge):
        resp = await desk.client.get(f"/console/ws?after={query}")
        assert resp.status == 400
    for path in (f"/console/api/conversations/{huge}", "/console/api/conversations/-1"):
        assert (await desk.client.get(path)).status == 404
    resp = await desk.post(f"/console/api/offers/{huge}/accept", {}, csrf=csrf)
    assert resp.status == 404
    resp = await desk.post("/console/api/conversations/1/transfer", {"rep_id": 10**30}, csrf=csrf)
    assert resp.status == 400
    ws = await desk.client.ws_connect("/console/ws?after=0")
    await _events(ws, "replayed")
    await ws.send_str("[" * 100_000)
    await ws.send_str('{"type": "typing", "conversation_id": ' + huge + ', "active": true}')
    await ws.send_str('{"type": "ping", "n": ' + "9" * 5000 + "}")
    await ws.send_str('{"type": "ping"}')
    assert (await _events(ws, "pong"))[-1] == {"type": "pong"}  # the socket carries on
    await ws.close()
