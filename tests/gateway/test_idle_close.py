"""The `assumed` resolution on SQLite and PostgreSQL: a bot conversation whose agent's
answer stands and whose customer went quiet is closed with `conversation.resolved`
{"how": "assumed"} exactly once (across sweeps, restarts and nodes), never while a
customer message waits, never before it is due; a later message starts anew."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.policy import EmbeddedPolicy
from agent.understand import Matcher
from gateway.dispatch import Dispatcher
from gateway.idle_close import idle_close_ctx, sweep_once
from gateway.keys import SETTINGS, STORE
from gateway.metrics import Metrics
from gateway.models import (
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.protocols import OutboundDraft, TurnRecord
from gateway.settings import Settings
from tests.agent.harness import MemoryLedger
from tests.support.stores import AnyStore, open_store

QUIET_S = 0.05  # the setting, short: the tests wait a little longer than it


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    s = await open_store(store_url)
    yield s
    await s.close()


def _msg(visitor: str, text: str) -> InboundMessage:
    ident = Identity(kind=IdentityKind.WEBCHAT, value=visitor, verified=Verification.SIGNED_TOKEN)
    return InboundMessage(channel=ChannelKind.WEBCHAT, identity=ident, text=text)


async def _answered(
    store: AnyStore, visitor: str, agent_state: dict[str, Any] | None = None
) -> Conversation:
    """A customer's question and the agent's stored answer (as the dispatcher stores it)."""
    ingested = await store.ingest(_msg(visitor, "where is order 1001?"))
    stored = await store.record_turn(
        TurnRecord(
            conversation_id=ingested.conversation.id,
            expected_version=ingested.conversation.version,
            handled_message_id=ingested.message.id,
            outbound=(OutboundDraft(text="It was delivered.", channel=ChannelKind.WEBCHAT),),
            agent_state={"answered": "order_status"} if agent_state is None else agent_state,
        )
    )
    return stored.conversation


async def _assumed(store: AnyStore, conversation_id: int) -> list[dict[str, Any]]:
    events = await store.events(conversation_id)
    return [e.data for e in events if e.kind == "conversation.resolved"]


async def test_a_quiet_answered_conversation_is_closed_once(store: AnyStore) -> None:
    conv = await _answered(store, "v1")
    assert await sweep_once(store, 3600) == 0  # not due yet
    assert (await store.get_conversation(conv.id)).state is ConversationState.BOT
    await asyncio.sleep(QUIET_S * 2)
    assert await sweep_once(store, QUIET_S) == 1
    closed = await store.get_conversation(conv.id)
    assert closed.state is ConversationState.CLOSED
    assert "answered" not in closed.agent_state
    assert await _assumed(store, conv.id) == [{"how": "assumed", "intent": "order_status"}]
    assert await sweep_once(store, QUIET_S) == 0  # exactly once
    assert len(await _assumed(store, conv.id)) == 1


async def test_the_close_survives_a_restart_and_is_not_repeated(store_url: str) -> None:
    first = await open_store(store_url)
    conv = await _answered(first, "v2")
    await first.close()  # the node stops before the conversation is due
    await asyncio.sleep(QUIET_S * 2)
    second = await open_store(store_url)
    try:
        assert await sweep_once(second, QUIET_S) == 1
        assert await sweep_once(second, QUIET_S) == 0
    finally:
        await second.close()
    third = await open_store(store_url)
    try:
        assert await sweep_once(third, QUIET_S) == 0
        assert len(await _assumed(third, conv.id)) == 1
    finally:
        await third.close()


async def test_several_nodes_sweeping_at_once_close_it_once(
    store: AnyStore, store_url: str
) -> None:
    conversations = [await _answered(store, f"n{i}") for i in range(5)]
    await asyncio.sleep(QUIET_S * 2)
    # Another node: a second store on the same database (PostgreSQL), or this one again.
    other = await open_store(store_url) if store_url.startswith("postgres") else store
    try:
        counts = await asyncio.gather(*(sweep_once(s, QUIET_S) for s in (store, other, store)))
    finally:
        if other is not store:
            await other.close()
    assert sum(counts) == 5
    for conv in conversations:
        assert len(await _assumed(store, conv.id)) == 1


async def test_a_waiting_customer_message_keeps_it_open(store: AnyStore) -> None:
    conv = await _answered(store, "v3")
    await asyncio.sleep(QUIET_S * 2)
    later = await store.ingest(_msg("v3", "and order 1002?"))  # stored, not answered yet
    assert later.conversation.id == conv.id
    assert await sweep_once(store, QUIET_S) == 0
    assert (await store.get_conversation(conv.id)).state is ConversationState.BOT
    assert await _assumed(store, conv.id) == []


async def test_no_standing_answer_no_close(store: AnyStore) -> None:
    asked = await _answered(store, "v4", agent_state={"expecting": "order_id"})  # a question back
    await asyncio.sleep(QUIET_S * 2)
    assert await sweep_once(store, QUIET_S) == 0
    assert (await store.get_conversation(asked.id)).state is ConversationState.BOT


async def test_a_later_message_starts_a_new_conversation(store: AnyStore) -> None:
    conv = await _answered(store, "v5")
    await asyncio.sleep(QUIET_S * 2)
    assert await sweep_once(store, QUIET_S) == 1
    again = await store.ingest(_msg("v5", "hi again, where is order 1002?"))
    assert again.conversation.id != conv.id
    assert again.conversation.state is ConversationState.BOT
    assert again.conversation.customer_id == conv.customer_id


async def test_the_app_sweeps_with_the_setting(store: AnyStore) -> None:
    conv = await _answered(store, "v6")
    app = web.Application()
    app[SETTINGS] = Settings(assumed_resolved_after_s=QUIET_S)
    app[STORE] = store
    ctx = idle_close_ctx(app)
    await anext(ctx)
    try:
        for _ in range(100):
            if (await store.get_conversation(conv.id)).state is ConversationState.CLOSED:
                break
            await asyncio.sleep(QUIET_S)
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(ctx)
    assert len(await _assumed(store, conv.id)) == 1


def test_the_setting_is_validated() -> None:
    assert Settings().assumed_resolved_after_s == 1800
    with pytest.raises(ValueError, match="assumed_resolved_after_s"):
        Settings(assumed_resolved_after_s=-1)


class _Channel:
    """The web chat seam: records nothing, sends nowhere."""

    kind = ChannelKind.WEBCHAT

    async def publish(self, customer: Customer, conversation: Conversation, message: Any) -> None:
        return None

    async def signal(self, customer: Customer, conversation: Conversation, action: Any) -> None:
        return None


async def test_the_embedded_agents_answer_is_assumed_resolved_a_thanks_is_not(
    store: AnyStore, tmp_path: Path
) -> None:
    """End to end: the real policy answers through the dispatcher; a conversation the
    customer confirmed is counted once (confirmed), the quiet one once (assumed)."""
    backend = DemoBackend(tmp_path / "backend.sqlite3")
    policy = EmbeddedPolicy(backend, MemoryLedger(), KnowledgeBase(), matcher=Matcher.load())
    dispatcher = Dispatcher(store, policy, {ChannelKind.WEBCHAT: _Channel()}, Metrics())
    try:
        quiet = await dispatcher.handle(_msg("e1", "what is your refund policy?"))
        thanked = await dispatcher.handle(_msg("e2", "what is your refund policy?"))
        await dispatcher.drain()
        await dispatcher.handle(_msg("e2", "great, thanks, that's all"))
        await dispatcher.drain()
    finally:
        await dispatcher.drain()
        await backend.close()
    await asyncio.sleep(QUIET_S * 2)
    assert await sweep_once(store, QUIET_S) == 1
    (answer,) = [e.data["intent"] for e in await store.events(quiet.conversation.id)
                 if e.kind == "agent.turn"]  # fmt: skip
    assert answer in {"refund", "knowledge_base"}  # the policy question was answered
    assert await _assumed(store, quiet.conversation.id) == [{"how": "assumed", "intent": answer}]
    confirmed = await _assumed(store, thanked.conversation.id)
    assert confirmed == [{"how": "confirmed", "intent": answer}]  # never assumed as well
    assert (await store.get_conversation(thanked.conversation.id)).state is ConversationState.BOT
