"""A filtered summary's cost section counts only the conversations the filter keeps
(issue 17: it read the usage of the filtered conversations' whole id range), on
SQLite and PostgreSQL: known usage on two channels, handled by two reps, with the
channels' conversations interleaved so each one's ids span the other's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.models import ChannelKind, Identity, IdentityKind
from gateway.store.usage_store import open_usage
from gateway.usage import Usage
from tests.gateway.desk.test_cost import Client, _get, _open, _priced
from tests.gateway.routing.desk import Desk


async def _handled(desk: Desk, rep_id: int, visitor: str, text: str,
                   channel: ChannelKind, identity: Identity | None) -> int:  # fmt: skip
    """A conversation that spent tokens, handed over (`text`: `human <queue>`), taken by
    the rep and closed by them a while later; its id."""
    conversation = await desk.say(visitor, text, channel, identity)
    offer_id, cid = await desk.offer_for(rep_id)
    assert cid == conversation.id
    await desk.service.accept(rep_id, offer_id)
    await asyncio.sleep(0.2)
    await desk.service.close(rep_id, cid, "resolved")
    return cid


async def test_a_filtered_summary_costs_only_its_conversations(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    desk = await _open(tmp_path, store_url, aiohttp_client)
    usage = open_usage(desk.store)
    start = datetime.now(UTC) - timedelta(seconds=1)
    ann = await desk.rep("ann", "general")
    bob = await desk.rep("bob", "billing")
    phone = {v: Identity(kind=IdentityKind.PHONE, value=v)
             for v in ("+15550002001", "+15550002002")}  # fmt: skip

    # In this order: webchat (Ann), SMS (Bob), webchat (agent), SMS (agent).
    await desk.say("w1", "tokens 1000 100")
    web_ann = await _handled(desk, ann.id, "w1", "human general", ChannelKind.WEBCHAT, None)
    await desk.say("s1", "tokens 300 20", ChannelKind.SMS, phone["+15550002001"])
    sms_bob = await _handled(desk, bob.id, "s1", "human billing", ChannelKind.SMS,
                             phone["+15550002001"])  # fmt: skip
    await usage.record(sms_bob, Usage(sms_segments=4), source="sms:SM" + "e" * 32)
    web_bot = (await desk.say("w2", "tokens 200 10 solved")).id
    sms_bot = (await desk.say("s2", "tokens 50 5 solved", ChannelKind.SMS,
                              phone["+15550002002"])).id  # fmt: skip
    await usage.record(sms_bot, Usage(sms_segments=2), source="sms:SM" + "f" * 32)
    assert web_ann < sms_bob < web_bot < sms_bot
    # Each rep's handling time, as the routing store reads it (latest closed first).
    bob_ms, ann_ms = (round(s * 1000) for s in await desk.routing.handle_times(10))
    each = {
        web_ann: _priced(1000, 100, rep_ms=ann_ms),
        sms_bob: _priced(300, 20, sms=4, rep_ms=bob_ms),
        web_bot: _priced(200, 10),
        sms_bot: _priced(50, 5, sms=2),
    }
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    async def cost(**only: str) -> dict[str, Any]:
        status, body = await _get(desk, "/api/v1/reports/summary", since=start.isoformat(),
                                  until=until, **only)  # fmt: skip
        assert status == 200, body
        return dict(body["cost"])

    def expected(ids: list[int], prompt: int, completion: int, sms: int,
                 rep_ms: int) -> dict[str, Any]:  # fmt: skip
        summed = _priced(prompt, completion, sms=sms, rep_ms=rep_ms)
        total = sum(summed.values())
        ranked = sorted(ids, key=lambda i: (-round(sum(each[i].values()), 6), i))
        return {
            "quantities": {
                "llm_prompt_tokens": prompt, "llm_completion_tokens": completion,
                "stt_seconds": 0.0, "tts_seconds": 0.0, "sms_segments": sms,
                "call_minutes": 0.0, "rep_minutes": round(rep_ms / 60_000, 4),
            },
            "by_kind": {k: round(v, 6) for k, v in summed.items()},
            "total": round(total, 6),
            "per_conversation": round(total / len(ids), 6),
            "costliest": ranked,
        }  # fmt: skip

    def seen(got: dict[str, Any]) -> dict[str, Any]:
        keys = ("quantities", "by_kind", "total", "per_conversation")
        return {**{k: got[k] for k in keys}, "costliest": [c["id"] for c in got["costliest"]]}

    assert seen(await cost()) == expected([web_ann, sms_bob, web_bot, sms_bot], 1550, 135, 6,
                                          ann_ms + bob_ms)  # fmt: skip
    sms = await cost(channel="sms")
    assert seen(sms) == expected([sms_bob, sms_bot], 350, 25, 6, bob_ms)
    assert sms["by_channel"]["webchat"]["agent"]["resolved"] == 0
    assert sms["by_channel"]["sms"]["agent"]["cost"] == round(sum(each[sms_bot].values()), 6)
    webchat = await cost(channel="webchat")
    assert seen(webchat) == expected([web_ann, web_bot], 1200, 110, 0, ann_ms)
    assert seen(await cost(rep=str(ann.id))) == expected([web_ann], 1000, 100, 0, ann_ms)
    assert seen(await cost(rep=str(bob.id))) == expected([sms_bob], 300, 20, 4, bob_ms)
    assert seen(await cost(queue="billing")) == expected([sms_bob], 300, 20, 4, bob_ms)
