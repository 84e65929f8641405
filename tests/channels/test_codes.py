"""One-time codes over the real channels: the real app with the embedded agent, real
mail with `smtplib` to the embedded SMTP server (codes and replies caught by a local
SMTP relay), and texts through the real `twilio` client to a local Twilio REST
stand-in, so a code is read where the customer would read it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agent.codes import find_code
from gateway.app import create_app
from gateway.models import Event, Identity, IdentityKind, Message, Verification
from gateway.protocols import Store
from tests.channels.email.conftest import SUPPORT, CatchingRelay, Mailer
from tests.channels.sms.texting import JANE, OUR_NUMBER, Texter, sms_settings
from tests.support.twilio_rest import FakeTwilioRest

JANE_MAIL = "jane@example.com"  # Jane Doe's address on record in the demo backend
NEW_NUMBER = "+15550004444"  # on no account


class Customerside:
    """The app, and the customer's mail client and phone."""

    def __init__(self, client: TestClient[Any, Any], relay: CatchingRelay,
                 twilio: FakeTwilioRest) -> None:  # fmt: skip
        self.mailer = Mailer(client, relay)
        self.relay = relay
        self.twilio = twilio
        self.client = client

    @property
    def store(self) -> Store:
        return self.mailer.store

    def texter(self, number: str) -> Texter:
        return Texter(self.client, number)


@pytest.fixture
async def side(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> AsyncIterator[Customerside]:
    relay, twilio = CatchingRelay(), FakeTwilioRest()
    relay_url, api_url = await relay.start(), await twilio.start()
    settings = sms_settings(
        tmp_path, api_url, twilio_sms_from=OUR_NUMBER, email_address=SUPPORT,
        email_listen="127.0.0.1:0", email_relay=relay_url,
    )  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    yield Customerside(client, relay, twilio)
    await relay.close()
    await twilio.close()


def body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def mailed_code(mail: EmailMessage) -> str:
    assert mail["Subject"] == "Your verification code"
    assert mail["Auto-Submitted"] == "auto-generated"
    code = find_code(body(mail))
    assert code is not None
    return code


def texted_code(sms: dict[str, str]) -> str:
    code = find_code(sms["Body"])
    assert code is not None
    return code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def record(store: Store, identity: Identity) -> tuple[list[Message], list[Event]]:
    customer = await store.find_customer(identity)
    assert customer is not None
    history = await store.history(customer.id)
    events = [e for c in {m.conversation_id for m in history} for e in await store.events(c)]
    return history, events


def email(address: str) -> Identity:
    return Identity(kind=IdentityKind.EMAIL, value=address)


def phone(number: str) -> Identity:
    return Identity(kind=IdentityKind.PHONE, value=number)


async def test_an_email_customer_links_a_number_with_a_texted_code(side: Customerside) -> None:
    mailer, relay = side.mailer, side.relay
    ask = mailer.compose("Sam <sam@example.org>", "Hi, please text me a code at +1 555 000 4444")
    await mailer.send(ask)
    [sms] = side.twilio.messages
    assert (sms["To"], sms["From"]) == (NEW_NUMBER, OUR_NUMBER)
    code = texted_code(sms)
    assert "ending 4444" in body(relay.mails[-1]) and code not in body(relay.mails[-1])
    assert await side.store.find_customer(phone(NEW_NUMBER)) is None  # not on a claim

    await mailer.send(mailer.compose("sam@example.org", f"The code is {code}",
                                     reply_to=relay.mails[-1]))  # fmt: skip
    assert "now linked" in body(relay.mails[-1])
    sam = await side.store.find_customer(email("sam@example.org"))
    linked = await side.store.find_customer(phone(NEW_NUMBER))
    assert sam is not None and linked is not None and linked.id == sam.id
    assert next(i for i in linked.identities if i.kind is IdentityKind.PHONE).verified \
        is Verification.OTP  # fmt: skip
    # The code was never stored: not as a message of ours, not in an event.
    history, events = await record(side.store, email("sam@example.org"))
    outbound = [m.text for m in history if m.author.value == "agent"]
    assert outbound and all(code not in text for text in outbound)
    assert all(code not in str(e.data) for e in events)
    assert [e.data["to"] for e in events if e.kind == "notify.sent"] == [f"phone:{NEW_NUMBER}"]

    # A text from the linked number now continues Sam's history.
    texter = side.texter(NEW_NUMBER)
    await texter.text("hello again")
    await texter.drain()
    assert len(await texter.messages()) == len(history) + 2


async def test_a_texter_links_an_address_with_a_mailed_code(side: Customerside) -> None:
    texter = side.texter(NEW_NUMBER)
    await texter.text("email me a code at Sam@Example.org")
    await texter.drain()
    [mail] = side.relay.mails
    assert side.relay.envelopes[0] == (SUPPORT, ["sam@example.org"])
    code = mailed_code(mail)
    assert "s***@example.org" in side.twilio.messages[-1]["Body"]
    await texter.text(wrong(code))
    await texter.drain()
    assert "doesn't match" in side.twilio.messages[-1]["Body"]
    assert await side.store.find_customer(email("sam@example.org")) is None
    await texter.text(code)
    await texter.drain()
    assert "now linked" in side.twilio.messages[-1]["Body"]
    linked = await side.store.find_customer(email("sam@example.org"))
    assert linked is not None and linked.id == (await texter.messages())[0].customer_id


async def test_a_forged_from_gets_no_password_reset_but_the_owner_with_the_code_does(
    side: Customerside,
) -> None:
    mailer, relay = side.mailer, side.relay
    # Anyone can write From: jane@example.com.
    forged = mailer.compose(f"Jane Doe <{JANE_MAIL}>", "I forgot my password, please reset it")
    await mailer.send(forged)
    code_mail, reply = relay.mails
    assert relay.envelopes[0] == (SUPPORT, [JANE_MAIL])  # the address on record
    assert "j***@example.com" in body(reply) and "reset link" not in body(reply)
    _, events = await record(side.store, email(JANE_MAIL))
    assert not [e for e in events if e.kind == "tool.password_reset"]
    # The forger does not read Jane's mail: a guess is refused, and still no reset.
    await mailer.send(mailer.compose(JANE_MAIL, wrong(mailed_code(code_mail)), reply_to=reply))
    assert "doesn't match" in body(relay.mails[-1])
    _, events = await record(side.store, email(JANE_MAIL))
    assert not [e for e in events if e.kind == "tool.password_reset"]
    # Jane, who got the code in her own mailbox, sends it back: now the reset is done.
    await mailer.send(mailer.compose(JANE_MAIL, mailed_code(code_mail), reply_to=relay.mails[-1]))
    assert "sent a password reset link to j***@example.com" in body(relay.mails[-1])
    _, events = await record(side.store, email(JANE_MAIL))
    assert len([e for e in events if e.kind == "tool.password_reset"]) == 1
    jane = await side.store.find_customer(email(JANE_MAIL))
    assert jane is not None and jane.account_ref == "C-1001"


async def test_a_password_reset_by_text_waits_for_the_code_sent_to_the_number_on_record(
    side: Customerside,
) -> None:
    texter = side.texter(JANE)
    await texter.text("I forgot my password")
    await texter.drain()
    code_sms, reply = side.twilio.messages
    assert code_sms["To"] == JANE and "ending 4567" in reply["Body"]
    _, events = await record(side.store, phone(JANE))
    assert not [e for e in events if e.kind == "tool.password_reset"]
    await texter.text(texted_code(code_sms))
    await texter.drain()
    assert "reset link" in side.twilio.messages[-1]["Body"]
    _, events = await record(side.store, phone(JANE))
    assert len([e for e in events if e.kind == "tool.password_reset"]) == 1


async def test_a_code_that_cannot_be_sent_is_not_announced(side: Customerside) -> None:
    side.twilio.refuse_next(400, 21211, "The 'To' number is not a valid phone number.")
    mailer = side.mailer
    await mailer.send(mailer.compose("sam@example.org", "text me a code at +15550004444"))
    text = body(side.relay.mails[-1])
    assert "couldn't send a code" in text and "I've sent" not in text
    _, events = await record(side.store, email("sam@example.org"))
    failed = [e for e in events if e.kind == "notify.failed"]
    assert failed and "21211" in failed[0].data["error"]


async def test_a_code_merges_the_numbers_own_texts_into_the_mail_history(
    side: Customerside,
) -> None:
    texter = side.texter(NEW_NUMBER)
    await texter.text("do you ship internationally")
    await texter.drain()
    texted = [(m.author.value, m.text) for m in await texter.messages()]
    mailer, relay = side.mailer, side.relay
    await mailer.send(mailer.compose("sam@example.org", "Please text me a code at +15550004444"))
    code = texted_code(side.twilio.messages[-1])
    assert await side.store.find_customer(phone(NEW_NUMBER)) != await side.store.find_customer(
        email("sam@example.org")
    )
    await mailer.send(mailer.compose("sam@example.org", code, reply_to=relay.mails[-1]))
    assert "earlier messages" in body(relay.mails[-1])
    sam = await side.store.find_customer(email("sam@example.org"))
    by_number = await side.store.find_customer(phone(NEW_NUMBER))
    assert sam is not None and by_number is not None and by_number.id == sam.id
    history, events = await record(side.store, email("sam@example.org"))
    # Sam's mails keep their numbers; the texts follow them (after the mail with the
    # code, stored before the merge), in their own order; then the answer to that mail.
    assert [m.seq for m in history] == list(range(1, len(history) + 1))
    assert history[-len(texted) - 2].text.strip() == code
    assert [(m.author.value, m.text) for m in history[-len(texted) - 1 : -1]] == texted
    assert "earlier messages" in history[-1].text
    [merged] = [e for e in events if e.kind == "customer.merged"]
    assert merged.data["identity"] == f"phone:{NEW_NUMBER}"
    assert merged.data["messages"] == len(texted)
