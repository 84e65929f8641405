"""The summary's cost section: conversations with known usage on each channel
(an agent's LLM tokens stored with its turns, SMS segments and a call's duration as
Twilio reports them, a rep's handling time) priced exactly, on SQLite and
PostgreSQL; a provider's retried report counts once."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.errors import ConfigError
from gateway.models import ChannelKind, Identity, IdentityKind, Reply
from gateway.protocols import Decision, EventDraft, TurnContext
from gateway.routing.models import Role
from gateway.settings import load_settings
from gateway.store.usage_store import open_usage
from gateway.usage import Usage
from tests.gateway.routing.desk import Desk, HandoverBrain, build

TOKEN = "reports-token-0123456789"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]
RATES = {
    "llm_prompt_per_1k_tokens": 0.15, "llm_completion_per_1k_tokens": 0.6,
    "stt_per_minute": 0.006, "tts_per_minute": 0.015, "sms_segment": 0.0079,
    "call_minute": 0.0085, "rep_minute": 0.5,
}  # fmt: skip


class MeteredBrain(HandoverBrain):
    """`tokens <prompt> <completion> [solved|human]`: a turn that used that many LLM
    tokens (as agent/llm/brain.py records them: a `usage` event of the turn);
    `call <sid>`: a phone turn that marks the call as phone calls do."""

    async def respond(self, turn: TurnContext) -> Decision:
        words = turn.message.text.split()
        if words and words[0] == "call":
            event = EventDraft(kind="phone.call_started", data={"call_sid": words[1]})
            return Decision(actions=(Reply(text="hello"),), events=(event,), confidence=1.0)
        if words and words[0] == "tokens":
            spent = Usage(llm_prompt_tokens=int(words[1]), llm_completion_tokens=int(words[2]))
            rest = words[3:]
            if rest and rest[0] == "human":
                decided = await super().respond(
                    turn.model_copy(
                        update={
                            "message": turn.message.model_copy(update={"text": "human general"})
                        }
                    )
                )
                return decided.model_copy(update={"events": (*decided.events, spent.event())})
            events: tuple[EventDraft, ...] = (spent.event(),)
            if rest and rest[0] == "solved":
                events += (EventDraft(kind="conversation.resolved", data={"how": "confirmed"}),)
            return Decision(actions=(Reply(text="answered"),), events=events, confidence=1.0)
        return await super().respond(turn)


async def _open(tmp_path: Path, store_url: str, client: Client) -> Desk:
    brain = MeteredBrain()
    settings = {"database_url": store_url, "secret_key": "desk-test-secret-0123456789",
                "api_token": TOKEN, "cost_rates": RATES, "cost_currency": "EUR"}  # fmt: skip
    return Desk(await client(build(tmp_path / "data", brain, **settings)), brain)


async def _get(desk: Desk, path: str, **query: str) -> tuple[int, Any]:
    resp = await desk.client.get(path, params=query,
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    return resp.status, await resp.json()


def _priced(prompt: int, completion: int, sms: int = 0, call_s: int = 0,
            rep_ms: int = 0) -> dict[str, float]:  # fmt: skip
    return {
        "llm": prompt / 1000 * 0.15 + completion / 1000 * 0.6,
        "stt": 0.0, "tts": 0.0, "sms": sms * 0.0079, "call": call_s / 60 * 0.0085,
        "rep": rep_ms / 60_000 * 0.5,
    }  # fmt: skip


async def test_known_usage_is_priced_exactly_by_kind_channel_and_resolution(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    usage = open_usage(desk.store)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ann = await desk.rep("ann", "general")

    # Webchat: the agent resolves one alone over two turns (tokens add up) ...
    await desk.say("w1", "tokens 1200 80")
    web_bot = await desk.say("w1", "tokens 800 40 solved")
    # ... and hands one over to Ann, who closes it after a while.
    web_rep = await desk.say("w2", "tokens 500 25 human")
    offer_id, cid = await desk.offer_for(ann.id)
    assert cid == web_rep.id
    await desk.service.accept(ann.id, offer_id)
    await asyncio.sleep(0.3)
    await desk.service.close(ann.id, cid, "resolved")
    # SMS: resolved by the agent; Twilio's segments for the text in and the reply out,
    # each reported twice (a retried webhook) and counted once.
    sms = Identity(kind=IdentityKind.PHONE, value="+15550001001")
    sms_bot = await desk.say("s1", "tokens 300 20 solved", ChannelKind.SMS, sms)
    for sid, segments in (("SM" + "a" * 32, 2), ("SM" + "b" * 32, 3), ("SM" + "a" * 32, 2)):
        await usage.record(sms_bot.id, Usage(sms_segments=segments), source=f"sms:{sid}")
    # Phone: a call of 95 s (its status callback, retried) on a conversation left open.
    caller = Identity(kind=IdentityKind.PHONE, value="+15550001002")
    call = await desk.say("p1", "call CA" + "c" * 32, ChannelKind.PHONE, caller)
    assert await usage.record_call("CA" + "c" * 32, Usage(call_s=95)) == call.id
    assert await usage.record_call("CA" + "c" * 32, Usage(call_s=95)) is None  # a retry
    assert await usage.record_call("CA" + "d" * 32, Usage(call_s=60)) is None  # no such call

    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    status, body = await _get(desk, "/api/v1/reports/summary", since=start.isoformat(),
                              until=until)  # fmt: skip
    assert status == 200, body
    cost = body["cost"]

    events = await desk.store.events(web_rep.id)
    (taken,) = [e.created_at for e in events if e.kind == "rep.assigned"]
    (closed,) = [e.created_at for e in events if e.kind == "rep.closed"]
    # The routing store's own read of handling times (the entry's taken -> closed).
    (handled,) = await desk.routing.handle_times(10)
    rep_ms = round(handled * 1000)
    assert rep_ms >= 300 and abs(rep_ms - (closed - taken).total_seconds() * 1000) < 100
    each = {
        web_bot.id: _priced(2000, 120),
        web_rep.id: _priced(500, 25, rep_ms=rep_ms),
        sms_bot.id: _priced(300, 20, sms=5),
        call.id: _priced(0, 0, call_s=95),
    }
    # By kind: the period's summed usage times the rates; by resolution and the
    # costliest: each conversation's own.
    summed = _priced(2800, 165, sms=5, call_s=95, rep_ms=rep_ms)
    by_kind = {k: round(v, 6) for k, v in summed.items()}
    total = sum(summed.values())
    assert cost["currency"] == "EUR" and cost["rates"] == RATES
    assert cost["quantities"] == {
        "llm_prompt_tokens": 2800, "llm_completion_tokens": 165, "stt_seconds": 0.0,
        "tts_seconds": 0.0, "sms_segments": 5, "call_minutes": round(95 / 60, 4),
        "rep_minutes": round(rep_ms / 60_000, 4),
    }  # fmt: skip
    assert cost["by_kind"] == by_kind
    assert cost["total"] == round(total, 6)
    assert cost["per_conversation"] == round(total / 4, 6)

    def resolved(*ids: int) -> dict[str, Any]:
        spent = sum(sum(each[i].values()) for i in ids)
        return {"resolved": len(ids), "cost": round(spent, 6),
                "per_resolved": round(spent / len(ids), 6) if ids else None}  # fmt: skip

    assert cost["by_channel"] == {
        "webchat": {"agent": resolved(web_bot.id), "rep": resolved(web_rep.id)},
        "sms": {"agent": resolved(sms_bot.id), "rep": resolved()},
        "email": {"agent": resolved(), "rep": resolved()},
        "phone": {"agent": resolved(), "rep": resolved()},  # the call is still open
    }
    ranked = sorted(each, key=lambda i: (-round(sum(each[i].values()), 6), i))
    assert [c["id"] for c in cost["costliest"]] == ranked

    # The CSV export carries the same figures.
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    assert (await desk.login("lead"))[0] == 200
    resp = await desk.client.get("/console/api/reports/summary.csv",
                                 params={"since": start.isoformat(), "until": until})  # fmt: skip
    assert resp.status == 200
    rows = dict(csv.reader(io.StringIO(await resp.text())))
    assert rows["cost.total"] == str(cost["total"])
    assert rows["cost.resolved.webchat.rep.per_resolved"] == str(
        cost["by_channel"]["webchat"]["rep"]["per_resolved"]
    )
    assert rows["cost.quantity.sms_segments"] == "5"


async def test_without_rates_usage_is_counted_and_costs_nothing(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    brain = MeteredBrain()
    settings = {"database_url": store_url, "secret_key": "desk-test-secret-0123456789",
                "api_token": TOKEN}  # fmt: skip
    desk = Desk(await aiohttp_client(build(tmp_path / "data", brain, **settings)), brain)
    start = datetime.now(UTC) - timedelta(seconds=1)
    await desk.say("w1", "tokens 10 5 solved")
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    _, body = await _get(desk, "/api/v1/reports/summary", since=start.isoformat(), until=until)
    assert body["cost"]["quantities"]["llm_prompt_tokens"] == 10
    assert body["cost"]["total"] == 0 and body["cost"]["currency"] == "USD"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"cost_rates": {"sms": 1.0}}, "GATEWAY_COST_RATES"),
        ({"cost_rates": {"rep_minute": -1.0}}, "GATEWAY_COST_RATES"),
        ({"cost_rates": {"rep_minute": float("inf")}}, "GATEWAY_COST_RATES"),
        ({"cost_currency": "euro"}, "GATEWAY_COST_CURRENCY"),
    ],
)
def test_bad_rates_are_refused_naming_the_setting(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**values)
