"""Campaigns: a CSV list through the API, paced at the Twilio stand-in, paused,
resumed, cancelled, and a restart mid-campaign that sends nobody a second text."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import aiohttp
import pytest

from tests.gateway.outreach.conftest import AUTH, Gateway, OpenGateway

NOTICE = {"name": "Maintenance", "sms": "Hi $first_name, our shop is closed on $day."}


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+1202555{k:04d}" for k in range(start, start + n)]


def csv_of(numbers: list[str], day: str = "Monday") -> str:
    return "phone,name,day\n" + "".join(f"{p},Ann Lee {k},{day}\n" for k, p in enumerate(numbers))


async def create(gw: Gateway, text: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    for key, value in {**NOTICE, **fields}.items():
        form.add_field(key, str(value))
    form.add_field("csv", text.encode(), filename="list.csv", content_type="text/csv")
    resp = await gw.client.post("/api/v1/outreach/campaigns", data=form, headers=AUTH)
    return resp.status, await resp.json()


async def show(gw: Gateway, cid: str) -> dict[str, Any]:
    resp = await gw.client.get(f"/api/v1/outreach/campaigns/{cid}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def act(gw: Gateway, cid: str, action: str) -> tuple[int, dict[str, Any]]:
    resp = await gw.client.post(f"/api/v1/outreach/campaigns/{cid}/{action}", headers=AUTH)
    return resp.status, await resp.json()


async def until_done(gw: Gateway, cid: str, within_s: float = 20.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + within_s
    while True:
        body = await show(gw, cid)
        if body["state"] in ("done", "cancelled") and body["finished"] == body["total"]:
            return body
        assert loop.time() < end, (body["counts"], body["recipients"])  # where it stands
        await asyncio.sleep(0.05)


def paced(times: list[float], rate: float) -> None:
    """No burst above `rate` at the Twilio stand-in: any k+1 consecutive texts span at
    least k-1 intervals (a text's own way from its slot to Twilio may vary by up to
    one interval: the slots themselves are exact)."""
    interval = 1 / rate
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            assert times[j] - start >= (j - i - 1) * interval * 0.95, (i, j, times)
    assert times[-1] - times[0] >= (len(times) - 2) * interval * 0.95, times


def once_each(gw: Gateway) -> collections.Counter[str]:
    sent = collections.Counter(m["To"] for m in gw.twilio.messages)
    assert all(n == 1 for n in sent.values()), sent
    return sent


async def test_a_list_is_texted_once_each_at_the_configured_rate(open_gateway: OpenGateway) -> (
    None
):  # fmt: skip
    gw = await open_gateway(outreach_send_rate=10.0)
    numbers = phones(6)
    status, body = await create(gw, csv_of(numbers))
    assert status == 201, body
    assert body["state"] == "running" and body["total"] == 6
    done = await until_done(gw, body["id"])
    assert done["state"] == "done" and done["counts"]["sent"] == 6, done
    assert set(once_each(gw)) == set(numbers)
    assert "Hi Ann, our shop is closed on Monday." in {m["Body"] for m in gw.twilio.messages}
    paced(gw.twilio.message_times, 10.0)
    rows = done["recipients"]
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {r["state"] for r in rows} == {"sent"} and rows[0]["customer"] == {"phone": numbers[0]}


async def test_a_campaigns_own_rate_and_events_share_the_global_pace(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway(outreach_send_rate=20.0)
    status, body = await create(gw, csv_of(phones(4)), rate="4")
    assert status == 201, body
    await until_done(gw, body["id"])
    paced(gw.twilio.message_times, 4.0)  # its own 4 a second
    # Business events are paced too (the global 20 a second).
    gw.twilio.message_times.clear()
    for n in range(4):
        status, _ = await gw.post({"id": f"evt-{n}", "type": "order.delayed",
                                   "customer": {"phone": f"+1303555{n:04d}"},
                                   "data": {"order_id": str(n), "new_eta": "Friday"}})  # fmt: skip
        assert status == 202
    await gw.twilio.wait_until(lambda: len(gw.twilio.message_times) >= 4)
    paced(gw.twilio.message_times, 20.0)


async def test_pause_stops_sending_and_resume_carries_on(open_gateway: OpenGateway) -> None:
    gw = await open_gateway(outreach_send_rate=5.0)
    numbers = phones(6)
    _, body = await create(gw, csv_of(numbers))
    cid = body["id"]
    await gw.twilio.wait_until(lambda: len(gw.twilio.messages) >= 2)
    status, paused = await act(gw, cid, "pause")
    assert status == 200 and paused["state"] == "paused", paused
    at_pause = len(gw.twilio.messages)
    await asyncio.sleep(1.0)  # five sends' worth of time
    held = len(gw.twilio.messages)
    assert held <= at_pause + 1, (at_pause, held)  # at most the one already on its way
    await asyncio.sleep(0.5)
    assert len(gw.twilio.messages) == held
    assert (await show(gw, cid))["counts"]["queued"] == 6 - held
    assert (await act(gw, cid, "pause"))[0] == 409  # already paused
    status, resumed = await act(gw, cid, "resume")
    assert status == 200 and resumed["state"] == "running"
    done = await until_done(gw, cid)
    assert done["state"] == "done" and done["counts"]["sent"] == 6
    assert set(once_each(gw)) == set(numbers)


async def test_cancel_skips_everyone_not_yet_texted(open_gateway: OpenGateway) -> None:
    gw = await open_gateway(outreach_send_rate=5.0)
    _, body = await create(gw, csv_of(phones(8)))
    cid = body["id"]
    await gw.twilio.wait_until(lambda: len(gw.twilio.messages) >= 2)
    status, cancelled = await act(gw, cid, "cancel")
    assert status == 200 and cancelled["state"] == "cancelled"
    await asyncio.sleep(1.0)
    sent = len(gw.twilio.messages)
    assert sent <= 3
    done = await show(gw, cid)
    assert done["counts"]["sent"] == sent and done["counts"]["cancelled"] == 8 - sent, done
    assert {r["error"] for r in done["recipients"] if r["state"] == "skipped"} == {"cancelled"}
    assert (await act(gw, cid, "resume"))[0] == 409
    once_each(gw)


async def test_a_restart_mid_campaign_texts_nobody_twice(open_gateway: OpenGateway) -> None:
    # On PostgreSQL a node does not take back claims at start (others may hold them):
    # the old process's claims (its outreach rows, its outbox texts) run out after the lease.
    gw = await open_gateway(outreach_send_rate=10.0, outreach_lease_s=5.0, outbox_lease_s=5.0)
    numbers = phones(10)
    _, body = await create(gw, csv_of(numbers))
    await gw.twilio.wait_until(lambda: len(gw.twilio.messages) >= 3)
    await gw.client.close()  # the gateway stops mid-campaign
    stopped_at = len(gw.twilio.messages)
    assert stopped_at < 10
    again = await open_gateway(outreach_send_rate=10.0, outreach_lease_s=5.0, outbox_lease_s=5.0)
    done = await until_done(again, body["id"], within_s=40.0)
    assert done["counts"]["sent"] == 10, done
    assert set(once_each(again)) == set(numbers)
    assert len(again.twilio.messages) == 10


@pytest.mark.parametrize(
    ("text", "fields", "says"),
    [
        ("phone,name,day\n+12025550001,Ann,Mon\n555,Bob,Mon\n", {}, "row 2 (line 3): phone"),
        ("phone,name,day\n+12025550001,Ann,\n", {}, "row 1 (line 2): day: empty"),
        ("phone,name\n+12025550001,Ann\n", {}, "needs the column(s) day"),
        ("phone,email,day\n+12025550001,a@example.com,Mon\n", {}, "row 1 (line 2): give exactly"),
        ("phone,day\n+12025550001,Mon\n+1 202 555 0001,Tue\n", {}, "row 2 (line 3): the same"),
        ("name,day\nAnn,Mon\n", {}, "account, phone or email column"),
        ("phone,day\n", {}, "no rows"),
        ("phone,day\n+12025550001,Mon\n", {"sms": ""}, "at least one of sms"),
        ("phone,day\n+12025550001,Mon\n", {"sms": "", "type": "order.lost"}, "unknown event type"),
        ("phone,day\n+12025550001,Mon\n", {"rate": "0"}, "rate:"),
        ("phone,day\n+12025550001,Mon\n", {"name": ""}, "name:"),
    ],
)
async def test_bad_lists_are_refused_with_422_naming_the_row(
    open_gateway: OpenGateway, text: str, fields: dict[str, str], says: str
) -> None:
    gw = await open_gateway()
    status, body = await create(gw, text, **fields)
    assert status == 422, body
    assert says in body["message"], body
    assert gw.twilio.messages == []
    resp = await gw.client.get("/api/v1/outreach/campaigns", headers=AUTH)
    assert (await resp.json())["campaigns"] == []


async def test_a_text_csv_body_an_event_type_and_no_token(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    text = "account,order_id,new_eta\nC-1001,1001,Friday\n"
    url = "/api/v1/outreach/campaigns?name=Delays&type=order.delayed"
    resp = await gw.client.post(url, data=text, headers={"Content-Type": "text/csv"})
    assert resp.status == 401
    resp = await gw.client.post(url, data=text, headers={**AUTH, "Content-Type": "text/csv"})
    body = await resp.json()
    assert resp.status == 201, body
    done = await until_done(gw, body["id"])
    assert done["counts"]["sent"] == 1
    [sms] = gw.twilio.messages
    assert "order 1001 is running late" in sms["Body"]
    big = "phone,day\n" + "+12025550001,Mon\n" * 300_000
    resp = await gw.client.post(url, data=big, headers={**AUTH, "Content-Type": "text/csv"})
    assert resp.status == 413


async def test_the_reports_summary_counts_the_outreach_and_the_calls_saved(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway(outreach_saved_days=0.00002)  # 1.7 s: no contact since, saved
    _, body = await create(gw, csv_of(phones(3)))
    await until_done(gw, body["id"])
    resp = await gw.client.get("/api/v1/reports/summary", headers=AUTH)
    early = (await resp.json())["outreach"]
    assert early["sent"] == 3 and early["created"] == 3 and early["by_channel"] == {"sms": 3}
    assert early["calls_saved_of"] <= 3
    await asyncio.sleep(2.0)
    resp = await gw.client.get("/api/v1/reports/summary", headers=AUTH)
    later = (await resp.json())["outreach"]
    assert later["calls_saved"] == 3 and later["calls_saved_of"] == 3, later
    resp = await gw.client.get("/api/v1/openapi.json")
    paths = (await resp.json())["paths"]
    assert "/api/v1/outreach/campaigns" in paths
