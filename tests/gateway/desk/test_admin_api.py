"""The console's admin API (reps, API tokens) by role, while the gateway runs, and
who may read a closed conversation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from gateway.routing.models import Presence, Role
from tests.gateway.routing.conftest import OpenDesk
from tests.gateway.routing.desk import PASSWORD, Desk, eventually


async def _patch(desk: Desk, path: str, body: dict[str, Any], csrf: str) -> aiohttp.ClientResponse:
    return await desk.client.patch(path, data=json.dumps(body), headers={"X-CSRF-Token": csrf})


async def _as_admin(desk: Desk) -> str:
    await desk.rep("boss", role=Role.ADMIN, available=False)
    status, csrf = await desk.login("boss")
    assert status == 200
    return csrf


async def test_only_admins_manage_reps_and_tokens(desk: Desk) -> None:
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    _, csrf = await desk.login("lead")
    assert (await desk.client.get("/console/api/admin/reps")).status == 403
    refused = await desk.post("/console/api/admin/reps",
                              {"username": "x", "password": "long enough"}, csrf)  # fmt: skip
    assert refused.status == 403
    assert (await desk.post("/console/api/admin/tokens", {"name": "x"}, csrf)).status == 403
    # ... but a supervisor reads the reports.
    assert (await desk.client.get("/console/api/reports/summary")).status == 200
    await desk.rep("plain", available=False)
    await desk.login("plain")
    assert (await desk.client.get("/console/api/reports/summary")).status == 403
    assert (await desk.client.get("/console/api/role")).status == 200


async def test_an_admin_adds_a_rep_who_is_offered_work_at_once(desk: Desk) -> None:
    csrf = await _as_admin(desk)
    conv = await desk.handover("v1", "billing")
    form = {"username": "cara", "password": PASSWORD, "skills": ["salez"]}
    bad = await desk.post("/console/api/admin/reps", form, csrf)
    assert bad.status == 400
    message = (await bad.json())["message"]
    assert "salez" in message and "billing, general, technical" in message
    form = {"username": "cara", "password": "short", "skills": ["billing"]}
    short = await desk.post("/console/api/admin/reps", form, csrf)
    assert short.status == 400
    added = await desk.post("/console/api/admin/reps",
                            {"username": "cara", "password": PASSWORD, "skills": ["billing"],
                             "display_name": "Cara"}, csrf)  # fmt: skip
    assert added.status == 200, await added.text()
    cara = await added.json()
    assert cara["skills"] == ["billing"] and cara["role"] == "rep"
    again = await desk.post("/console/api/admin/reps",
                            {"username": "cara", "password": PASSWORD}, csrf)  # fmt: skip
    assert again.status == 409
    listing = await (await desk.client.get("/console/api/admin/reps")).json()
    assert [r["username"] for r in listing["reps"]] == ["boss", "cara"]
    assert listing["skills"] == ["billing", "general", "technical"]
    # Cara logs in (a fresh client would; this one switches its cookie) and takes work.
    assert (await desk.login("cara"))[0] == 200
    await desk.service.set_presence(cara["id"], Presence.AVAILABLE)
    offer_id, offered = await desk.offer_for(cara["id"])
    assert offered == conv.id and offer_id


async def test_disabling_a_rep_ends_their_session_and_their_offers(desk: Desk) -> None:
    dan = await desk.rep("dan")
    conv = await desk.handover("v1")
    await desk.offer_for(dan.id)
    csrf = await _as_admin(desk)
    done = await _patch(desk, "/console/api/admin/reps/dan", {"disabled": True}, csrf)
    assert done.status == 200 and (await done.json())["disabled"] is True
    assert desk.offers_for(dan.id) == []  # withdrawn: the work waits for others
    assert dan.id not in desk.service.router.reps
    assert (await desk.login("dan"))[0] == 401
    assert (await _patch(desk, "/console/api/admin/reps/boss", {"disabled": True},
                         (await desk.login("boss"))[1])).status == 409  # not oneself  # fmt: skip
    _, csrf = await desk.login("boss")
    assert (
        await _patch(desk, "/console/api/admin/reps/dan", {"disabled": False}, csrf)
    ).status == 200
    assert (await desk.login("dan"))[0] == 200
    assert conv.id


async def test_a_password_reset_ends_the_old_sessions(desk: Desk) -> None:
    await desk.rep("eve", available=False)
    await desk.login("eve")
    assert (await desk.client.get("/console/api/me")).status == 200
    eve_cookie = desk.client.session.cookie_jar.filter_cookies(desk.client.make_url("/"))
    old = eve_cookie["gw_console"].value
    csrf = await _as_admin(desk)
    reset = await _patch(desk, "/console/api/admin/reps/eve", {"password": "a new password"}, csrf)
    assert reset.status == 200
    desk.client.session.cookie_jar.clear()
    desk.client.session.cookie_jar.update_cookies({"gw_console": old})
    assert (await desk.client.get("/console/api/me")).status == 401  # her old login ended
    assert (await desk.login("eve"))[0] == 401
    assert (await desk.login("eve", "a new password"))[0] == 200


async def test_tokens_created_in_the_console_open_the_api_until_revoked(desk: Desk) -> None:
    csrf = await _as_admin(desk)
    created = await desk.post("/console/api/admin/tokens", {"name": "BI tool"}, csrf)
    assert created.status == 200
    body = await created.json()
    token = body["token"]
    listed = await (await desk.client.get("/console/api/admin/tokens")).json()
    assert [t["name"] for t in listed["tokens"]] == ["BI tool"]
    assert token not in json.dumps(listed)  # shown once, never again
    headers = {"Authorization": f"Bearer {token}"}
    assert (await desk.client.get("/api/v1/reports/summary", headers=headers)).status == 200
    revoked = await desk.client.delete(f"/console/api/admin/tokens/{body['id']}",
                                       headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert revoked.status == 204
    assert (await desk.client.get("/api/v1/reports/summary", headers=headers)).status == 401
    gone = await desk.client.delete(f"/console/api/admin/tokens/{body['id']}",
                                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert gone.status == 404


async def test_a_closed_conversation_stays_readable_to_who_worked_it(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk()
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, conv.id, "Hello from Ann")
    await desk.service.close(ann.id, conv.id, "resolved")
    await desk.rep("bob")  # serves the same queue, never took it
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    path = f"/console/api/conversations/{conv.id}"
    await desk.login("ann")
    view = await desk.client.get(path)
    assert view.status == 200
    body = await view.json()
    assert body["conversation"]["state"] == "closed"
    assert "Hello from Ann" in [m["text"] for m in body["messages"]]
    await desk.login("bob")
    assert (await desk.client.get(path)).status == 404
    await desk.login("lead")
    assert (await desk.client.get(path)).status == 200


async def test_a_rep_added_beside_the_running_gateway_gets_work(desk: Desk, store_url: str) -> None:
    """`gateway reps add` writes beside the gateway (SQLite) or NOTIFYs (PostgreSQL);
    the running routing reads the reps again and offers the new rep waiting work."""
    from gateway.desk.admin import RepAdmin
    from gateway.routing.setup import open_routing_store
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SqliteStore

    conv = await desk.handover("v1", "technical")
    if store_url.startswith("sqlite:///"):
        beside: Any = SqliteStore(Path(store_url.removeprefix("sqlite:///")), exclusive=False)
    else:
        beside = await PostgresStore.open(store_url)
    try:
        admin = RepAdmin(open_routing_store(beside), ["general", "technical"])
        rep = await admin.add("tess", PASSWORD, skills=["technical"])
    finally:
        await beside.close()

    async def known() -> bool:
        return rep.id in desk.service.router.reps

    assert await eventually(known)
    await desk.service.set_presence(rep.id, Presence.AVAILABLE)
    _, offered = await desk.offer_for(rep.id)
    assert offered == conv.id


async def test_the_reports_page_and_its_csv(desk: Desk) -> None:
    page = await desk.client.get("/console/desk")
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("desk.js", "charts.js", "desk.css"):
        assert (await desk.client.get(f"/console/static/{asset}")).status == 200
    assert (await desk.client.get("/console/api/reports/summary.csv")).status == 401
    await desk.say("v1", "hello")
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.login("lead")
    resp = await desk.client.get("/console/api/reports/summary.csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="report-')
    lines = (await resp.text()).splitlines()
    assert lines[0] == "figure,value"
    assert "conversations,1" in lines and "conversations.webchat,1" in lines
    bad = await desk.client.get("/console/api/reports/summary.csv", params={"since": "nope"})
    assert bad.status == 400
    # Filtered: the filters head the file; a bad one is a 400 as on the API.
    resp = await desk.client.get("/console/api/reports/summary.csv",
                                 params={"channel": "sms,webchat", "queue": "general"})  # fmt: skip
    lines = (await resp.text()).splitlines()
    assert lines[:3] == ["figure,value", 'filter.channel,"sms,webchat"', "filter.queue,general"]
    assert "conversations,0" in lines  # the chat was never in a queue
    for name in ("next_response_seconds.p50", "queue_wait_seconds.count", "handle_seconds.p90"):
        assert any(line.startswith(name + ",") for line in lines), name
    bad = await desk.client.get("/console/api/reports/summary.csv", params={"queue": "nope"})
    assert bad.status == 400 and "unknown queue" in (await bad.json())["message"]
    # The page's filter choices.
    options = await (await desk.client.get("/console/api/reports/filters")).json()
    assert options["channels"] == ["webchat", "sms", "email", "phone"]
    assert options["queues"] == ["billing", "general", "technical"]
    assert [r["username"] for r in options["reps"]] == ["lead"]


async def test_ids_no_database_holds_are_404_on_every_desk_route(desk: Desk) -> None:
    # Found by bench/fuzz.py: an id past a database integer reached SQLite (a 500).
    csrf = await _as_admin(desk)
    huge = "9" * 30
    gets = [f"/console/api/conversations/{huge}/profile"]
    posts = [f"/console/api/conversations/{huge}/reopen", f"/console/api/waiting/{huge}/take",
             f"/console/api/waiting/{huge}/assign"]  # fmt: skip
    deletes = [f"/console/api/admin/tokens/{huge}", f"/console/api/admin/canned/{huge}"]
    for path in gets:
        assert (await desk.client.get(path)).status == 404, path
    for path in posts:
        assert (await desk.post(path, {"rep_id": 1}, csrf)).status == 404, path
    for path in deletes:
        resp = await desk.client.delete(path, headers={"X-CSRF-Token": csrf})
        assert resp.status == 404, path
