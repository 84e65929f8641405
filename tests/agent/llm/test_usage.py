"""An LLM turn's tokens, as the server counts them, are stored with the turn (the
cost report's `usage` rows): every completion of the turn, tool rounds included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import ChannelKind
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_desk import SqliteDeskStore
from tests.agent.llm.conftest import MakeBrain
from tests.agent.llm.test_dispatch_llm import Recorder, inbound
from tests.support.fake_openai import FakeOpenAI, text, tool_calls


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "gw.sqlite3")
    yield s
    await s.close()


async def test_the_tokens_of_every_completion_of_a_turn_are_stored_with_it(
    llm: FakeOpenAI, make_brain: MakeBrain, store: SqliteStore
) -> None:
    chat = Recorder(ChannelKind.WEBCHAT)
    dispatcher = Dispatcher(store, make_brain(), {ChannelKind.WEBCHAT: chat}, Metrics())
    llm.add(
        tool_calls(("order_lookup", {"order_id": "1001"}), tokens=(412, 17)),
        text("Order 1001 shipped with UPS. It should arrive in two days.", tokens=(530, 21)),
        text("You're welcome!", tokens=(601, 5)),
    )
    first = await dispatcher.handle(inbound(ChannelKind.WEBCHAT, "jane", "where is order 1001?"))
    await dispatcher.drain()
    await dispatcher.handle(inbound(ChannelKind.WEBCHAT, "jane", "thanks a lot"))
    await dispatcher.drain()
    assert all(r["stream_options"] == {"include_usage": True} for r in llm.requests)
    cid = first.conversation.id
    used = (await SqliteDeskStore(store).usage(cid, cid)).totals
    assert (used.llm_prompt_tokens, used.llm_completion_tokens) == (412 + 530 + 601, 17 + 21 + 5)
    # Stored as usage rows, not as events of the conversation.
    assert not [e for e in await store.events(cid) if e.kind == "usage"]
