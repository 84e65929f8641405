"""The gateway's own handover signals on the LLM path: a caller the speech recogniser
could not make out is asked to repeat, never acted on, and twice in a row handed over."""

from __future__ import annotations

from agent.llm.brain import NOT_HEARD
from gateway.models import ChannelKind
from tests.agent.harness import Chat, MemoryLedger, customer, kinds, reply_text, transfer
from tests.agent.llm.conftest import MakeBrain
from tests.support.fake_openai import FakeOpenAI, text


async def test_an_unsure_transcript_is_not_acted_on_and_twice_in_a_row_hands_over(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    llm.add(text("Order 1001 has shipped with UPS."))
    chat = Chat(make_brain(min_confidence=0.4), ledger, customer(1), ChannelKind.PHONE)

    first = await chat.send("cancel my subscription", confidence=0.2)
    assert reply_text(first) == NOT_HEARD and transfer(first) is None
    assert "llm.unclear" in kinds(first)
    assert llm.requests == []  # the misheard words never reach the model

    # A clear one in between resets the count.
    clear = await chat.send("where is order 1001", confidence=0.9)
    assert reply_text(clear) == "Order 1001 has shipped with UPS."
    assert reply_text(await chat.send("can you cancel it", confidence=0.3)) == NOT_HEARD

    second = await chat.send("cancel it now", confidence=0.25)
    handed = transfer(second)
    assert handed is not None and second.intent == "handover.unclear"
    assert "could not be understood" in handed.brief.reason
    assert "passing you to a member of" in reply_text(second)
    assert len(llm.requests) == 1  # only the clear message was sent to the model


async def test_text_channels_and_keypad_input_are_never_unsure(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    llm.add(text("Sure."), text("Got it."))
    chat = Chat(make_brain(min_confidence=0.4), ledger, customer(1))
    assert reply_text(await chat.send("hello there")) == "Sure."  # no confidence: typed text
    phone = Chat(make_brain(min_confidence=0.4), ledger, customer(1), ChannelKind.PHONE)
    assert reply_text(await phone.send("Keyed in 1001", confidence=1.0)) == "Got it."
