"""`GET /api/v1/reports/summary`: conversations with known outcomes on every channel,
each figure checked exactly, on SQLite and PostgreSQL, and again after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.desk.state import DESK
from gateway.desk.summary import percentile
from gateway.idle_close import sweep_once
from gateway.models import ChannelKind, Identity, IdentityKind, Reply
from gateway.protocols import Decision, EventDraft, TurnContext
from gateway.routing.models import Presence
from gateway.store import migrate
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import PgUrl
from tests.gateway.routing.desk import Desk, HandoverBrain, build

TOKEN = "reports-token-0123456789"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]


class ResolvingBrain(HandoverBrain):
    """`solved <how>`: the agent records that it resolved the conversation."""

    async def respond(self, turn: TurnContext) -> Decision:
        words = turn.message.text.split()
        if words and words[0] == "answered":  # an answer that stands (agent/resolution.py)
            return Decision(actions=(Reply(text="here you go"),), intent=words[1],
                            agent_state={"answered": words[1]}, confidence=1.0)  # fmt: skip
        if words and words[0] == "solved":
            event = EventDraft(kind="conversation.resolved", data={"how": words[1]})
            return Decision(actions=(Reply(text="glad to help"),), events=(event,),
                            intent="resolved", confidence=1.0)  # fmt: skip
        return await super().respond(turn)


def _settings(store_url: str) -> dict[str, Any]:
    return {
        "database_url": store_url, "secret_key": "desk-test-secret-0123456789",
        "api_token": TOKEN, "sla_first_response_s": {"billing": 0.001},
        "sla_resolution_s": {"general": 3600},
    }  # fmt: skip


async def _open(tmp_path: Path, store_url: str, client: Client) -> Desk:
    brain = ResolvingBrain()
    return Desk(await client(build(tmp_path / "data", brain, **_settings(store_url))), brain)


def _ms(dt: datetime) -> float:
    return dt.timestamp()


async def _expected(desk: Desk, ids: dict[str, int]) -> dict[str, Any]:
    """The figures, worked out from the store's ordinary reads of each conversation."""
    first, resolution = [], []
    for name in ("email", "web_closed"):
        cid = ids[name]
        conv = await desk.store.get_conversation(cid)
        events = await desk.store.events(cid)
        handover = min(e.created_at for e in events if e.kind == "handover")
        replies = [m.created_at for m in await desk.store.conversation_messages(cid)
                   if m.author.value == "rep" and m.direction.value == "outbound"]  # fmt: skip
        first.append((min(replies) - handover).total_seconds())
        (closed,) = [e.created_at for e in events
                     if e.kind == "state.changed" and e.data["to"] == "closed"]  # fmt: skip
        resolution.append((closed - conv.created_at).total_seconds())
    for name in ("web_bot", "sms_bot"):
        conv = await desk.store.get_conversation(ids[name])
        events = await desk.store.events(ids[name])
        (done,) = [e.created_at for e in events if e.kind == "conversation.resolved"]
        resolution.append((done - conv.created_at).total_seconds())
    first.sort()
    resolution.sort()

    def spread(values: list[float]) -> dict[str, Any]:
        return {"p50": round(percentile(values, 0.5) or 0, 3),
                "p90": round(percentile(values, 0.9) or 0, 3), "count": len(values)}  # fmt: skip

    return {"first_response_seconds": spread(first), "resolution_seconds": spread(resolution)}


async def _populate(desk: Desk) -> dict[str, int]:
    ids: dict[str, int] = {}
    ann = await desk.rep("ann", "general")
    ids["web_bot"] = (await desk.say("w1", "solved confirmed")).id
    sms = Identity(kind=IdentityKind.PHONE, value="+15550001001")
    ids["sms_bot"] = (await desk.say("s1", "solved assumed", ChannelKind.SMS, sms)).id
    phone = Identity(kind=IdentityKind.PHONE, value="+15550001002")
    ids["phone_open"] = (await desk.say("p1", "where is my order", ChannelKind.PHONE, phone)).id
    ids["web_queued"] = (await desk.handover("w2", "billing")).id  # nobody serves billing
    mail = Identity(kind=IdentityKind.EMAIL, value="jo@example.com")
    ids["email"] = (await desk.say("e1", "human general", ChannelKind.EMAIL, mail)).id
    for name, visitor, score in (("email", None, 4), ("web_closed", "w3", 2)):
        if visitor is not None:
            ids[name] = (await desk.handover(visitor, "general")).id
        offer_id, cid = await desk.offer_for(ann.id)
        assert cid == ids[name]
        await desk.service.accept(ann.id, offer_id)
        await desk.service.reply(ann.id, cid, "Hello, Ann here")
        await desk.service.close(ann.id, cid, "resolved")
        assert await desk.routing.rate(cid, score) is not None
    return ids


async def _summary(desk: Desk, **query: str) -> tuple[int, Any]:
    resp = await desk.client.get("/api/v1/reports/summary", params=query,
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    return resp.status, await resp.json()


async def test_the_summary_counts_every_figure_exactly_and_again_after_a_restart(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids = await _populate(desk)
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    status, body = await _summary(desk, since=start.isoformat(), until=until)
    assert status == 200, body
    expected = await _expected(desk, ids)
    assert body["conversations"] == 6
    assert body["by_channel"] == {"webchat": 3, "sms": 1, "email": 1, "phone": 1}
    assert body["bot_resolved"] == 2
    assert body["bot_resolved_how"] == {"confirmed": 1, "assumed": 1, "closed": 0}
    assert body["handed_over"] == 3
    assert body["resolution_rate"] == round(2 / 6, 4)
    assert body["handover_rate"] == 0.5
    assert body["first_response_seconds"] == expected["first_response_seconds"]
    assert body["resolution_seconds"] == expected["resolution_seconds"]
    assert body["csat"] == {"count": 2, "average": 3.0,
                            "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}}  # fmt: skip
    # The billing conversation nobody answered is past its 1 ms first-response target;
    # the general ones closed well within their hour.
    assert body["sla_breaches"] == 1
    assert body["sla"] == {"first_response": 1, "resolution": 0, "next_response": 0,
                           "at_risk": 0}  # fmt: skip

    # A period before any of it: nothing.
    _, empty = await _summary(desk, since="2020-01-01T00:00:00Z", until="2020-01-02T00:00:00Z")
    assert empty["conversations"] == 0 and empty["first_response_seconds"]["p50"] is None

    await desk.client.close()  # the gateway stops; a new one reads the same store
    again = await _open(tmp_path, store_url, aiohttp_client)
    status, after = await _summary(again, since=start.isoformat(), until=until)
    assert status == 200
    assert after == body


async def test_a_conversation_closed_as_assumed_resolved_is_counted_once(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    await desk.say("q1", "answered order_status")
    await asyncio.sleep(0.1)
    store = desk.store
    assert isinstance(store, SqliteStore | PostgresStore)
    assert await sweep_once(store, 0.05) == 1  # the GATEWAY_ASSUMED_RESOLVED_AFTER_S sweep
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    status, body = await _summary(desk, since=start.isoformat(), until=until)
    assert status == 200, body
    assert body["bot_resolved"] == 1
    assert body["bot_resolved_how"] == {"confirmed": 0, "assumed": 1, "closed": 0}


async def test_the_api_needs_a_valid_token_and_iso_dates(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    url = "/api/v1/reports/summary"
    assert (await desk.client.get(url)).status == 401
    wrong = await desk.client.get(url, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = await desk.client.get(url, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status == 401
    for query in ({"since": "yesterday"}, {"until": "2026-13-01"},
                  {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}):  # fmt: skip
        status, body = await _summary(desk, **query)
        assert status == 400 and body["error"] == "invalid", (query, body)
    status, body = await _summary(desk)  # the default period: the last 7 days
    assert status == 200 and body["conversations"] == 0


async def test_the_openapi_document_describes_the_summary(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    resp = await desk.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    operation = doc["paths"]["/api/v1/reports/summary"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "since", "until", "channel", "queue", "rep", "team"
    }  # fmt: skip
    (channel,) = [p for p in operation["parameters"] if p["name"] == "channel"]
    assert channel["schema"]["items"]["enum"] == ["webchat", "sms", "email", "phone"]
    assert set(operation["responses"]) == {"200", "400", "401"}
    summary = doc["components"]["schemas"]["Summary"]
    for field in (
        "conversations",
        "by_channel",
        "bot_resolved",
        "handed_over",
        "first_response_seconds",
        "next_response_seconds",
        "queue_wait_seconds",
        "handle_seconds",
        "resolution_seconds",
        "csat",
        "sla_breaches",
    ):
        assert field in summary["required"], field  # fmt: skip
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# ------------------------------------------- next response, queue wait, handle time


async def _entries(desk: Desk, cid: int) -> list[dict[str, Any]]:
    """The conversation's queue entries, read straight from the table (not the facts)."""
    store = desk.store
    sql = ("SELECT from_rep_id, rep_id, enqueued_at, assigned_at, ended_at FROM queue_entries"
           " WHERE conversation_id = {} ORDER BY id")  # fmt: skip
    if isinstance(store, SqliteStore):
        return await store.read(
            lambda c: [dict(r) for r in c.execute(sql.format("?"), (cid,)).fetchall()]
        )
    assert isinstance(store, PostgresStore)

    async def op(conn: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(sql.format("$1"), cid)]

    return await store.read(op)


async def _sent_at(desk: Desk, cid: int, text: str) -> int:
    """When the message was stored, in ms (as the store keeps it)."""
    (at,) = [m.created_at for m in await desk.store.conversation_messages(cid) if m.text == text]
    return round(at.timestamp() * 1000)


def _spread(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    if not values:
        return {"p50": None, "p90": None, "count": 0}
    return {"p50": round(percentile(values, 0.5) or 0, 3),
            "p90": round(percentile(values, 0.9) or 0, 3), "count": len(values)}  # fmt: skip


async def _work(desk: Desk) -> tuple[dict[str, int], dict[str, int]]:
    """Known waits: an SMS bob takes after 0.2 s, answers, then hands back with the
    customer's last message unanswered; a web chat ann takes after 0.25 s, answers twice,
    is written to twice (one wait) and once more, then transfers to bob, who answers
    and closes; an email the agent resolves; a web chat in billing nobody serves."""
    bob = await desk.rep("bob", "general")
    ann = await desk.rep("ann", "general", available=False)
    ids: dict[str, int] = {}
    phone = Identity(kind=IdentityKind.PHONE, value="+15550002001")
    sms = await desk.say("s1", "human general neutral", ChannelKind.SMS, phone)
    ids["sms"] = sms.id
    offer_id, cid = await desk.offer_for(bob.id)
    assert cid == sms.id
    await asyncio.sleep(0.2)
    await desk.service.accept(bob.id, offer_id)
    await desk.service.reply(bob.id, cid, "Bob here")
    await desk.say("s1", "one more thing", ChannelKind.SMS, phone)
    await asyncio.sleep(0.05)
    await desk.service.hand_back(bob.id, cid)
    await desk.say("s1", "ok then", ChannelKind.SMS, phone)  # the agent's again: no wait

    await desk.service.set_presence(bob.id, Presence.AWAY)
    await desk.service.set_presence(ann.id, Presence.AVAILABLE)
    ids["web"] = (await desk.handover("w1", "general")).id
    offer_id, cid = await desk.offer_for(ann.id)
    assert cid == ids["web"]
    await asyncio.sleep(0.25)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, cid, "Ann here")
    await desk.service.reply(ann.id, cid, "Let me check")  # no customer message between
    await desk.say("w1", "still there?")
    await asyncio.sleep(0.15)
    await desk.say("w1", "hello?")  # the same wait
    await desk.service.reply(ann.id, cid, "Found it")
    await desk.say("w1", "thanks, and my refund?")
    await asyncio.sleep(0.1)
    await desk.service.set_presence(bob.id, Presence.AVAILABLE)
    await desk.service.transfer(ann.id, cid, to_rep=bob.id, note="refunds")
    offer_id, cid2 = await desk.offer_for(bob.id)
    assert cid2 == cid
    await desk.service.accept(bob.id, offer_id)
    await desk.service.reply(bob.id, cid, "Refund sent")
    await desk.service.close(bob.id, cid, "resolved")

    mail = Identity(kind=IdentityKind.EMAIL, value="kim@example.com")
    ids["email"] = (await desk.say("e1", "solved confirmed", ChannelKind.EMAIL, mail)).id
    ids["billing"] = (await desk.handover("w2", "billing")).id
    return ids, {"ann": ann.id, "bob": bob.id}


async def test_next_response_queue_wait_and_handle_time_are_exact_and_filtered(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids, reps = await _work(desk)
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    period = {"since": start.isoformat(), "until": until}

    # What the figures must be, from the messages and queue entries as stored.
    web, sms = ids["web"], ids["sms"]
    web_next = [
        (await _sent_at(desk, web, "Found it") - await _sent_at(desk, web, "still there?")) / 1000,
        (await _sent_at(desk, web, "Refund sent")
         - await _sent_at(desk, web, "thanks, and my refund?")) / 1000,
    ]  # fmt: skip
    waits, handles = {}, {}
    for name, cid in (("web", web), ("sms", sms)):
        entries = await _entries(desk, cid)
        first = next(e for e in entries if e["from_rep_id"] is None)
        waits[name] = (first["assigned_at"] - first["enqueued_at"]) / 1000
        handles[name] = sum(e["ended_at"] - e["assigned_at"] for e in entries
                            if e["assigned_at"] is not None) / 1000  # fmt: skip
    assert len(await _entries(desk, web)) == 2  # ann's, then the transfer bob accepted
    assert waits["sms"] >= 0.2 and waits["web"] >= 0.25  # the known waits
    assert web_next[0] >= 0.15 and web_next[1] >= 0.1
    assert handles["web"] >= 0.15 + 0.1 and handles["sms"] >= 0.05

    status, body = await _summary(desk, **period)
    assert status == 200, body
    assert body["conversations"] == 4
    assert body["next_response_seconds"] == _spread(web_next)
    assert body["queue_wait_seconds"] == _spread([waits["web"], waits["sms"]])
    assert body["handle_seconds"] == _spread([handles["web"], handles["sms"]])

    async def only(**query: str) -> dict[str, Any]:
        status, got = await _summary(desk, **period, **query)
        assert status == 200, (query, got)
        return got  # type: ignore[no-any-return]

    got = await only(channel="sms")
    assert got["conversations"] == 1 and got["by_channel"]["sms"] == 1
    assert got["queue_wait_seconds"] == _spread([waits["sms"]])
    assert got["handle_seconds"] == _spread([handles["sms"]])
    assert got["next_response_seconds"] == _spread([])
    # Ann worked the web chat only; bob both (the transfer): each counts whole.
    got = await only(rep=str(reps["ann"]))
    assert got["conversations"] == 1 and got["by_channel"]["webchat"] == 1
    assert got["next_response_seconds"] == _spread(web_next)
    assert got["handle_seconds"] == _spread([handles["web"]])
    got = await only(rep=str(reps["bob"]))
    assert got["conversations"] == 2 and got["handed_over"] == 2
    assert got["queue_wait_seconds"] == body["queue_wait_seconds"]
    both = await only(rep=f"{reps['ann']},{reps['bob']}")
    assert both == got
    # A team counts what its reps worked; with `rep` too, only those of the team.
    store = desk.client.app[DESK].ready()[0]
    north = await store.add_team("North")
    await store.set_team(reps["ann"], north.id)
    await store.add_team("South")  # nobody in it
    assert await only(team="North") == await only(rep=str(reps["ann"]))
    assert (await only(team="North,South"))["conversations"] == 1
    assert (await only(team="South"))["conversations"] == 0
    assert (await only(team="North", rep=str(reps["bob"])))["conversations"] == 0
    status, bad = await _summary(desk, **period, team="Nowhere")
    assert status == 400 and "team: no team 'Nowhere'" in str(bad), bad
    got = await only(queue="billing")
    assert got["conversations"] == 1 and got["queue_wait_seconds"]["count"] == 0
    assert got["first_response_seconds"]["count"] == 0
    assert got["sla_breaches"] == 1  # its 1 ms first-response target, unanswered
    got = await only(channel="webchat", queue="general")
    assert got["conversations"] == 1 and got["handle_seconds"] == _spread([handles["web"]])
    got = await only(channel="email")
    assert got["conversations"] == 1 and got["bot_resolved"] == 1
    assert got["handle_seconds"]["count"] == 0
    # Repeated parameters are alternatives, as comma-separated ones.
    resp = await desk.client.get(
        "/api/v1/reports/summary",
        params=[*period.items(), ("channel", "sms"), ("channel", "email")],
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert (await resp.json())["conversations"] == 2

    # Bad values: 400, naming the filter and what it may be.
    for query, words in (
        ({"channel": "fax"}, "channel: unknown channel 'fax'; one of webchat"),
        ({"queue": "sales"}, "queue: unknown queue 'sales'"),
        ({"rep": "ann"}, "rep: not a rep id: 'ann'"),
        ({"rep": "-3"}, "rep: not a rep id"),
        ({"rep": "99999"}, "rep: no rep 99999"),
        ({"channel": ""}, "channel: empty"),
        ({"rep": "1" * 40}, "rep: not a rep id"),
    ):
        status, bad = await _summary(desk, **period, **query)
        assert status == 400 and bad["error"] == "invalid", (query, bad)
        assert words in bad["message"], (query, bad)

    # The facts are the store's: the same after a restart, and rebuilt the same from
    # the stored rows by the migration's backfill.
    await desk.client.close()
    url = store_url if store_url.startswith("sqlite") else PgUrl.parse(store_url).sqlalchemy
    await asyncio.to_thread(migrate.downgrade, url, "0013-1")
    await asyncio.to_thread(migrate.upgrade, url)
    again = await _open(tmp_path, store_url, aiohttp_client)
    status, after = await _summary(again, **period)
    assert status == 200
    assert after == body
    status, after = await _summary(again, **period, rep=str(reps["ann"]))
    assert after["next_response_seconds"] == _spread(web_next)


async def test_a_wait_open_across_the_rebuild_is_measured_when_the_rep_answers(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    """The backfill also restores a customer message still waiting for the rep holding
    the conversation: the rep's reply after the upgrade (and a restart) ends that wait."""
    desk = await _open(tmp_path, store_url, aiohttp_client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ann = await desk.rep("ann", "general")
    cid = (await desk.handover("w1", "general")).id
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, cid, "Ann here")
    await desk.say("w1", "is it done?")
    await desk.say("w1", "hello?")
    await desk.client.close()
    url = store_url if store_url.startswith("sqlite") else PgUrl.parse(store_url).sqlalchemy
    await asyncio.to_thread(migrate.downgrade, url, "0013-1")
    await asyncio.to_thread(migrate.upgrade, url)
    again = await _open(tmp_path, store_url, aiohttp_client)
    await asyncio.sleep(0.1)
    await again.service.reply(ann.id, cid, "Done")
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    status, body = await _summary(again, since=start.isoformat(), until=until)
    assert status == 200, body
    wait = (await _sent_at(again, cid, "Done") - await _sent_at(again, cid, "is it done?")) / 1000
    assert wait >= 0.1
    assert body["next_response_seconds"] == _spread([wait])
