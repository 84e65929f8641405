"""The LLM brain behind the real dispatcher and store: memory across turns and
channels comes from the gateway's history, and what is stored is what was said."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Verification,
)
from gateway.store.sqlite import SqliteStore
from tests.agent.llm.conftest import MakeBrain
from tests.support.fake_openai import FakeOpenAI, status, text, tool_calls


class Recorder:
    """A channel seam that records what the gateway delivers."""

    def __init__(self, kind: ChannelKind) -> None:
        self.kind = kind
        self.published: list[Message] = []

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        self.published.append(message)

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "gw.sqlite3")
    yield s
    await s.close()


def inbound(channel: ChannelKind, value: str, words: str) -> InboundMessage:
    kind = IdentityKind.PHONE if channel is ChannelKind.SMS else IdentityKind.WEBCHAT
    return InboundMessage(
        channel=channel,
        identity=Identity(kind=kind, value=value, verified=Verification.HMAC),
        text=words,
        account_ref="C-1001",
    )


async def test_history_from_every_channel_reaches_the_model(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore
) -> None:
    chat, sms = Recorder(ChannelKind.WEBCHAT), Recorder(ChannelKind.SMS)
    dispatcher = Dispatcher(
        store, make_brain(), {ChannelKind.WEBCHAT: chat, ChannelKind.SMS: sms}, Metrics()
    )
    llm.add(
        tool_calls(("order_lookup", {"order_id": "1001"})),
        text("Order 1001 shipped with UPS. It should arrive in two days."),
        text("Yes: the tracking number is 1Z999AA10123456784."),
    )
    await dispatcher.handle(inbound(ChannelKind.WEBCHAT, "jane-web", "where is order 1001?"))
    await dispatcher.drain()
    await dispatcher.handle(inbound(ChannelKind.SMS, "+15551234567", "can u text me tracking"))
    await dispatcher.drain()
    assert [m.text for m in chat.published if m.direction is Direction.OUTBOUND] == [
        "Order 1001 shipped with UPS. It should arrive in two days."
    ]
    assert [m.text for m in sms.published if m.direction is Direction.OUTBOUND] == [
        "Yes: the tracking number is 1Z999AA10123456784."
    ]
    last = llm.requests[-1]["messages"]
    history = next(
        m["content"]
        for m in last
        if m["role"] == "user" and "<conversation_history>" in m["content"]
    )
    assert "webchat] customer: where is order 1001?" in history
    assert "webchat] assistant: Order 1001 shipped with UPS." in history
    assert "can u text me tracking" in last[-1]["content"]  # the current one, not history


async def test_a_failing_model_still_gets_the_customer_an_answer(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore
) -> None:
    chat = Recorder(ChannelKind.WEBCHAT)
    dispatcher = Dispatcher(store, make_brain(), {ChannelKind.WEBCHAT: chat}, Metrics())
    llm.add(status(502))
    ingested = await dispatcher.handle(inbound(ChannelKind.WEBCHAT, "jane", "where is order 1001"))
    await dispatcher.drain()
    replies = [m.text for m in chat.published if m.direction is Direction.OUTBOUND]
    assert len(replies) == 1 and "1Z999AA10123456784" in replies[0]
    kinds = [e.kind for e in await store.events(ingested.conversation.id)]
    assert "llm.fallback" in kinds and "agent.fallback" not in kinds
