"""The dispatcher's streaming seam (gateway/streaming.py) with the real LLM brain and
store: a channel with a live view gets each sentence before the turn is stored, then
the stored reply instead of a `publish`; other channels keep the stored reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import (
    ChannelKind,
    Conversation,
    Customer,
    DeliveryStatus,
    Direction,
    Message,
)
from gateway.protocols import Decision, TurnContext
from gateway.store.sqlite import SqliteStore
from gateway.turn_record import FALLBACK_TEXT
from tests.agent.llm.conftest import MakeBrain
from tests.agent.llm.test_dispatch_llm import Recorder, inbound
from tests.support.fake_openai import FakeOpenAI, text


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "gw.sqlite3")
    yield s
    await s.close()


class LiveLog:
    """A `LiveReply` that writes what it is given to its channel's log."""

    def __init__(self, log: list[tuple[str, object]], heard: asyncio.Event) -> None:
        self.log = log
        self.heard = heard

    def sentence(self, text: str) -> None:
        self.log.append(("sentence", text))
        self.heard.set()

    def finish(self, message: Message | None) -> None:
        self.log.append(("finish", message))


class LiveChannel(Recorder):
    """A channel with a live view (as the phone has), logging everything in order."""

    def __init__(self, kind: ChannelKind, *, live: bool = True) -> None:
        super().__init__(kind)
        self.live = live
        self.log: list[tuple[str, object]] = []
        self.heard = asyncio.Event()  # a sentence arrived

    def open_live(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> LiveLog | None:
        return LiveLog(self.log, self.heard) if self.live else None

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        await super().publish(customer, conversation, message)
        if message.direction is Direction.OUTBOUND:
            self.log.append(("publish", message))


def logged(channel: LiveChannel) -> list[tuple[str, object]]:
    """The channel's log, a stored message as (id, text): the log keeps the message as
    it was handed over (`queued`); the store has it as the outbox marked it since."""
    return [(k, m if isinstance(m, str) else (m.id, m.text)) for k, m in channel.log]


async def test_sentences_reach_the_live_view_before_the_turn_is_stored(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore
) -> None:
    sms = LiveChannel(ChannelKind.SMS)
    dispatcher = Dispatcher(store, make_brain(), {ChannelKind.SMS: sms}, Metrics())
    dispatcher.live_replies[ChannelKind.SMS] = sms.open_live
    first, rest = "Order 1001 shipped with UPS. ", "It should arrive in two days."
    gate = asyncio.Event()
    llm.add(text(first + rest, chunk_chars=4, gate=gate, gate_after=len(first) + 4))
    ingested = await dispatcher.handle(inbound(ChannelKind.SMS, "+15551234567", "where is 1001"))
    async with asyncio.timeout(10):
        await sms.heard.wait()
    assert sms.log == [("sentence", "Order 1001 shipped with UPS.")]
    stored = await store.conversation_messages(ingested.conversation.id)
    assert [m.direction for m in stored] == [Direction.INBOUND]  # not stored yet
    gate.set()
    await dispatcher.drain()
    [answer] = [m for m in await store.conversation_messages(ingested.conversation.id)
                if m.direction is Direction.OUTBOUND]  # fmt: skip
    assert answer.text == first + rest
    # The live view got the stored reply, and nothing was published (said) twice: the
    # outbox marks what the live view finished as sent, so it is never sent again.
    assert logged(sms) == [
        ("sentence", "Order 1001 shipped with UPS."),
        ("sentence", "It should arrive in two days."),
        ("finish", (answer.id, answer.text)),
    ]
    assert answer.status is DeliveryStatus.SENT
    assert llm.requests[0]["stream"] is True


async def test_without_a_live_view_the_stored_reply_is_published(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore
) -> None:
    chat = LiveChannel(ChannelKind.WEBCHAT, live=False)  # no live session for this customer
    dispatcher = Dispatcher(store, make_brain(), {ChannelKind.WEBCHAT: chat}, Metrics())
    dispatcher.live_replies[ChannelKind.WEBCHAT] = chat.open_live
    llm.add(text("Order 1001 shipped. It arrives Friday."))
    await dispatcher.handle(inbound(ChannelKind.WEBCHAT, "jane", "where is 1001"))
    await dispatcher.drain()
    assert [(kind, getattr(m, "text", None)) for kind, m in chat.log] == [
        ("publish", "Order 1001 shipped. It arrives Friday.")
    ]


class BreaksMidAnswer:
    """A `StreamingBrain` whose stream fails after one sentence (a bug, not an LLM error
    the brain handles itself): the dispatcher's own fallback must cover it."""

    history_window = 0

    async def respond(self, turn: TurnContext) -> Decision:
        raise AssertionError("a live view is open: the stream is used")

    async def respond_stream(self, turn: TurnContext) -> AsyncIterator[str | Decision]:
        yield "Let me look into that."
        raise RuntimeError("the agent crashed mid-answer")


async def test_a_crash_mid_answer_keeps_what_was_said_in_front_of_the_fallback(
    store: SqliteStore,
) -> None:
    sms = LiveChannel(ChannelKind.SMS)
    dispatcher = Dispatcher(store, BreaksMidAnswer(), {ChannelKind.SMS: sms}, Metrics())
    dispatcher.live_replies[ChannelKind.SMS] = sms.open_live
    ingested = await dispatcher.handle(inbound(ChannelKind.SMS, "+15551234567", "help"))
    await dispatcher.drain()
    [answer] = [m for m in await store.conversation_messages(ingested.conversation.id)
                if m.direction is Direction.OUTBOUND]  # fmt: skip
    assert answer.text == f"Let me look into that. {FALLBACK_TEXT}"
    assert logged(sms) == [
        ("sentence", "Let me look into that."), ("finish", (answer.id, answer.text))
    ]
    conversation = await store.get_conversation(ingested.conversation.id)
    assert conversation.queue == "general"  # handed over, as for any agent failure
