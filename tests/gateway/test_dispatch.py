"""The dispatcher: one path for every channel, ordered per conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    HandoffBrief,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Reply,
    Transfer,
    Typing,
)
from gateway.protocols import Decision, EventDraft, TurnContext
from gateway.store.sqlite import SqliteStore


class RecordingChannel:
    """A channel seam that records what the gateway delivers."""

    kind = ChannelKind.WEBCHAT

    def __init__(self) -> None:
        self.published: list[Message] = []
        self.signals: list[Action] = []

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        self.published.append(message)

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        self.signals.append(action)


class ScriptedBrain:
    """Counts turns per conversation; waits `delay` on texts starting with 'slow'."""

    history_window = 5

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, int]] = []
        self.fail_on: str | None = None
        self.hang_on: str | None = None

    async def respond(self, turn: TurnContext) -> Decision:
        text = turn.message.text
        if text == self.fail_on:
            raise RuntimeError("boom")
        if text == self.hang_on:
            await asyncio.sleep(60)
        if text.startswith("slow"):
            await asyncio.sleep(0.2)
        assert turn.history[-1].id == turn.message.id  # the gateway read the history in
        count = int(turn.conversation.agent_state.get("turns", 0)) + 1
        self.seen.append((turn.conversation.id, text, count))
        actions: tuple[Reply | Transfer, ...] = (Reply(text=f"#{count}: {text}"),)
        if text == "human":
            brief = HandoffBrief(need="a person", next_step="talk", confidence=0.9)
            actions = (Reply(text="connecting you"), Transfer(queue="general", brief=brief))
        return Decision(actions=actions, agent_state={"turns": count}, intent="t", confidence=0.9)


def msg(visitor: str, text: str, ext: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.WEBCHAT,
        identity=Identity(kind=IdentityKind.WEBCHAT, value=visitor),
        text=text,
        external_id=ext,
    )


@pytest.fixture
async def parts(
    tmp_path: Path,
) -> AsyncIterator[tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel]]:
    store = SqliteStore.open(tmp_path / "gw.sqlite3")
    brain = ScriptedBrain()
    channel = RecordingChannel()
    dispatcher = Dispatcher(
        store, brain, {ChannelKind.WEBCHAT: channel}, Metrics(), agent_timeout_s=0.5
    )
    yield dispatcher, store, brain, channel
    await dispatcher.drain()
    await store.close()


async def test_turns_of_one_conversation_run_in_order_with_fresh_state(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, store, brain, channel = parts
    for text in ("slow one", "two", "three"):
        await dispatcher.handle(msg("v1", text))
    await dispatcher.drain()
    assert [(t, n) for _, t, n in brain.seen] == [("slow one", 1), ("two", 2), ("three", 3)]
    replies = [m.text for m in channel.published if m.direction is Direction.OUTBOUND]
    assert replies == ["#1: slow one", "#2: two", "#3: three"]
    customer_id = channel.published[0].customer_id
    seqs = [m.seq for m in await store.history(customer_id)]
    assert seqs == sorted(seqs) and len(seqs) == 6


async def test_conversations_run_concurrently(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, _, brain, _ = parts
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(dispatcher.handle(msg(f"v{i}", "slow")) for i in range(10)))
    await dispatcher.drain()
    assert len(brain.seen) == 10
    assert loop.time() - start < 1.5  # ten 0.2 s turns did not run one after another


async def test_retry_is_not_answered_twice(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, _, brain, _ = parts
    first = await dispatcher.handle(msg("v1", "slow hello", "ext-1"))
    again = await dispatcher.handle(msg("v1", "slow hello", "ext-1"))  # while in flight
    await dispatcher.drain()
    later = await dispatcher.handle(msg("v1", "slow hello", "ext-1"))  # after answered
    await dispatcher.drain()
    assert again.duplicate and later.duplicate and later.handled
    assert again.message.id == first.message.id
    assert len(brain.seen) == 1


async def test_agent_failure_and_timeout_hand_over_with_an_apology(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, store, brain, channel = parts
    brain.fail_on = "explode"
    got = await dispatcher.handle(msg("v1", "explode"))
    await dispatcher.drain()
    conv = await store.get_conversation(got.conversation.id)
    assert conv.state is ConversationState.QUEUED and conv.brief is not None
    assert any("something went wrong" in m.text for m in channel.published)
    assert any(isinstance(s, Transfer) for s in channel.signals)

    brain.hang_on = "hang"
    got2 = await dispatcher.handle(msg("v2", "hang"))
    await dispatcher.drain()
    conv2 = await store.get_conversation(got2.conversation.id)
    assert conv2.state is ConversationState.QUEUED
    kinds = [e.kind for e in await store.events(conv2.id)]
    assert "agent.fallback" in kinds and "handover" in kinds
    assert Typing(active=True) in channel.signals and Typing(active=False) in channel.signals


async def test_agent_is_silent_once_handed_over(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, store, brain, _ = parts
    got = await dispatcher.handle(msg("v1", "human"))
    await dispatcher.drain()
    await dispatcher.handle(msg("v1", "are you there?"))
    await dispatcher.drain()
    assert [t for _, t, _ in brain.seen] == ["human"]
    conv = await store.get_conversation(got.conversation.id)
    assert conv.state is ConversationState.QUEUED and conv.queue == "general"
    assert await store.unhandled_messages() == []  # stored and marked, for the rep to read


async def test_unanswered_messages_are_answered_after_a_restart(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "gw.sqlite3")
    await store.ingest(msg("v1", "stored before the crash", "x1"))  # never answered
    await store.close()

    store = SqliteStore.open(tmp_path / "gw.sqlite3")
    brain, channel = ScriptedBrain(), RecordingChannel()
    dispatcher = Dispatcher(store, brain, {ChannelKind.WEBCHAT: channel}, Metrics())
    try:
        assert await dispatcher.recover() == 1
        await dispatcher.drain()
        assert [t for _, t, _ in brain.seen] == ["stored before the crash"]
        assert await store.unhandled_messages() == []
        assert await dispatcher.recover() == 0
    finally:
        await store.close()


async def test_a_channel_responder_answers_instead_of_the_agent(
    parts: tuple[Dispatcher, SqliteStore, ScriptedBrain, RecordingChannel],
) -> None:
    dispatcher, store, brain, channel = parts

    async def keywords(customer: Customer, conv: Conversation, m: Message) -> Decision | None:
        if m.text != "KEYWORD":
            return None
        return Decision(actions=(Reply(text="canned"),), intent="kw", confidence=1.0,
                        events=(EventDraft(kind="kw.seen", data={"id": m.id}),))  # fmt: skip

    dispatcher.responders[ChannelKind.WEBCHAT] = keywords
    first = await dispatcher.handle(msg("v1", "hello"))
    await dispatcher.handle(msg("v1", "KEYWORD"))
    await dispatcher.drain()
    await dispatcher.handle(msg("v1", "human"))  # handed over: the agent goes silent...
    await dispatcher.handle(msg("v1", "KEYWORD"))  # ...the channel still answers
    await dispatcher.drain()
    assert [t for _, t, _ in brain.seen] == ["hello", "human"]
    replies = [m.text for m in channel.published if m.direction is Direction.OUTBOUND]
    assert replies == ["#1: hello", "canned", "connecting you", "canned"]
    conv = await store.get_conversation(first.conversation.id)
    assert conv.agent_state == {"turns": 2}  # the canned turns left the agent's state alone
    assert [e.kind for e in await store.events(conv.id)].count("kw.seen") == 2
    assert await store.unhandled_messages() == []
