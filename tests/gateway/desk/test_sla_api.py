"""Queue SLA targets set by an admin while the gateway runs (stored; the settings are
the defaults), the SLA timers of the rep's work, and the summary counting with the
stored targets in business hours, on each store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import aiohttp

from gateway.desk.state import DESK
from gateway.routing.models import Role
from tests.gateway.routing.conftest import OpenDesk
from tests.gateway.routing.desk import Desk

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


async def _put(
    desk: Desk, path: str, body: dict[str, Any], csrf: str | None
) -> aiohttp.ClientResponse:
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    return await desk.client.put(path, data=json.dumps(body), headers=headers)


async def _queues(desk: Desk) -> dict[str, Any]:
    body = await (await desk.client.get("/console/api/admin/queues")).json()
    return {q["queue"]: q for q in body["queues"]}


async def _timers(desk: Desk) -> dict[str, Any]:
    resp = await desk.client.get("/console/api/sla")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def _breaches(desk: Desk) -> dict[str, Any]:
    resp = await desk.client.get("/console/api/reports/summary")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_an_admin_sets_queue_targets_that_timers_and_reports_use(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk(sla_first_response_s={"billing": 300})
    await desk.rep("boss", role=Role.ADMIN, available=False)
    await desk.rep("ann", available=False)
    _, csrf = await desk.login("boss")
    queues = await _queues(desk)
    assert queues["billing"]["first_response_s"] == 300
    assert not queues["billing"]["set_in_console"]
    assert queues["general"]["first_response_s"] is None

    conv = await desk.handover("v1")  # waits: nobody is available
    await desk.login("ann")
    assert await _timers(desk) == {"now": ANY, "items": {}, "queues": {}}  # no target yet

    _, csrf = await desk.login("boss")
    path = "/console/api/admin/queues/general/sla"
    done = await _put(desk, path, {"first_response_s": 600, "resolution_s": 86400}, csrf)
    assert done.status == 200, await done.text()
    queues = await _queues(desk)
    assert queues["general"]["first_response_s"] == 600
    assert queues["general"]["resolution_s"] == 86400
    assert queues["general"]["set_in_console"]
    assert (await _put(desk, "/console/api/admin/queues/nope/sla", {}, csrf)).status == 404
    bad = await _put(desk, path, {"first_response_s": -1}, csrf)
    assert bad.status == 400
    assert (await _put(desk, path, {"first_response_s": 600}, None)).status == 403

    await desk.login("ann")
    timers = await _timers(desk)
    item = timers["items"][str(conv.id)]
    assert item["target"] == "first_response" and item["state"] == "ok"
    assert 590 < item["left_s"] <= 600 and item["queue"] == "general"
    assert timers["queues"]["general"] == {"at_risk": 0, "breached": 0}
    assert (await desk.client.put(path, data="{}")).status in (403, 401)  # not an admin

    # Tighter: breached at once; the summary counts it too.
    _, csrf = await desk.login("boss")
    await _put(desk, path, {"first_response_s": 0.001}, csrf)
    await desk.login("ann")
    timers = await _timers(desk)
    assert timers["items"][str(conv.id)]["state"] == "breached"
    assert timers["queues"]["general"] == {"at_risk": 0, "breached": 1}
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.login("lead")
    summary = await _breaches(desk)
    assert summary["sla_breaches"] == 1 and summary["sla"]["first_response"] == 1

    # Reset: the settings' defaults again (general has none).
    _, csrf = await desk.login("boss")
    reset = await desk.client.delete(path, headers={"X-CSRF-Token": csrf})
    assert reset.status == 204
    assert not (await _queues(desk))["general"]["set_in_console"]
    await desk.login("lead")
    assert (await _breaches(desk))["sla_breaches"] == 0


async def test_held_work_runs_first_then_next_response_and_shows_at_risk(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk(
        sla_first_response_s={"general": 60}, sla_next_response_s={"general": 0.001},
        sla_at_risk_share=0.99999,
    )  # fmt: skip
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.login("ann")
    item = (await _timers(desk))["items"][str(conv.id)]
    # Less than 99.999% of a minute left after a few milliseconds: at risk.
    assert item["target"] == "first_response" and item["state"] == "at_risk"
    assert (await _timers(desk))["queues"]["general"]["at_risk"] == 1
    await desk.service.reply(ann.id, conv.id, "Hello, how can I help?")
    # Answered, and the customer has not written since: no timer runs.
    assert str(conv.id) not in (await _timers(desk))["items"]
    await desk.say("v1", "my parcel is late")
    # The store reads them in batches of 400 conversations (unknown ones left out).
    store = desk.app[DESK].ready()[0]
    asked = [(10**6 + i, 0) for i in range(450)] + [(conv.id, 0)]
    times = await store.reply_times(asked)
    assert list(times) == [conv.id]
    t = times[conv.id]
    assert t.first_rep is not None and t.first_rep == t.last_rep
    assert t.last_customer is not None and t.last_customer > t.last_rep > t.created_at
    item = (await _timers(desk))["items"][str(conv.id)]
    assert item["target"] == "next_response" and item["state"] == "breached"
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.login("lead")
    summary = await _breaches(desk)
    assert summary["sla"]["at_risk"] == 0  # answered in time
    # ... but the customer's message has waited past its 1 ms next-response target
    # (the summary counts next-response breaches since issue 17's extra figures).
    assert summary["sla"]["first_response"] == 0 and summary["sla"]["next_response"] == 1
    assert summary["sla_breaches"] == 1


async def test_timers_count_business_hours_only(open_desk: OpenDesk) -> None:
    # Open one minute a day, on a day that is not today (in UTC): the clock stands still.
    tomorrow = DAYS[(datetime.now(UTC) + timedelta(days=1)).weekday()]
    desk = await open_desk(
        sla_first_response_s={"general": 0.001}, business_hours={tomorrow: "12:00-12:01"},
    )  # fmt: skip
    await desk.rep("ann", available=False)
    conv = await desk.handover("v1")
    await desk.login("ann")
    item = (await _timers(desk))["items"][str(conv.id)]
    assert item["state"] == "ok" and item["elapsed_s"] == 0
    due = datetime.fromisoformat(item["deadline"])
    assert due.weekday() == DAYS.index(tomorrow) and (due.hour, due.minute) == (12, 0)
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.login("lead")
    assert (await _breaches(desk))["sla_breaches"] == 0
