"""The outbox (gateway/outbox.py) on SQLite and PostgreSQL, with the real SMS and
email channels against a local Twilio REST stand-in and a local SMTP relay.

A "crash" here is what `kill -9` leaves behind: the sender's task stops where it
was (cancelled mid-request) and the store is closed without another write; a new
store on the same database and a new outbox play the restarted process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.channel import EmailChannel
from channels.email.relay import Relay
from channels.sms.channel import SmsChannel
from channels.sms.rest import TwilioMessages
from gateway.models import (
    ChannelKind,
    DeliveryStatus,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Verification,
)
from gateway.outbox import Outbox
from gateway.protocols import ChannelRegistry, OutboundDraft, TurnRecord
from gateway.settings import Settings, load_settings
from tests.support.mail import SUPPORT, CatchingRelay
from tests.support.stores import AnyStore, open_store
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest

JANE_PHONE = "+15551234567"
JANE_MAIL = "jane@example.net"
OUR_NUMBER = "+15557654321"


class SlowRelay(CatchingRelay):
    """The relay keeps each mail, then answers after `delay_s` with the next scripted
    answer (`answers`, then 250)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.0
        self.answers: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.answers.pop(0) if self.answers else "250 OK"


@dataclass
class Desk:
    """One "process": a store, the SMS and email channels on it, and an outbox."""

    store: AnyStore
    outbox: Outbox
    sms: SmsChannel
    email: EmailChannel
    api: TwilioMessages

    async def close(self) -> None:
        await self.outbox.stop()
        await self.api.close()
        await self.store.close()


OpenDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def relay() -> AsyncIterator[SlowRelay]:
    server = SlowRelay()
    yield server
    await server.close()


@pytest.fixture
async def open_desk(
    store_url: str, tmp_path: Path, twilio_rest: FakeTwilioRest, relay: SlowRelay
) -> AsyncIterator[OpenDesk]:
    api_url = await twilio_rest.start()
    relay_url = await relay.start()
    opened: list[Desk] = []

    async def open_(**outbox: Any) -> Desk:
        settings: Settings = load_settings(
            data_dir=tmp_path, public_url="https://support.example.com",
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
            twilio_api_url=api_url, twilio_sms_from=OUR_NUMBER, sms_send_timeout_s=0.5,
            email_address=SUPPORT, email_relay=relay_url, email_send_timeout_s=5.0,
        )  # fmt: skip
        store = await open_store(store_url)
        api = TwilioMessages.from_settings(settings)
        assert api is not None
        sms, email = SmsChannel(settings), EmailChannel(settings, b"k" * 32)
        sms.attach(store, api)
        email.attach(store, Relay.from_settings(settings))
        channels: ChannelRegistry = {ChannelKind.SMS: sms, ChannelKind.EMAIL: email}
        options = {"retry_base_s": 0.05, "poll_s": 0.02, **outbox}
        desk = Desk(store, Outbox(store, channels, **options), sms, email, api)
        opened.append(desk)
        return desk

    yield open_
    for desk in opened:
        with contextlib.suppress(Exception):
            await desk.close()


async def reply(store: AnyStore, channel: ChannelKind, text: str) -> Message:
    """Jane writes on `channel`; the turn that answers her is stored (reply queued)."""
    value, kind = (JANE_PHONE, IdentityKind.PHONE) if channel is ChannelKind.SMS else (
        JANE_MAIL, IdentityKind.EMAIL)  # fmt: skip
    ingested = await store.ingest(InboundMessage(
        channel=channel, text="where is my order?", external_id=f"in-{text}",
        identity=Identity(kind=kind, value=value, verified=Verification.SENDER),
    ))  # fmt: skip
    stored = await store.record_turn(TurnRecord(
        conversation_id=ingested.conversation.id,
        expected_version=ingested.conversation.version,
        handled_message_id=ingested.message.id,
        outbound=(OutboundDraft(text=text, channel=channel),),
    ))  # fmt: skip
    [message] = stored.messages
    return message


async def send(desk: Desk, message: Message) -> None:
    """The storing node's immediate attempt, as the dispatcher makes it."""
    customer = await desk.store.get_customer(message.customer_id)
    conversation = await desk.store.get_conversation(message.conversation_id)
    await desk.outbox.send(customer, conversation, [message])


async def status_of(store: AnyStore, message: Message) -> Message:
    [found] = [m for m in await store.conversation_messages(message.conversation_id)
               if m.id == message.id]  # fmt: skip
    return found


async def settled(store: AnyStore, message: Message, within_s: float = 10.0) -> Message:
    """The reply once it has left the outbox (sent, or failed for good)."""
    async with asyncio.timeout(within_s):
        while True:
            found = await status_of(store, message)
            if found.status is not None and found.status.rank >= DeliveryStatus.SENT.rank:
                return found
            await asyncio.sleep(0.02)


async def crash_during(desk: Desk, message: Message, arrived: Callable[[], bool]) -> None:
    """Start sending `message`, and die (kill -9) once the provider has it."""
    task = asyncio.create_task(send(desk, message))
    async with asyncio.timeout(10):
        while not arrived():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await desk.api.close()
    await desk.store.close()


async def delivery_failures(store: AnyStore, message: Message) -> list[dict[str, Any]]:
    return [e.data for e in await store.events(message.conversation_id)
            if e.kind == "delivery.failed" and e.data.get("message_id") == message.id]  # fmt: skip


# ---------------------------------------------------------------- the tests


async def test_a_reply_stored_but_not_sent_before_a_crash_is_sent_after_the_start(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    first = await open_desk()
    message = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    assert message.status is DeliveryStatus.QUEUED
    await first.close()  # died before the immediate attempt: nothing was sent
    assert twilio_rest.messages == []

    again = await open_desk()
    await again.outbox.start(single_node=True)
    sent = await settled(again.store, message)
    assert sent.status is DeliveryStatus.SENT and sent.external_id
    [form] = twilio_rest.messages
    assert (form["To"], form["Body"]) == (JANE_PHONE, "Your order ships today.")
    await asyncio.sleep(0.2)  # the loop goes on: it is not sent again
    assert len(twilio_rest.messages) == 1


async def test_a_provider_error_is_retried_with_backoff_until_sent(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    desk = await open_desk()
    twilio_rest.refuse_next(503, 20503, "Service unavailable", times=2)
    message = await reply(desk.store, ChannelKind.SMS, "Your order ships today.")
    await send(desk, message)  # the first attempt fails: due again later
    waiting = await status_of(desk.store, message)
    assert (waiting.status, waiting.error_code) == (DeliveryStatus.QUEUED, "20503")
    await desk.outbox.start(single_node=False)
    sent = await settled(desk.store, message)
    assert sent.status is DeliveryStatus.SENT
    assert (len(twilio_rest.refused), len(twilio_rest.messages)) == (2, 1)
    assert twilio_rest.lookups == 0  # a 503 leaves no doubt: Twilio did not take it
    assert await delivery_failures(desk.store, message) == []


def test_the_backoff_doubles_up_to_its_ceiling() -> None:
    outbox = Outbox(None, {}, retry_base_s=2.0, retry_max_s=20.0)  # type: ignore[arg-type]
    assert [outbox.backoff_s(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


async def test_a_reply_given_up_is_failed_with_an_event_reps_see(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    desk = await open_desk(max_attempts=3)
    twilio_rest.refuse_next(503, 20503, "Service unavailable", times=5)
    message = await reply(desk.store, ChannelKind.SMS, "Your order ships today.")
    await desk.outbox.start(single_node=True)
    failed = await settled(desk.store, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "20503")
    assert len(twilio_rest.refused) == 3 and twilio_rest.messages == []
    [event] = await delivery_failures(desk.store, message)
    assert event["error_code"] == "20503"


async def test_a_refusal_for_good_is_not_retried(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    desk = await open_desk()
    twilio_rest.refuse_next(400, 21211, "The 'To' number is not a valid phone number.")
    message = await reply(desk.store, ChannelKind.SMS, "Your order ships today.")
    await send(desk, message)
    failed = await status_of(desk.store, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "21211")
    await desk.outbox.start(single_node=True)
    await asyncio.sleep(0.2)
    assert len(twilio_rest.refused) == 1 and twilio_rest.messages == []


async def test_sms_twilio_took_before_a_crash_is_found_there_not_sent_again(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    # Twilio accepted the message, the process died before our mark: Twilio's list of
    # messages to the number shows it, so it is marked sent with its sid.
    first = await open_desk()
    earlier = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    await send(first, earlier)  # the same words, sent before: its sid is on record
    twilio_rest.answer_delay_s = 5.0
    message = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    await crash_during(first, message, lambda: len(twilio_rest.messages) == 2)
    twilio_rest.answer_delay_s = 0.0

    again = await open_desk()
    taken = twilio_rest.resources[-1]["sid"]
    for n in range(150):  # texts sent since push it off the first page of Twilio's list
        await again.api.send(to=JANE_PHONE, from_=OUR_NUMBER, body=f"later {n}",
                             status_callback="https://support.example.com/s")  # fmt: skip
    await again.outbox.start(single_node=True)
    sent = await settled(again.store, message)
    assert sent.status is DeliveryStatus.SENT
    assert sent.external_id == taken  # not the earlier one's
    assert len(twilio_rest.messages) == 152 and twilio_rest.lookups == 2  # two pages
    assert await delivery_failures(again.store, message) == []


async def test_sms_whose_sid_is_on_record_is_not_sent_again(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    # Twilio's sid recorded, the reply still in the outbox (a crash before the mark).
    first = await open_desk()
    message = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    sid = "SM" + "ab" * 16
    await first.store.set_delivery(message.id, DeliveryStatus.SENDING, external_id=sid)
    await first.close()
    again = await open_desk()
    await again.outbox.start(single_node=True)
    sent = await settled(again.store, message)
    assert (sent.status, sent.external_id) == (DeliveryStatus.SENT, sid)
    assert twilio_rest.messages == [] and twilio_rest.lookups == 0


async def test_a_reply_twilio_took_leaves_the_outbox_in_one_write(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    desk = await open_desk()
    message = await reply(desk.store, ChannelKind.SMS, "Your order ships today.")
    await desk.sms.publish(
        await desk.store.get_customer(message.customer_id),
        await desk.store.get_conversation(message.conversation_id),
        message,
    )  # the channel alone, without the outbox's mark after it
    done = await status_of(desk.store, message)
    assert (done.status, done.external_id) == (DeliveryStatus.SENT, twilio_rest.resources[0]["sid"])
    assert await desk.store.release_outbox() == 0  # nothing left to send after a crash


async def test_sms_a_crash_left_sending_that_twilio_never_got_is_sent(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    first = await open_desk()
    message = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    # What a crash right after recording the attempt, before the request, leaves.
    await first.store.set_delivery(message.id, DeliveryStatus.SENDING)
    await first.close()

    again = await open_desk()
    await again.outbox.start(single_node=True)
    sent = await settled(again.store, message)
    assert sent.status is DeliveryStatus.SENT
    [form] = twilio_rest.messages
    assert form["Body"] == "Your order ships today." and twilio_rest.lookups == 1


async def test_sms_is_not_sent_again_when_twilio_cannot_say_whether_it_took_it(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    first = await open_desk()
    message = await reply(first.store, ChannelKind.SMS, "Your order ships today.")
    await first.store.set_delivery(message.id, DeliveryStatus.SENDING)
    await first.close()
    await twilio_rest.close()  # Twilio is unreachable after the restart

    again = await open_desk()
    await again.outbox.start(single_node=True)
    failed = await settled(again.store, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "outcome_unknown")
    assert twilio_rest.messages == []
    [event] = await delivery_failures(again.store, message)
    assert event["error_code"] == "outcome_unknown"


async def test_sms_that_timed_out_is_found_at_twilio_not_sent_again(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest
) -> None:
    desk = await open_desk()
    twilio_rest.answer_delay_s = 1.0  # over the 0.5 s send timeout: Twilio took it, silently
    message = await reply(desk.store, ChannelKind.SMS, "Your order ships today.")
    await send(desk, message)
    waiting = await status_of(desk.store, message)
    assert (waiting.status, waiting.error_code) == (DeliveryStatus.SENDING, "timeout")
    twilio_rest.answer_delay_s = 0.0
    await desk.outbox.start(single_node=True)
    sent = await settled(desk.store, message)
    assert sent.status is DeliveryStatus.SENT
    assert sent.external_id == twilio_rest.resources[0]["sid"]
    assert len(twilio_rest.messages) == 1


async def test_email_sent_again_after_a_crash_keeps_its_message_id(
    open_desk: OpenDesk, relay: SlowRelay
) -> None:
    # At least once, recognisably: the relay had the mail when the process died.
    first = await open_desk()
    relay.delay_s = 5.0
    message = await reply(first.store, ChannelKind.EMAIL, "Your order ships today.")
    await crash_during(first, message, lambda: len(relay.mails) == 1)
    relay.delay_s = 0.0

    again = await open_desk()
    await again.outbox.start(single_node=True)
    sent = await settled(again.store, message)
    assert sent.status is DeliveryStatus.SENT
    assert len(relay.mails) == 2
    first_id, second_id = (str(m["Message-ID"]) for m in relay.mails)
    assert first_id == second_id  # the receiver sees one message, delivered twice
    assert sent.external_id == f"{SUPPORT}:{first_id}"
    assert "Your order ships today." in relay.mails[1].get_content()


async def test_email_refused_for_now_is_retried_under_the_same_message_id(
    open_desk: OpenDesk, relay: SlowRelay
) -> None:
    desk = await open_desk()
    relay.answers = ["451 4.3.0 Try again later"]
    message = await reply(desk.store, ChannelKind.EMAIL, "Your order ships today.")
    await send(desk, message)
    assert (await status_of(desk.store, message)).error_code == "smtp_451"
    await desk.outbox.start(single_node=True)
    sent = await settled(desk.store, message)
    assert sent.status is DeliveryStatus.SENT
    assert len({str(m["Message-ID"]) for m in relay.mails}) == 1 and len(relay.mails) == 2


async def test_each_due_reply_is_claimed_by_one_sender(store_url: str, open_desk: OpenDesk) -> None:
    # Two nodes look for due replies at once (on PostgreSQL two stores, two pools).
    desk = await open_desk()
    queued = [await reply(desk.store, ChannelKind.SMS, f"reply {n}") for n in range(20)]
    assert await desk.store.claim_outbox(100) == []  # claimed by the storing node
    assert await desk.store.release_outbox() == 20  # that node died
    other = await open_store(store_url) if store_url.startswith("postgres") else desk.store
    try:
        claims = await asyncio.gather(*(s.claim_outbox(7) for s in [desk.store, other] * 3))
    finally:
        if other is not desk.store:
            await other.close()
    ids = [p.message.id for batch in claims for p in batch]
    assert sorted(ids) == sorted(m.id for m in queued)  # each once, none left out
    assert await desk.store.claim_outbox(100) == []


async def test_replies_left_by_a_crash_are_sent_once_through_the_channel_registry(
    open_desk: OpenDesk, twilio_rest: FakeTwilioRest, relay: SlowRelay
) -> None:
    # Replies on both channels, stored and never sent, then one restart.
    first = await open_desk()
    texts = [await reply(first.store, ChannelKind.SMS, f"sms {n}") for n in range(3)]
    mails = [await reply(first.store, ChannelKind.EMAIL, f"mail {n}") for n in range(3)]
    await first.close()
    again = await open_desk()
    await again.outbox.start(single_node=True)
    for message in texts + mails:
        assert (await settled(again.store, message)).status is DeliveryStatus.SENT
    assert sorted(f["Body"] for f in twilio_rest.messages) == ["sms 0", "sms 1", "sms 2"]
    assert sorted(m.get_content().strip() for m in relay.mails) == ["mail 0", "mail 1", "mail 2"]
