"""The customer's tier from the business backend raises their priority (real agent)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from channels.webchat import sign_user_id
from gateway.app import create_app
from gateway.settings import load_settings
from tests.channels.chat import Chat
from tests.gateway.routing.desk import Desk, HandoverBrain, eventually

SECRET = "a shared secret for the test site"


async def test_a_gold_customer_handed_over_by_the_agent_gets_tier_priority(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    settings = load_settings(data_dir=tmp_path, webchat_identity_secret=SECRET)
    client = await aiohttp_client(create_app(settings))  # the embedded agent and backend
    desk = Desk(client, HandoverBrain())
    chat = await Chat.open(client)
    user = {"id": "C-1001", "name": "Jane Doe",  # gold in the demo data
            "signature": sign_user_id(SECRET.encode(), "C-1001")}  # fmt: skip
    await chat.send({"type": "hello", "user": user})
    await chat.expect("welcome")
    await chat.send(
        {"type": "message", "text": "I want to talk to a real person", "client_id": "a"}
    )

    async def entered() -> list[dict[str, Any]]:
        router = desk.service.router
        for entry in router.waiting.values():
            events = await desk.store.events(entry.conversation_id)
            return [e.data for e in events if e.kind == "queue.entered"]
        return []

    [data] = await eventually(entered)
    assert data["tier"] == "gold"
    [entry] = desk.service.router.waiting.values()
    assert entry.priority >= 20 + 5  # gold (20) on top of any sentiment (5 or more)
