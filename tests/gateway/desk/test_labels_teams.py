"""Labels on conversations (the admin's set, reps labelling what they see, search by
label, the audit trail) and teams (admin screens, `team_rep_ids`), on each store."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gateway.desk.state import DESK
from gateway.routing.models import Role
from tests.gateway.routing.desk import Desk


async def _send(
    desk: Desk, method: str, path: str, body: dict[str, Any] | None, csrf: str | None
) -> aiohttp.ClientResponse:
    data = None if body is None else json.dumps(body)
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    return await desk.client.request(method, path, data=data, headers=headers)


async def _login(desk: Desk, name: str) -> str:
    status, csrf = await desk.login(name)
    assert status == 200
    return csrf


async def test_labels_are_kept_by_admins_put_on_by_reps_and_found_by_search(desk: Desk) -> None:
    await desk.rep("boss", role=Role.ADMIN, available=False)
    ann = await desk.rep("ann")
    await desk.rep("bob", available=False)
    csrf = await _login(desk, "boss")
    made = await desk.post("/console/api/admin/labels", {"name": "vip", "colour": "#aa0000"}, csrf)
    assert made.status == 200, await made.text()
    vip = await made.json()
    assert vip["name"] == "vip" and vip["colour"] == "#aa0000"
    refund = await (await desk.post("/console/api/admin/labels", {"name": "refund"}, csrf)).json()
    assert refund["colour"] is None
    assert (await desk.post("/console/api/admin/labels", {"name": "vip"}, csrf)).status == 409
    bad = await desk.post("/console/api/admin/labels", {"name": "x", "colour": "red"}, csrf)
    assert bad.status == 400
    assert (await desk.post("/console/api/admin/labels", {"name": "  "}, csrf)).status == 400

    conv = await desk.handover("v1")
    other = await desk.handover("v2")
    offer_id, _ = await desk.offer_for(ann.id)
    taken = await desk.service.accept(ann.id, offer_id)
    base = f"/console/api/conversations/{taken.id}/labels"

    csrf = await _login(desk, "ann")
    assert (await desk.post("/console/api/admin/labels", {"name": "mine"}, csrf)).status == 403
    listed = await (await desk.client.get("/console/api/labels")).json()
    assert [x["name"] for x in listed["labels"]] == ["refund", "vip"]
    on = await _send(desk, "PUT", f"{base}/{vip['id']}", None, csrf)
    assert on.status == 200, await on.text()
    assert [x["name"] for x in (await on.json())["labels"]] == ["vip"]
    again = await _send(desk, "PUT", f"{base}/{vip['id']}", None, csrf)  # idempotent
    assert [x["name"] for x in (await again.json())["labels"]] == ["vip"]
    await _send(desk, "PUT", f"{base}/{refund['id']}", None, csrf)
    shown = await (await desk.client.get(base)).json()
    assert [x["name"] for x in shown["labels"]] == ["refund", "vip"]
    assert (await _send(desk, "PUT", f"{base}/99999", None, csrf)).status == 404
    assert (await _send(desk, "PUT", f"{base}/{vip['id']}", None, None)).status == 403

    # Bob never saw it: 404, as for any conversation he may not see.
    csrf = await _login(desk, "bob")
    assert (await desk.client.get(base)).status == 404
    assert (await _send(desk, "PUT", f"{base}/{vip['id']}", None, csrf)).status == 404

    # A lead finds it by label; the hits carry their labels.
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await _login(desk, "lead")
    found = await (await desk.client.get("/console/api/conversations",
                                         params={"label": "vip"})).json()  # fmt: skip
    assert [c["id"] for c in found["conversations"]] == [taken.id]
    assert found["conversations"][0]["labels"] == ["refund", "vip"]
    everything = await (await desk.client.get("/console/api/conversations")).json()
    assert {c["id"] for c in everything["conversations"]} == {conv.id, other.id}
    assert all(c["labels"] == [] for c in everything["conversations"] if c["id"] != taken.id)
    none = await desk.client.get("/console/api/conversations", params={"label": "nope"})
    assert (await none.json())["conversations"] == []

    # Taken off: the trail keeps both changes, once each.
    csrf = await _login(desk, "ann")
    off = await _send(desk, "DELETE", f"{base}/{vip['id']}", None, csrf)
    assert [x["name"] for x in (await off.json())["labels"]] == ["refund"]
    await _send(desk, "DELETE", f"{base}/{vip['id']}", None, csrf)
    events = [e for e in await desk.store.events(taken.id) if e.kind.startswith("label.")]
    assert [(e.kind, e.data["label"], e.data["rep_id"]) for e in events] == [
        ("label.added", "vip", ann.id), ("label.added", "refund", ann.id),
        ("label.removed", "vip", ann.id),
    ]  # fmt: skip

    # An admin renames a label and deletes another (taken off every conversation).
    csrf = await _login(desk, "boss")
    renamed = await _send(desk, "PATCH", f"/console/api/admin/labels/{refund['id']}",
                          {"name": "refunds", "colour": "#00aa00"}, csrf)  # fmt: skip
    assert (await renamed.json())["name"] == "refunds"
    assert (await _send(desk, "PATCH", "/console/api/admin/labels/999",
                        {"name": "x"}, csrf)).status == 404  # fmt: skip
    assert (await _send(desk, "DELETE", f"/console/api/admin/labels/{refund['id']}", None,
                        csrf)).status == 204  # fmt: skip
    assert (await (await desk.client.get(base)).json())["labels"] == []


async def test_admins_keep_teams_and_team_rep_ids_reads_them(desk: Desk) -> None:
    await desk.rep("boss", role=Role.ADMIN, available=False)
    ann = await desk.rep("ann", available=False)
    bob = await desk.rep("bob", available=False)
    store = desk.app[DESK].ready()[0]
    csrf = await _login(desk, "boss")
    north = await (await desk.post("/console/api/admin/teams", {"name": "North"}, csrf)).json()
    south = await (await desk.post("/console/api/admin/teams", {"name": "South"}, csrf)).json()
    assert (await desk.post("/console/api/admin/teams", {"name": "North"}, csrf)).status == 409
    for name in ("ann", "bob"):
        put = await _send(desk, "PUT", f"/console/api/admin/reps/{name}/team",
                          {"team_id": north["id"]}, csrf)  # fmt: skip
        assert put.status == 200, await put.text()
    assert await store.team_rep_ids("North") == sorted([ann.id, bob.id])
    await _send(desk, "PUT", "/console/api/admin/reps/bob/team", {"team_id": south["id"]}, csrf)
    assert await store.team_rep_ids("North") == [ann.id]  # one team per rep
    assert await store.team_rep_ids("South") == [bob.id]
    missing = await _send(desk, "PUT", "/console/api/admin/reps/nobody/team",
                          {"team_id": north["id"]}, csrf)  # fmt: skip
    assert missing.status == 404
    no_team = await _send(desk, "PUT", "/console/api/admin/reps/ann/team", {"team_id": 999}, csrf)
    assert no_team.status == 404
    assert await store.team_rep_ids("North") == [ann.id]  # unchanged by the refusal

    renamed = await _send(desk, "PATCH", f"/console/api/admin/teams/{north['id']}",
                          {"name": "Nord"}, csrf)  # fmt: skip
    assert (await renamed.json()) == {"id": north["id"], "name": "Nord", "rep_ids": [ann.id]}
    clash = await _send(desk, "PATCH", f"/console/api/admin/teams/{north['id']}",
                        {"name": "South"}, csrf)  # fmt: skip
    assert clash.status == 409
    assert await store.team_rep_ids("North") == []
    assert await store.team_rep_ids("Nord") == [ann.id]
    gone = await _send(desk, "DELETE", f"/console/api/admin/teams/{south['id']}", None, csrf)
    assert gone.status == 204
    assert await store.team_rep_ids("South") == []
    listed = await (await desk.client.get("/console/api/admin/teams")).json()
    assert listed == {"teams": [{"id": north["id"], "name": "Nord", "rep_ids": [ann.id]}]}
    out = await _send(desk, "PUT", "/console/api/admin/reps/ann/team", {"team_id": None}, csrf)
    assert out.status == 200
    assert await store.team_rep_ids("Nord") == []

    await _login(desk, "ann")
    assert (await desk.client.get("/console/api/admin/teams")).status == 403
