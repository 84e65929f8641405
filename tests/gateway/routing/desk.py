"""A support desk under test: the real app (real SQLite, real routing), a scripted
brain that hands over on request, and helpers to add reps and customers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import DISPATCHER, STORE, create_app
from gateway.models import (
    ChannelKind,
    Conversation,
    HandoffBrief,
    Identity,
    IdentityKind,
    InboundMessage,
    Reply,
    Sentiment,
    Transfer,
)
from gateway.protocols import Decision, Store, TurnContext
from gateway.routing.approvals import ConsoleApprovals
from gateway.routing.models import Presence, Rep, RepDraft
from gateway.routing.passwords import hash_password
from gateway.routing.service import RoutingService
from gateway.routing.state import ROUTING
from gateway.routing.store import RoutingStore
from gateway.routing.views import ConsoleViews
from gateway.settings import load_settings

T = TypeVar("T")
PASSWORD = "correct horse battery"
_HASH: list[str] = []


def password_hash() -> str:
    # scrypt is slow on purpose: hash the test password once per run.
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


class HandoverBrain:
    """Replies `echo: <text>`; `human [queue] [sentiment]` hands over with a brief."""

    history_window = 0

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def respond(self, turn: TurnContext) -> Decision:
        text = turn.message.text
        self.seen.append(text)
        words = text.split()
        if words and words[0] == "human":
            queue = words[1] if len(words) > 1 else "general"
            sentiment = Sentiment(words[2]) if len(words) > 2 else Sentiment.NEUTRAL
            brief = HandoffBrief(
                need=f"help with {queue}", next_step="take over", confidence=0.8,
                sentiment=sentiment, queue=queue,
            )  # fmt: skip
            return Decision(
                actions=(Reply(text="connecting you"), Transfer(queue=queue, brief=brief)),
                intent="handover",
                confidence=0.8,
            )
        return Decision(actions=(Reply(text=f"echo: {text}"),), intent="echo", confidence=1.0)


async def eventually(check: Callable[[], Awaitable[T | None]], within_s: float = 10.0) -> T:
    """Poll `check` until it returns something truthy (no timed assertion: a deadline
    only turns a hang into a failure)."""
    async with asyncio.timeout(within_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.01)


class Desk:
    def __init__(self, client: TestClient[Any, Any], brain: HandoverBrain) -> None:
        self.client = client
        self.brain = brain

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[no-any-return]

    @property
    def service(self) -> RoutingService:
        service = self.app[ROUTING].service
        assert service is not None, "routing is not started"
        return service

    @property
    def routing(self) -> RoutingStore:
        return self.app[ROUTING].ready()[2]

    @property
    def views(self) -> ConsoleViews:
        return self.app[ROUTING].console()[0]

    @property
    def approvals(self) -> ConsoleApprovals:
        return self.app[ROUTING].console()[1]

    @property
    def store(self) -> Store:
        return self.app[STORE]

    async def rep(
        self, name: str, skills: str = "general", *, available: bool = True, **kw: Any
    ) -> Rep:
        draft = RepDraft(username=name, display_name=name.title(), password_hash=password_hash(),
                         skills=tuple(skills.split(",")), **kw)  # fmt: skip
        rep = await self.service.add_rep(draft)
        if available:
            rep = await self.service.set_presence(rep.id, Presence.AVAILABLE)
        return rep

    async def say(self, visitor: str, text: str, channel: ChannelKind = ChannelKind.WEBCHAT,
                  identity: Identity | None = None) -> Conversation:  # fmt: skip
        """A customer message through the dispatcher; returns once it is answered."""
        ident = identity or Identity(kind=IdentityKind.WEBCHAT, value=visitor)
        ingested = await self.app[DISPATCHER].handle(
            InboundMessage(channel=channel, identity=ident, text=text)
        )
        await self.app[DISPATCHER].drain()
        return await self.store.get_conversation(ingested.conversation.id)

    async def handover(self, visitor: str, queue: str = "general",
                       sentiment: str = "neutral") -> Conversation:  # fmt: skip
        return await self.say(visitor, f"human {queue} {sentiment}")

    def offers_for(self, rep_id: int) -> list[tuple[int, int]]:
        """(offer id, conversation id) of the rep's pending offers."""
        router = self.service.router
        return [
            (o.id, router.waiting[o.entry_id].conversation_id)
            for o in router.offers.values()
            if o.rep_id == rep_id
        ]

    async def offer_for(self, rep_id: int) -> tuple[int, int]:
        async def check() -> tuple[int, int] | None:
            offers = self.offers_for(rep_id)
            return offers[0] if offers else None

        return await eventually(check)

    async def texts(self, conversation_id: int) -> list[str]:
        return [m.text for m in await self.store.conversation_messages(conversation_id)]

    async def login(self, name: str, password: str = PASSWORD) -> tuple[int, str]:
        """(status, csrf token) of a console login; the client keeps the cookie."""
        resp = await self.client.post(
            "/console/login", data=json.dumps({"username": name, "password": password})
        )
        body = await resp.json()
        return resp.status, body.get("csrf", "")

    async def post(self, path: str, body: dict[str, Any] | None = None,
                   csrf: str | None = None) -> aiohttp.ClientResponse:  # fmt: skip
        headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
        return await self.client.post(path, data=json.dumps(body or {}), headers=headers)


def desk_settings(data_dir: Path, **extra: Any) -> Any:
    return load_settings(data_dir=data_dir, **{"offer_timeout_s": 30.0, **extra})


def build(data_dir: Path, brain: HandoverBrain, **extra: Any) -> web.Application:
    return create_app(desk_settings(data_dir, **extra), brain=brain)
