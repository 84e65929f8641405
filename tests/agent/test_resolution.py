"""The resolution signal (agent/resolution.py) on web chat, SMS and email."""

from __future__ import annotations

import pytest

from agent.policy import EmbeddedPolicy
from agent.resolution import RESOLVED, assumed_event
from gateway.models import ChannelKind
from gateway.protocols import Decision
from tests.agent.harness import Chat, MemoryLedger, customer

JANE = customer(1, account="C-1001", name="Jane Doe")
CHANNELS = (ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.EMAIL)


def resolved(decision: Decision) -> list[dict[str, object]]:
    return [dict(e.data) for e in decision.events if e.kind == RESOLVED]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("closing", ["it arrived, all good, thanks!", "no", "bye"])
async def test_a_customer_confirming_the_answer_resolves_it(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, closing: str
) -> None:
    chat = Chat(policy, ledger, JANE, channel)
    answer = await chat.send("where is my order 1001?")
    assert not resolved(answer)
    assert chat.state["answered"] == "order_status"
    done = await chat.send(closing)
    assert resolved(done) == [{"how": "confirmed", "intent": "order_status"}]
    assert chat.state["answered"] is None  # counted once


@pytest.mark.parametrize("channel", CHANNELS)
async def test_thanks_with_nothing_answered_resolves_nothing(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    chat = Chat(policy, ledger, JANE, channel)
    assert not resolved(await chat.send("thank you"))
    await chat.send("I want to speak to a person")  # a handover is never the agent's
    assert chat.state.get("answered") is None
    assert not resolved(await chat.send("thanks"))


async def test_a_question_back_is_not_an_answer(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("where is my order?")  # asks for the number
    assert chat.state["answered"] is None
    assert not resolved(await chat.send("thanks"))


async def test_leaving_after_an_answer_is_assumed_resolved(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("what's your refund policy?")
    event = assumed_event(dict(chat.state))
    assert event is not None and event.kind == RESOLVED
    assert event.data == {"how": "assumed", "intent": "refund"}
    await chat.send("I want to speak to a person")
    assert assumed_event(dict(chat.state)) is None
