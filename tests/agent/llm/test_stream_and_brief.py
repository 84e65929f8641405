"""Sentences stream as they complete; the handover brief is structured JSON or the template."""

from __future__ import annotations

import asyncio
import json

from agent.llm.brief import BRIEF_SCHEMA
from agent.llm.sentences import SentenceSplitter
from agent.llm.speaker import HOLD
from gateway.models import ChannelKind, Sentiment
from gateway.protocols import Decision
from tests.agent.harness import Chat, MemoryLedger, brief, customer, reply_text
from tests.agent.llm.conftest import MakeBrain
from tests.agent.llm.test_brain import _context
from tests.support.fake_openai import FakeOpenAI, text, tool_calls


def test_sentences_split_only_when_complete() -> None:
    splitter = SentenceSplitter()
    pieces = ["Your plan costs $9", ".99 a mon", "th. Mr. Smith, e.g. you, can ", "pay. Ok"]
    out = [s for p in pieces for s in splitter.feed(p)]
    assert out == ["Your plan costs $9.99 a month.", "Mr. Smith, e.g. you, can pay."]
    assert splitter.flush() == ["Ok"]
    paragraphs = SentenceSplitter()
    assert paragraphs.feed("Dear Jane,\n\nThanks") == ["Dear Jane,"]


async def test_first_sentence_is_yielded_before_the_rest_is_written(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    first = "Your order 1001 has shipped. "
    rest = "It should arrive on Friday. Anything else?"
    gate = asyncio.Event()
    # The server stops after the first sentence until the test has heard it.
    llm.add(text(first + rest, chunk_chars=5, gate=gate, gate_after=len(first) + 5))
    brain = make_brain()
    chat = Chat(brain, ledger, customer(1), channel=ChannelKind.PHONE)
    stream = brain.respond_stream(_context(chat, "where is my order 1001"))
    assert await anext(stream) == "Your order 1001 has shipped."
    gate.set()
    items = [item async for item in stream]
    assert items[:2] == ["It should arrive on Friday.", "Anything else?"]
    decision = items[-1]
    assert isinstance(decision, Decision)
    assert reply_text(decision) == first + rest


async def test_a_slow_tool_gets_a_holding_phrase_on_a_call(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    llm.add(
        tool_calls(("order_lookup", {"order_id": "1001"})),
        text("It has shipped with UPS."),
    )
    brain = make_brain(hold_after_s=0.0)  # any tool is "slow"
    chat = Chat(brain, ledger, customer(1), channel=ChannelKind.PHONE)
    items = [i async for i in brain.respond_stream(_context(chat, "where is order 1001"))]
    assert items[:2] == [HOLD, "It has shipped with UPS."]
    assert reply_text(items[-1]) == f"{HOLD} It has shipped with UPS."  # type: ignore[arg-type]


async def test_escalate_carries_a_structured_brief_with_pii_masked(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    args = {
        "queue": "billing",
        "need": "Charged twice on card 4111 1111 1111 1111 for order 1001",
        "tried": ["checked the billing summary"],
        "missing": ["date of the second charge"],
        "next_step": "Refund the duplicate charge",
        "reason": "a duplicate charge needs a person",
        "confidence": 0.8,
    }
    llm.add(tool_calls(("escalate", args)))
    chat = Chat(make_brain(), ledger, customer(1))
    decision = await chat.send("I was charged twice for 1001, card 4111 1111 1111 1111")
    handed = brief(decision)
    assert handed.queue == "billing" and handed.confidence == 0.8
    assert "4111 1111" not in handed.need and "[card number ending 1111]" in handed.need
    assert handed.tried == ("checked the billing summary",)
    assert decision.intent == "handover.model" and "billing team" in reply_text(decision)
    # Nothing identifying leaves for the model either.
    assert "4111 1111 1111 1111" not in json.dumps(llm.requests[0]["messages"])


async def test_unusable_escalation_asks_for_structured_output_then_uses_the_template(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    structured = {
        "queue": "technical",
        "need": "Cannot sign in",
        "next_step": "Verify identity",
        "reason": "locked out",
    }
    llm.add(tool_calls(("escalate", "{broken")), text(json.dumps(structured)))
    chat = Chat(make_brain(), ledger, customer(1))
    first = brief(await chat.send("I can't log in and nothing works"))
    assert (first.queue, first.need) == ("technical", "Cannot sign in")
    assert llm.requests[1]["response_format"]["json_schema"]["schema"] == BRIEF_SCHEMA
    assert not llm.requests[1].get("stream")

    llm.add(tool_calls(("escalate", "{broken")), text("not json at all"))
    second = brief(await chat.send("I still can't log in to my account"))
    assert second.reason == "the assistant escalated"  # the embedded template
    assert "sign in" in second.need.lower() or "password" in second.need.lower()
    assert second.sentiment in (Sentiment.NEUTRAL, Sentiment.NEGATIVE)


async def test_goodbye_on_a_call_hangs_up_after_the_answer(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    llm.add(text("Thanks for calling, goodbye!"), text("Goodbye!"))
    phone = await Chat(make_brain(), ledger, customer(1), ChannelKind.PHONE).send("thanks, bye")
    assert [type(a).__name__ for a in phone.actions] == ["Reply", "Hangup"]
    chat = await Chat(make_brain(), ledger, customer(1)).send("thanks, bye")
    assert [type(a).__name__ for a in chat.actions] == ["Reply"]
