"""The summary's extra figures (gateway/desk/extras.py): messages by channel and hour,
handovers by reason, CSAT by channel, queue and rep, and next-response SLA breaches,
each exact and filtered, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.desk.extras import reason_group
from gateway.desk.state import DESK
from gateway.desk.summary import Summary, csv_rows
from gateway.models import ChannelKind, HandoffBrief, Identity, IdentityKind, Reply, Transfer
from gateway.protocols import Decision, TurnContext
from gateway.routing.models import Presence
from tests.gateway.desk.test_reports import TOKEN, Client, ResolvingBrain, _work
from tests.gateway.routing.desk import Desk, build

CHANNELS = ("webchat", "sms", "email", "phone")


class ReasonBrain(ResolvingBrain):
    """`why <queue> <reason...>`: hands over to the queue with that brief reason."""

    async def respond(self, turn: TurnContext) -> Decision:
        words = turn.message.text.split()
        if words and words[0] == "why":
            brief = HandoffBrief(need="help", next_step="take over", confidence=0.5,
                                 queue=words[1], reason=" ".join(words[2:]))  # fmt: skip
            return Decision(actions=(Reply(text="connecting you"),
                                     Transfer(queue=words[1], brief=brief)),
                            intent="handover", confidence=0.5)  # fmt: skip
        return await super().respond(turn)


async def _open(tmp_path: Path, store_url: str, client: Client, **more: Any) -> Desk:
    brain = ReasonBrain()
    settings = {"database_url": store_url, "secret_key": "desk-test-secret-0123456789",
                "api_token": TOKEN, "sla_first_response_s": {"billing": 0.001}, **more}
    return Desk(await client(build(tmp_path / "data", brain, **settings)), brain)


async def _summary(desk: Desk, **query: str) -> dict[str, Any]:
    resp = await desk.client.get("/api/v1/reports/summary", params=query,
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    body = await resp.json()
    assert resp.status == 200, body
    return body  # type: ignore[no-any-return]


async def _messages(desk: Desk, ids: list[int]) -> dict[str, Any]:
    """The messages figure worked out from the store's ordinary reads (UTC hours)."""
    by_channel = {c: {"inbound": 0, "outbound": 0} for c in CHANNELS}
    by_hour = {"inbound": [0] * 24, "outbound": [0] * 24}
    for cid in ids:
        channel = (await desk.store.get_conversation(cid)).channel.value
        for m in await desk.store.conversation_messages(cid):
            by_channel[channel][m.direction.value] += 1
            by_hour[m.direction.value][m.created_at.astimezone(UTC).hour] += 1
    return {"inbound": sum(by_hour["inbound"]), "outbound": sum(by_hour["outbound"]),
            "by_channel": by_channel, "by_hour": by_hour}  # fmt: skip


def test_reasons_are_grouped_by_what_they_say() -> None:
    assert reason_group("the agent did not understand the customer") == "unanswered"
    assert reason_group("the customer asked for a person") == "requested"
    assert reason_group("the customer is angry") == "angry"
    assert reason_group("refunds are always handled by a person") == "refund"
    assert reason_group("a disputed charge needs the billing team") == "dispute"
    assert reason_group("cancellation refused: outside the window") == "refused"
    assert reason_group("the business backend failed") == "backend"
    assert reason_group("the customer reports their account was compromised") == "compromised"
    assert reason_group("a complaint, legal threat or compensation demand") == "complaint"
    assert reason_group("speech recognition failed twice") == "speech"
    assert reason_group("needs a specialist") == "other"
    assert reason_group("  ") == reason_group(None) == "unspecified"


async def test_messages_reasons_and_csat_breakdowns_are_exact_and_filtered(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ann = await desk.rep("ann", "general")
    mail = Identity(kind=IdentityKind.EMAIL, value="jo@example.com")
    ids: dict[str, int] = {}
    for name, visitor, text, channel, identity, score in (
        ("web", "w1", "why general the customer asked for a person", ChannelKind.WEBCHAT,
         None, 5),
        ("email", "e1", "why general the agent did not understand the customer",
         ChannelKind.EMAIL, mail, 3),
    ):  # fmt: skip
        cid = (await desk.say(visitor, text, channel, identity)).id
        ids[name] = cid
        offer_id, offered = await desk.offer_for(ann.id)
        assert offered == cid
        await desk.service.accept(ann.id, offer_id)
        await desk.service.reply(ann.id, cid, "Hello, Ann here")
        await desk.say(visitor, "thanks", channel, identity)
        await desk.service.reply(ann.id, cid, "You're welcome")
        await desk.service.close(ann.id, cid, "resolved")
        assert await desk.routing.rate(cid, score) is not None
    sms = Identity(kind=IdentityKind.PHONE, value="+15550003001")
    ids["sms"] = (await desk.say("s1", "solved confirmed", ChannelKind.SMS, sms)).id
    ids["billing"] = (await desk.say("w2", "why billing refunds are always handled by a person")).id
    phone = Identity(kind=IdentityKind.PHONE, value="+15550003002")
    ids["phone"] = (await desk.say("p1", "human general", ChannelKind.PHONE, phone)).id
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    period = {"since": start.isoformat(), "until": until}

    body = await _summary(desk, **period)
    assert body["conversations"] == 5 and body["handed_over"] == 4
    assert body["messages"] == await _messages(desk, list(ids.values()))
    # The email customer wrote twice; the agent, ann (and the close and rating
    # notices) wrote back.
    assert body["messages"]["by_channel"]["email"]["inbound"] == 2
    assert body["messages"]["by_channel"]["email"]["outbound"] >= 3
    assert body["handed_over_why"] == {"requested": 1, "unanswered": 1, "refund": 1,
                                       "unspecified": 1}  # fmt: skip
    assert sum(body["handed_over_why"].values()) == body["handed_over"]
    assert body["csat_by_channel"] == {
        "webchat": {"count": 1, "average": 5.0}, "sms": {"count": 0, "average": None},
        "email": {"count": 1, "average": 3.0}, "phone": {"count": 0, "average": None},
    }  # fmt: skip
    assert body["csat_by_queue"] == {"general": {"count": 2, "average": 4.0}}
    desk_store = desk.client.app[DESK].ready()[0]
    rep = await desk_store.get_rep(ann.id)
    assert rep is not None
    name = rep.display_name
    assert body["csat_by_rep"] == [{"rep_id": ann.id, "name": name, "count": 2, "average": 4.0}]

    got = await _summary(desk, **period, channel="email")
    assert got["messages"] == await _messages(desk, [ids["email"]])
    assert got["handed_over_why"] == {"unanswered": 1}
    assert got["csat_by_channel"]["email"] == {"count": 1, "average": 3.0}
    assert got["csat_by_channel"]["webchat"] == {"count": 0, "average": None}
    got = await _summary(desk, **period, queue="billing")
    assert got["handed_over_why"] == {"refund": 1}
    assert got["csat_by_queue"] == {} and got["csat_by_rep"] == []
    got = await _summary(desk, **period, rep=str(ann.id))
    assert got["handed_over_why"] == {"requested": 1, "unanswered": 1}
    assert got["messages"] == await _messages(desk, [ids["web"], ids["email"]])
    assert got["csat_by_rep"] == body["csat_by_rep"]

    # The CSV has them too.
    rows = dict(csv_rows(Summary.model_validate(body)))
    assert rows["messages.email.inbound"] == "2"
    assert rows["handed_over_why.refund"] == "1"
    assert rows["csat.channel.webchat.average"] == "5.0"
    assert rows["csat.queue.general.count"] == "2"
    assert rows[f"csat.rep.{ann.id}.average"] == "4.0"
    hours = body["messages"]["by_hour"]["inbound"]
    assert [rows[f"messages.inbound.hour_{h:02d}"] for h in range(24)] == [str(n) for n in hours]


async def test_next_response_targets_count_breaches(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    """`_work`'s web chat has a wait of at least 0.15 s (ann's "Found it" after the
    customer's "still there?"): past a 0.12 s next-response target in general."""
    desk = await _open(tmp_path, store_url, aiohttp_client,
                       sla_next_response_s={"general": 0.12})  # fmt: skip
    start = datetime.now(UTC) - timedelta(seconds=1)
    _, reps = await _work(desk)
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    period = {"since": start.isoformat(), "until": until}
    body = await _summary(desk, **period)
    # The billing conversation missed its 1 ms first response; the web chat a next one.
    assert body["sla"] == {"first_response": 1, "resolution": 0, "next_response": 1,
                           "at_risk": 0}  # fmt: skip
    assert body["sla_breaches"] == 2
    assert (await _summary(desk, **period, channel="sms"))["sla"]["next_response"] == 0
    got = await _summary(desk, **period, rep=str(reps["ann"]))
    assert got["sla"]["next_response"] == 1 and got["sla_breaches"] == 1

    # A wait still open counts once past its target: a new web chat in general, bob
    # answers, then the customer writes and nobody replies.
    bob = reps["bob"]
    await desk.service.set_presence(reps["ann"], Presence.AWAY)
    await desk.service.set_presence(bob, Presence.AVAILABLE)
    cid = (await desk.handover("w9", "general")).id
    offer_id, offered = await desk.offer_for(bob)
    assert offered == cid
    await desk.service.accept(bob, offer_id)
    await desk.service.reply(bob, cid, "Bob here")
    await desk.say("w9", "and now?")
    await asyncio.sleep(0.15)
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    got = await _summary(desk, since=start.isoformat(), until=later)
    assert got["sla"]["next_response"] == 2 and got["sla_breaches"] == 3
    assert got["handed_over_why"] == {"unspecified": got["handed_over"]}  # no brief reasons


async def test_the_openapi_document_describes_the_extra_figures(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    doc = await (await desk.client.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    summary = schemas["Summary"]["properties"]
    for field in ("messages", "handed_over_why", "csat_by_channel", "csat_by_queue",
                  "csat_by_rep"):  # fmt: skip
        assert summary[field]["description"], field
    assert {"inbound", "outbound", "by_channel", "by_hour"} <= set(
        schemas["Messages"]["properties"]
    )
    assert "next_response" in schemas["SlaFigures"]["properties"]
    assert {"rep_id", "name", "count", "average"} <= set(schemas["RepCsat"]["properties"])
