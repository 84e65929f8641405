"""One customer, every channel: Jane calls, then texts, then emails; one customer, one
history, and the agent refers to the earlier contact.

Everything is real but the far ends: the call is a simulated Twilio media stream over a
real websocket (speech recognised by the deterministic `FixtureTranscriber`), the text is
a signed Twilio webhook whose answer the real `twilio` client sends to a local REST
stand-in, and the mail goes in by `smtplib` to the embedded SMTP server and comes back
through a local relay. The demo backend lists Jane's number and address on account
C-1001, so all three find her.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from gateway.app import STORE, create_app
from gateway.models import AuthorKind, ChannelKind, Identity, IdentityKind
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FixtureTranscriber,
    Recording,
    eventually,
    load_recordings,
    phone_settings,
    signatures,
)
from tests.channels.sms.texting import Texter
from tests.support.mail import SUPPORT, CatchingRelay, Mailer
from tests.support.twilio_rest import FakeTwilioRest

JANE_PHONE = "+15551234567"
JANE_EMAIL = "jane@example.com"
TRACKING = "1Z999AA10123456784"  # order 1001 in the demo data


@pytest.fixture(scope="module")
def recordings() -> dict[str, Recording]:
    return load_recordings()


@pytest.fixture
async def relay() -> AsyncIterator[CatchingRelay]:
    server = CatchingRelay()
    yield server
    await server.close()


async def test_one_customer_calls_then_texts_then_emails(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    twilio_rest: FakeTwilioRest,
    relay: CatchingRelay,
) -> None:
    settings = phone_settings(
        tmp_path,
        await twilio_rest.start(),
        email_address=SUPPORT,
        email_listen="127.0.0.1:0",
        email_relay=await relay.start(),
    )
    app = create_app(settings, transcriber=FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    store = app[STORE]

    # 1. Jane calls and asks about her order; she gives its number by voice.
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE_PHONE
    )
    assert await sim.start_call()
    async with asyncio.timeout(30):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
        for name in ("order_status", "order_number_spoken"):
            heard = len(sim.received.media)
            await sim.say(recordings[name].mulaw)
            await sim.until(lambda heard=heard: len(sim.received.media) > heard)  # type: ignore[misc]
            await sim.wait_quiet()
    status = {"CallSid": sim.call_sid, "AccountSid": ACCOUNT_SID, "CallStatus": "completed"}
    await sim.post("/twilio/voice/status", status)
    async with asyncio.timeout(10):
        await sim.until(lambda: sim.closed)
    jane = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=JANE_PHONE))
    assert jane is not None and jane.account_ref == "C-1001"

    async def call_answered() -> bool:
        said = await store.history(jane.id)
        return any(m.author is AuthorKind.AGENT and "Order 1001 has shipped" in m.text
                   for m in said)  # fmt: skip

    await eventually(call_answered)

    # 2. A few minutes later she texts, without the order number.
    texter = Texter(client, JANE_PHONE)
    assert (await texter.text("Hi, any news about my order?"))[0] == 200
    await texter.drain()
    [sms] = await twilio_rest.wait_messages(1)
    assert sms["To"] == JANE_PHONE
    assert sms["Body"].startswith(
        "I see you called us earlier today about order 1001. Order 1001 has shipped with UPS."
    )
    assert "\n" not in sms["Body"] and "chat" not in sms["Body"]

    # 3. Then she emails from the address on her account.
    mailer = Mailer(client, relay)
    await mailer.send(
        mailer.compose(
            f"Jane Doe <{JANE_EMAIL}>",
            "Hello, could you send me the tracking number for my order?",
            subject="Tracking",
        )
    )
    [letter] = relay.mails
    assert letter["To"] == JANE_EMAIL
    body = letter.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Jane,\n\nI see you texted us earlier today about order 1001.")
    assert TRACKING in text and "Best regards" in text and "chat" not in text

    # One customer, found by every identity, with one history in the order it happened.
    by_mail = await store.find_customer(Identity(kind=IdentityKind.EMAIL, value=JANE_EMAIL))
    assert by_mail is not None and by_mail.id == jane.id
    history = await store.history(jane.id)
    assert [m.seq for m in history] == list(range(1, len(history) + 1))
    runs = [channel for channel, _ in itertools.groupby(m.channel for m in history)]
    assert runs == [ChannelKind.PHONE, ChannelKind.SMS, ChannelKind.EMAIL]
    customer_said = [(m.channel, m.text) for m in history if m.author is AuthorKind.CUSTOMER]
    assert customer_said == [
        (ChannelKind.PHONE, recordings["order_status"].text),
        (ChannelKind.PHONE, recordings["order_number_spoken"].text),
        (ChannelKind.SMS, "Hi, any news about my order?"),
        (ChannelKind.EMAIL, "Hello, could you send me the tracking number for my order?"),
    ]
    # The rep sees it the same way: each reply is in the channel the customer used.
    assert all(
        m.channel is history[i - 1].channel
        for i, m in enumerate(history)
        if m.author is AuthorKind.AGENT and i > 0 and history[i - 1].author is AuthorKind.CUSTOMER
    )
