"""`GET /api/v1/reports/summary`: conversations with known outcomes on every channel,
each figure checked exactly, on SQLite and PostgreSQL, and again after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.desk.summary import percentile
from gateway.idle_close import sweep_once
from gateway.models import ChannelKind, Identity, IdentityKind, Reply
from gateway.protocols import Decision, EventDraft, TurnContext
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
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
    assert body["sla"] == {"first_response": 1, "resolution": 0, "at_risk": 0}

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
    assert {p["name"] for p in operation["parameters"]} == {"since", "until"}
    assert set(operation["responses"]) == {"200", "400", "401"}
    summary = doc["components"]["schemas"]["Summary"]
    for field in (
        "conversations",
        "by_channel",
        "bot_resolved",
        "handed_over",
        "first_response_seconds",
        "resolution_seconds",
        "csat",
        "sla_breaches",
    ):
        assert field in summary["required"], field  # fmt: skip
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
