"""A refund above the limit waits in the real store until a rep decides it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.demo_backend import DemoBackend
from agent.llm.approvals import decide_approval, pending_approvals
from gateway.errors import NotFoundError
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.protocols import Decision, TurnContext, TurnRecord
from gateway.store.sqlite import SqliteStore
from tests.agent.llm.conftest import MakeBrain
from tests.support.fake_openai import FakeOpenAI, text, tool_calls

Respond = Callable[[TurnContext], Awaitable[Decision]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "gw.sqlite3")
    yield s
    await s.close()


async def turn(store: SqliteStore, brain_respond: Respond, words: str) -> None:
    """One customer turn through the real store, as the dispatcher records it."""
    ingested = await store.ingest(
        InboundMessage(
            channel=ChannelKind.WEBCHAT,
            identity=_jane(),
            text=words,
            account_ref="C-1001",
        )
    )
    history = tuple(await store.history(ingested.customer.id, limit=20))
    context = TurnContext(
        customer=ingested.customer,
        conversation=ingested.conversation,
        message=ingested.message,
        history=history,
    )
    decision = await brain_respond(context)
    await store.record_turn(
        TurnRecord(
            conversation_id=ingested.conversation.id,
            expected_version=ingested.conversation.version,
            handled_message_id=ingested.message.id,
            events=decision.events,
            agent_state=decision.agent_state,
        )
    )


async def test_rep_approves_a_refund_waiting_for_approval(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore, backend: DemoBackend
) -> None:
    llm.add(
        tool_calls(("refund_order", {"order_id": "1001", "reason": "arrived broken"})),
        text("I can help with that."),
    )
    brain = make_brain(refund_limit_cents=10000)
    await turn(store, brain.respond, "order 1001 arrived broken, refund please")
    await turn(store, brain.respond, "yes")
    customer = await store.find_customer(_jane())
    assert customer is not None
    messages = await store.history(customer.id)
    conversation_id = messages[-1].conversation_id
    waiting = await pending_approvals(store, conversation_id)
    assert [(w.tool, w.amount_cents, w.account) for w in waiting] == [
        ("refund_order", 12999, "C-1001")
    ]
    assert not [c for c in (await backend.billing_summary("C-1001")).recent if c.kind == "refund"]

    stored = await decide_approval(
        store, backend, conversation_id, waiting[0].approval_id, approve=True, rep="rep-7"
    )
    assert stored.messages[0].author is AuthorKind.REP
    assert "refund of $129.99 for order 1001 was approved" in stored.messages[0].text
    refunds = [c for c in (await backend.billing_summary("C-1001")).recent if c.kind == "refund"]
    assert [(c.order_id, c.amount_cents) for c in refunds] == [("1001", 12999)]
    assert await pending_approvals(store, conversation_id) == []
    kinds = [e.kind for e in await store.events(conversation_id)]
    assert "approval.decided" in kinds and "tool.refund_order" in kinds
    with pytest.raises(NotFoundError):  # a decision is final
        await decide_approval(
            store, backend, conversation_id, waiting[0].approval_id, approve=True, rep="rep-8"
        )


def _jane() -> Identity:
    return Identity(kind=IdentityKind.WEBCHAT, value="jane", verified=Verification.HMAC)
