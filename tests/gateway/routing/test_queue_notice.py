"""The one notice a customer gets on entering a queue, the same on every text
channel, and the ways to continue it offers (the backend's contact on record
for a signed-in customer the gateway holds no phone or email for)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agent.demo_backend import DemoBackend
from gateway.keys import BACKEND, DISPATCHER
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.routing.models import Presence
from tests.gateway.routing.desk import Desk, HandoverBrain, build

NOBODY = "Nobody from our team is free right now"
CUSTOMERS = {
    ChannelKind.WEBCHAT: Identity(kind=IdentityKind.WEBCHAT, value="visitor-1"),
    ChannelKind.SMS: Identity(kind=IdentityKind.PHONE, value="+15557654321"),
    ChannelKind.EMAIL: Identity(kind=IdentityKind.EMAIL, value="sam@example.net"),
}
JANE = Identity(kind=IdentityKind.ACCOUNT, value="C-1001", verified=Verification.HMAC)


async def _system_texts(desk: Desk, conversation_id: int) -> list[str]:
    return [
        m.text
        for m in await desk.store.conversation_messages(conversation_id)
        if m.author is AuthorKind.SYSTEM
    ]


@pytest.mark.parametrize("channel", list(CUSTOMERS))
async def test_a_handover_with_nobody_free_is_one_notice_on_every_text_channel(
    desk: Desk, channel: ChannelKind
) -> None:
    conv = await desk.say("x", "human general", channel=channel, identity=CUSTOMERS[channel])
    notices = await _system_texts(desk, conv.id)
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"{NOBODY}. You keep your place in the queue")
    assert "connected" not in notices[0]


async def test_the_expected_wait_is_told_when_known(desk: Desk) -> None:
    ann = await desk.rep("ann", max_text=1)
    first = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.close(ann.id, first.id, "resolved")  # one handle time: an estimate
    await desk.service.set_presence(ann.id, Presence.AWAY)
    second = await desk.handover("v2")
    (notice,) = await _system_texts(desk, second.id)
    assert notice.startswith(f"{NOBODY}; the expected wait is about 1 minute.")


@pytest.fixture
async def business_desk(
    tmp_path: Path,
    store_url: str,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> AsyncIterator[Desk]:
    """The desk with the demo business backend (Jane Doe is account C-1001, with
    +15551234567 and jane@example.com on record); set before the app starts."""
    brain = HandoverBrain()
    app = build(tmp_path / "data", brain, database_url=store_url,
                secret_key="desk-test-secret-0123456789")  # fmt: skip
    backend = DemoBackend(tmp_path / "business.sqlite3")
    app[BACKEND] = backend
    yield Desk(await aiohttp_client(app), brain)
    await backend.close()


async def _jane_says(desk: Desk, text: str, identity: Identity = JANE) -> int:
    ingested = await desk.app[DISPATCHER].handle(
        InboundMessage(channel=ChannelKind.WEBCHAT, identity=identity, text=text,
                       account_ref="C-1001", display_name="Jane Doe")
    )  # fmt: skip
    await desk.app[DISPATCHER].drain()
    return ingested.conversation.id


async def test_a_signed_in_customer_is_offered_the_contact_on_record(
    business_desk: Desk,
) -> None:
    desk = business_desk
    conv_id = await _jane_says(desk, "human billing")
    (notice,) = await _system_texts(desk, conv_id)
    assert notice.startswith(NOBODY)
    assert (
        "Reply CALLBACK for a call back, SMS to continue by text message or EMAIL to continue"
        " by email." in notice
    )
    assert "on your account: the number ending 4567 and j***@example.com." in notice

    await _jane_says(desk, "Callback!")
    assert (await _system_texts(desk, conv_id))[-1] == (
        "Thanks: we'll call you back on the number ending 4567 as soon as someone is free."
    )
    events = await desk.store.events(conv_id)
    (choice,) = [e.data for e in events if e.kind == "queue.choice"]
    assert choice["choice"] == "callback"
    assert (choice["to"], choice["on_record"]) == ("+15551234567", True)

    await _jane_says(desk, "email")
    assert (await _system_texts(desk, conv_id))[-1] == (
        "Thanks: we'll continue by email at j***@example.com; we'll write to you shortly."
    )
    events = await desk.store.events(conv_id)
    assert [e.data["to"] for e in events if e.kind == "queue.choice"][-1] == "jane@example.com"


async def test_an_account_not_signed_in_is_offered_nothing_from_the_record(
    business_desk: Desk,
) -> None:
    # The same account id, but not signed by the embedding site: its contact on record
    # must not become a way to reach (or impersonate) the account holder.
    claimed = Identity(kind=IdentityKind.ACCOUNT, value="C-1001", verified=Verification.NONE)
    conv_id = await _jane_says(business_desk, "human billing", identity=claimed)
    (notice,) = await _system_texts(business_desk, conv_id)
    assert notice.startswith(NOBODY)
    assert "Reply" not in notice and "4567" not in notice and "jane@" not in notice
    await _jane_says(business_desk, "callback", identity=claimed)
    assert len(await _system_texts(business_desk, conv_id)) == 1  # no confirmation
    events = await business_desk.store.events(conv_id)
    assert not [e for e in events if e.kind == "queue.choice"]


async def test_with_the_real_agent_nothing_promises_a_person_at_once(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    # The embedded agent's handover words and the queue's notice, as a visitor reads
    # them in the chat with nobody on duty: no "being connected", no "now".
    from gateway.app import create_app
    from gateway.settings import load_settings
    from tests.channels.chat import Chat

    client = await aiohttp_client(create_app(load_settings(data_dir=tmp_path / "data")))
    chat = await Chat.open(client)
    await chat.hello()
    await chat.say("I want to talk to a person please", "c1")
    reply = await chat.reply()
    notice = await chat.until(lambda f: f["type"] == "message" and f["author"] == "system")
    assert reply["author"] == "agent" and "passing you to a member of our team" in reply["text"]
    assert notice["text"].startswith(f"{NOBODY}. You keep your place in the queue")
    assert not re.search(r"\bnow\b|right away", reply["text"]), reply["text"]
    assert "being connected" not in reply["text"] + notice["text"]
