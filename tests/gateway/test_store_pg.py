"""The PostgreSQL store under several writers: two stores (two nodes) on one database
storing messages and turns of the same customers at once keep each customer's
numbering gap-free, every turn's messages and events, and answer a turn's
starting read (`fresh_turn`) as the store is now."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from gateway.errors import ConflictError
from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
from gateway.protocols import EventDraft, OutboundDraft, TurnRecord
from gateway.store.postgres import PostgresStore


def chat(visitor: str, text: str, ext: str) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.WEBCHAT,
        identity=Identity(kind=IdentityKind.WEBCHAT, value=visitor,
                          verified=Verification.SIGNED_TOKEN),
        text=text,
        external_id=ext,
    )  # fmt: skip


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await PostgresStore.open(pg_url, pool_max=5)
    b = await PostgresStore.open(pg_url, pool_max=5)
    yield a, b
    await a.close()
    await b.close()


async def test_two_nodes_writing_one_customer_at_once_keep_it_gap_free(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    first = await a.ingest(chat("v1", "hello", "x0"))
    conv_id = first.conversation.id
    ids = itertools.count(1)

    async def message(store: PostgresStore) -> None:
        n = next(ids)
        got = await store.ingest(chat("v1", f"m{n}", f"x{n}"))
        assert got.conversation.id == conv_id and not got.duplicate

    async def turn(store: PostgresStore, n: int) -> None:
        while True:  # as the dispatcher does: reload on a version conflict
            version = (await store.get_conversation(conv_id)).version
            try:
                await store.record_turn(TurnRecord(
                    conversation_id=conv_id, expected_version=version,
                    outbound=(OutboundDraft(text=f"r{n}.1", channel=ChannelKind.WEBCHAT),
                              OutboundDraft(text=f"r{n}.2", channel=ChannelKind.WEBCHAT)),
                    events=(EventDraft(kind="agent.turn", data={"n": n}),),
                ))  # fmt: skip
                return
            except ConflictError:
                continue

    work = [message(a if i % 2 else b) for i in range(60)]
    work += [turn(a if i % 2 else b, i) for i in range(20)]
    await asyncio.gather(*work)
    # A retry of a message stored by the other node is a duplicate there too.
    again = await b.ingest(chat("v1", "m1", "x1"))
    assert again.duplicate and again.message.text == "m1"

    messages = await a.conversation_messages(conv_id)
    assert [m.seq for m in messages] == list(range(1, 1 + 1 + 60 + 40))
    assert sorted(m.text for m in messages if m.text.startswith("r")) == sorted(
        f"r{n}.{k}" for n in range(20) for k in (1, 2)
    )
    for n in range(20):  # a turn's two messages are consecutive
        [one] = [m.seq for m in messages if m.text == f"r{n}.1"]
        [two] = [m.seq for m in messages if m.text == f"r{n}.2"]
        assert two == one + 1
    turns = [e for e in await a.events(conv_id) if e.kind == "agent.turn"]
    assert sorted(e.data["n"] for e in turns) == list(range(20))
    assert (await a.get_conversation(conv_id)).version == 20


async def test_a_turns_starting_read_sees_the_store_as_it_is(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    got = await a.ingest(chat("v2", "hello", "y1"))
    fresh = await b.fresh_turn(got.message, 10)
    assert fresh is not None and fresh.history is not None
    assert [m.text for m in fresh.history] == ["hello"]
    assert fresh.customer.identities[0].key == "webchat:v2"
    assert fresh.conversation.version == got.conversation.version
    assert (await b.fresh_turn(got.message, 0)) is not None
    assert (await b.fresh_turn(got.message, 0)).history is None  # type: ignore[union-attr]
    # Answered on the other node: nothing to do here.
    await a.record_turn(TurnRecord(
        conversation_id=got.conversation.id, expected_version=got.conversation.version,
        handled_message_id=got.message.id,
        outbound=(OutboundDraft(text="hi!", channel=ChannelKind.WEBCHAT),),
    ))  # fmt: skip
    assert await b.fresh_turn(got.message, 10) is None
