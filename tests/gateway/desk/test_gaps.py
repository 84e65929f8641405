"""`GET /api/v1/reports/gaps`: the questions the agent could not answer, in real
customers' wording (bench/eval/utterances.jsonl, from public datasets), grouped by
similarity with WordLlama, on SQLite and PostgreSQL; other handovers left out."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from agent.llm.brief import template_brief
from agent.turn import NOT_UNDERSTOOD
from gateway.desk.gaps import HandoverQuestion, gap_questions, is_gap
from gateway.models import ChannelKind, Identity, IdentityKind, Reply, Sentiment, Transfer
from gateway.protocols import Decision, TurnContext
from gateway.routing.models import Role
from tests.gateway.routing.desk import Desk, HandoverBrain, build

TOKEN = "reports-token-0123456789"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]
UTTERANCES = Path(__file__).resolve().parents[3] / "bench" / "eval" / "utterances.jsonl"
# How many of each intent's real utterances the customers ask (the first ones listed).
ASKED = {"GetBranchHours": 5, "FindATM": 5, "CheckPaymentStatus": 6, "GetExchangeRate": 4}
KB_MISS = "The knowledge base has no article about this and I don't know the answer"
NOT_GAPS = ("the customer asked for a person", "the customer is angry",
            "the customer could not be understood (speech recognition unsure twice)",
            "the AI assistant failed: the time budget ran out")  # fmt: skip


def _real_wording() -> dict[str, list[str]]:
    rows = [json.loads(line) for line in UTTERANCES.read_text(encoding="utf-8").splitlines()]
    return {label: [r["text"] for r in rows if r["source_label"] == label][:n]
            for label, n in ASKED.items()}  # fmt: skip


class GapBrain(HandoverBrain):
    """Hands over the messages in `reasons` with the agent's own brief template and
    that reason; anything else goes on down the class hierarchy (echoed)."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__()
        self.reasons = reasons

    async def respond(self, turn: TurnContext) -> Decision:
        text = turn.message.text
        reason = self.reasons.get(text)
        if reason is None:
            return await super().respond(turn)
        brief = template_brief(text, reason=reason, sentiment=Sentiment.NEUTRAL, confidence=0.3)
        return Decision(
            actions=(Reply(text="I'm passing you to our team."),
                     Transfer(queue="general", brief=brief)),
            intent="handover.not_understood", confidence=0.3,
        )  # fmt: skip


async def _gaps(desk: Desk, headers: bool = True, **query: str) -> tuple[int, Any]:
    auth = {"Authorization": f"Bearer {TOKEN}"} if headers else {}
    resp = await desk.client.get("/api/v1/reports/gaps", params=query, headers=auth)
    return resp.status, await resp.json()


async def test_unanswered_questions_are_grouped_by_similarity(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    wording = _real_wording()
    label_of = {text: label for label, texts in wording.items() for text in texts}
    reasons = {text: NOT_UNDERSTOOD for text in label_of}
    for text in wording["FindATM"][:2]:  # an LLM's escalation in its own words
        reasons[text] = KB_MISS
    # The same kind of question, handed over for reasons that are not gaps.
    others = [r["text"] for r in map(json.loads, UTTERANCES.read_text().splitlines())
              if r["source_label"] == "GetBranchHours"][10:10 + len(NOT_GAPS)]  # fmt: skip
    reasons.update(zip(others, NOT_GAPS, strict=True))
    brain = GapBrain(reasons)
    settings = {"database_url": store_url, "secret_key": "desk-test-secret-0123456789",
                "api_token": TOKEN}  # fmt: skip
    desk = Desk(await aiohttp_client(build(tmp_path / "data", brain, **settings)), brain)
    start = datetime.now(UTC) - timedelta(seconds=1)

    conversation_of: dict[str, int] = {}
    # The intents interleaved, as customers arrive; each says hello first, so the
    # question is their last message before the handover, not their first.
    asked = [t for group in itertools.zip_longest(*wording.values()) for t in group if t]
    for n, text in enumerate(asked):
        channel, identity = ChannelKind.WEBCHAT, None
        if n % 3 == 1:
            channel = ChannelKind.SMS
            identity = Identity(kind=IdentityKind.PHONE, value=f"+1555000{n:04d}")
        await desk.say(f"v{n}", "hello", channel, identity)
        conversation_of[text] = (await desk.say(f"v{n}", text, channel, identity)).id
    for n, text in enumerate(others):
        await desk.say(f"o{n}", text)
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    status, body = await _gaps(desk, since=start.isoformat(), until=until)
    assert status == 200, body
    assert body["handed_over"] == len(asked) + len(others)
    assert body["unanswered"] == len(asked)
    groups = body["groups"]
    assert sum(g["count"] for g in groups) == len(asked)
    for g in groups:
        # Each group holds one intent's questions, its representative among them.
        members = {t for t, cid in conversation_of.items() if cid in g["conversations"]}
        assert len(members) == g["count"]
        assert len({label_of[t] for t in members}) == 1, members
        assert g["question"] in members and set(g["questions"]) <= members - {g["question"]}
        assert sum(g["channels"].values()) == g["count"]
    # Payment status, ATMs and branch hours come out as the largest groups; every
    # payment-status and ATM question is in its one group.
    top = [{t for t, cid in conversation_of.items() if cid in g["conversations"]}
           for g in groups[:3]]  # fmt: skip
    assert top[0] == set(wording["CheckPaymentStatus"])
    assert top[1] == set(wording["FindATM"])
    assert top[2] < set(wording["GetBranchHours"]) and len(top[2]) >= 3
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert not any(conversation_of.get(t) for t in others)

    # The console's reports page reads the same for a supervisor; nobody else.
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.rep("ann", available=False)
    assert (await desk.login("ann"))[0] == 200
    query = {"since": start.isoformat(), "until": until}
    resp = await desk.client.get("/console/api/reports/gaps", params=query)
    assert resp.status == 403
    assert (await desk.login("lead"))[0] == 200
    resp = await desk.client.get("/console/api/reports/gaps", params=query)
    assert resp.status == 200 and await resp.json() == body

    # Without a token: 401; a period before any of it: nothing.
    assert (await _gaps(desk, headers=False))[0] == 401
    _, empty = await _gaps(desk, since="2020-01-01T00:00:00Z", until="2020-01-02T00:00:00Z")
    assert empty["groups"] == [] and empty["unanswered"] == 0


def test_which_handover_reasons_are_gaps() -> None:
    assert is_gap(NOT_UNDERSTOOD) and is_gap(KB_MISS)
    assert is_gap("Not covered by the help centre") and is_gap("low confidence in any answer")
    for reason in (*NOT_GAPS, "refunds are always handled by a person", ""):
        assert not is_gap(reason), reason


async def test_the_openapi_document_describes_the_gaps(
    tmp_path: Path, store_url: str, aiohttp_client: Client
) -> None:
    brain = GapBrain({})
    settings = {"database_url": store_url, "secret_key": "desk-test-secret-0123456789",
                "api_token": TOKEN}  # fmt: skip
    desk = Desk(await aiohttp_client(build(tmp_path / "data", brain, **settings)), brain)
    doc = await (await desk.client.get("/api/v1/openapi.json")).json()
    operation = doc["paths"]["/api/v1/reports/gaps"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"since", "until"}
    assert set(operation["responses"]) == {"200", "400", "401"}
    gaps = doc["components"]["schemas"]["Gaps"]
    assert {"handed_over", "unanswered", "groups"} <= set(gaps["properties"])
    group = doc["components"]["schemas"]["GapGroup"]
    assert {"count", "question", "conversations"} <= set(group["properties"])
    summary = doc["components"]["schemas"]["Summary"]
    assert "cost" in summary["properties"]
    assert {"total", "by_kind", "by_channel"} <= set(
        doc["components"]["schemas"]["Cost"]["properties"]
    )


def test_one_question_per_conversation_from_its_first_gap() -> None:
    latest_first = [
        HandoverQuestion(2, "sms", NOT_UNDERSTOOD, 0.3, "did my last payment go through?"),
        HandoverQuestion(1, "webchat", KB_MISS, 0.5, "Any of your cash machines nearby me?"),
        HandoverQuestion(1, "webchat", NOT_UNDERSTOOD, 0.3, "view current exchange rates"),
        HandoverQuestion(1, "webchat", "the customer asked for a person", 0.9, "a person"),
        HandoverQuestion(3, "webchat", NOT_UNDERSTOOD, 0.3, "   "),  # no words: no question
    ]
    found = gap_questions(latest_first)
    assert [(h.conversation_id, h.question) for h in found] == [
        (1, "view current exchange rates"),
        (2, "did my last payment go through?"),
    ]
