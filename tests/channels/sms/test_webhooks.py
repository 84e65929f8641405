"""The SMS channel end to end: the real app, the embedded agent and the real `twilio`
client talking to a local stand-in for Twilio's REST API."""

from __future__ import annotations

import asyncio

from channels.phone.twilio.transport import caller_identity
from channels.sms.segments import count_segments, encoding
from channels.sms.transport import EMPTY_TWIML
from gateway.app import SETTINGS
from gateway.models import AuthorKind, ChannelKind, DeliveryStatus, Direction
from gateway.protocols import Decision, TurnContext
from tests.channels.sms.conftest import OpenTexter
from tests.channels.sms.texting import JANE, OUR_NUMBER, PUBLIC_URL, Texter, phone
from tests.support.brains import EchoBrain
from tests.support.twilio_rest import ACCOUNT_SID, FakeTwilioRest


async def test_a_text_is_acknowledged_and_answered_through_the_rest_api(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    status, body = await texter.text("Where is my order 1001?")
    assert (status, body) == (200, EMPTY_TWIML)
    [sent] = await twilio_rest.wait_messages(1)
    assert sent["To"] == JANE and sent["From"] == OUR_NUMBER
    assert sent["StatusCallback"] == PUBLIC_URL + "/twilio/sms/status"
    await texter.drain()
    inbound, reply = await texter.messages()
    assert inbound.direction is Direction.INBOUND and inbound.text == "Where is my order 1001?"
    assert reply.author is AuthorKind.AGENT and reply.text == sent["Body"]
    assert reply.status is DeliveryStatus.SENT and reply.external_id  # Twilio took it
    assert reply.external_id.startswith("SM")


async def test_the_webhook_answers_before_a_slow_agent(
    open_texter: OpenTexter, twilio_rest: FakeTwilioRest
) -> None:
    gate = asyncio.Event()
    texter = await open_texter(brain=EchoBrain(gate))
    async with asyncio.timeout(2):
        assert await texter.text("hello") == (200, EMPTY_TWIML)
    [stored] = await texter.messages()  # committed before the acknowledgement
    assert stored.external_id and stored.text == "hello"
    assert twilio_rest.messages == []
    gate.set()
    [sent] = await twilio_rest.wait_messages(1)
    assert sent["Body"] == "echo: hello"


async def test_forged_unsigned_or_foreign_requests_are_refused(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    form = texter.inbound_form("hi")
    assert (await texter.post("/twilio/sms", form, signature=None))[0] == 403
    forged = texter.signatures.sign(PUBLIC_URL + "/twilio/sms", {**form, "Body": "other"})
    assert (await texter.post("/twilio/sms", form, signature=forged))[0] == 403
    foreign = {**form, "AccountSid": "AC" + "2" * 32}
    assert (await texter.post("/twilio/sms", foreign))[0] == 403
    status = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    assert (await texter.post("/twilio/sms/status", status, signature=None))[0] == 403
    assert await texter.messages() == [] and twilio_rest.messages == []
    # Signed but not a message: 400.
    assert (await texter.post("/twilio/sms", {**form, "From": "not a number"}))[0] == 400
    no_status = {"MessageSid": "SM1", "AccountSid": ACCOUNT_SID}
    assert (await texter.post("/twilio/sms/status", no_status))[0] == 400


async def test_without_an_auth_token_every_request_is_refused(
    open_texter: OpenTexter, twilio_rest: FakeTwilioRest
) -> None:
    texter = await open_texter(twilio_auth_token=None)
    assert (await texter.post("/twilio/sms", texter.inbound_form("hi"), signature="x"))[0] == 403
    assert await texter.messages() == []


async def test_a_retried_message_is_stored_and_answered_once(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    form = texter.inbound_form("Hello there")
    first, again = await asyncio.gather(
        texter.post("/twilio/sms", form), texter.post("/twilio/sms", form)
    )
    assert first == again == (200, EMPTY_TWIML)
    await texter.drain()
    assert await texter.post("/twilio/sms", form) == (200, EMPTY_TWIML)  # after the answer
    await texter.drain()
    messages = await texter.messages()
    assert [m.direction for m in messages] == [Direction.INBOUND, Direction.OUTBOUND]
    assert len(twilio_rest.messages) == 1


async def test_a_boundary_shifted_replay_is_refused_and_nothing_is_answered_twice(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    # Without a messaging service, MessageSid and NumMedia are neighbours in the signed text.
    form = {k: v for k, v in texter.inbound_form("Hello there").items()
            if k != "MessagingServiceSid"}  # fmt: skip
    signature = texter.signatures.sign(PUBLIC_URL + "/twilio/sms", form)
    assert (await texter.post("/twilio/sms", form, signature=signature)) == (200, EMPTY_TWIML)
    sid = form["MessageSid"]
    shifts = [
        # NumMedia swallowed by the sid before it (the outside check's replay) ...
        {**{k: v for k, v in form.items() if k != "NumMedia"}, "MessageSid": sid + "NumMedia0"},
        # ... or by the sids after it, or the account sid swallowing ApiVersion.
        {
            **{k: v for k, v in form.items() if k != "SmsSid"},
            "SmsMessageSid": sid + "SmsSid" + sid,
        },
        {
            **{k: v for k, v in form.items() if k != "ApiVersion"},
            "AccountSid": form["AccountSid"] + "ApiVersion2010-04-01",
        },
    ]
    for shifted in shifts:
        # Each still carries the captured signature: Twilio's scheme cannot tell them apart.
        texter.signatures.check(PUBLIC_URL + "/twilio/sms", shifted, signature)
        status, _ = await texter.post("/twilio/sms", shifted, signature=signature)
        assert status in (400, 403)  # malformed, or (the account sid) another account
    await texter.drain()
    assert [m.direction for m in await texter.messages()] == [
        Direction.INBOUND, Direction.OUTBOUND
    ]  # fmt: skip
    assert len(twilio_rest.messages) == 1


async def test_stop_start_and_help(texter: Texter, twilio_rest: FakeTwilioRest) -> None:
    await texter.text("hi")
    await twilio_rest.wait_messages(1)
    assert await texter.text(" Stop ") == (200, EMPTY_TWIML)
    assert await texter.opted_out()  # at once, before the acknowledgement
    await texter.text("Where is my order 1001?")
    await texter.drain()
    assert len(twilio_rest.messages) == 1  # nothing more was sent
    *_, stop, question, unsent = await texter.messages()
    assert stop.text == "Stop" and question.direction is Direction.INBOUND
    assert unsent.direction is Direction.OUTBOUND and unsent.author is AuthorKind.AGENT
    assert (unsent.status, unsent.error_code) == (DeliveryStatus.FAILED, "opted_out")
    events = await texter.store.events(unsent.conversation_id)
    kinds = [e.kind for e in events]
    assert "sms.stop" in kinds and "delivery.failed" in kinds  # visible to reps
    turns = [e.data["message_id"] for e in events if e.kind == "agent.turn"]
    assert stop.id not in turns  # the agent never saw the keyword

    await texter.text("HELP")  # opted out: not even the help text goes out
    await texter.drain()
    assert len(twilio_rest.messages) == 1

    await texter.text("start")
    await twilio_rest.wait_messages(2)
    assert not await texter.opted_out()
    assert twilio_rest.messages[1]["Body"] == texter.app[SETTINGS].sms_start_text
    await texter.text("Info")
    await twilio_rest.wait_messages(3)
    assert twilio_rest.messages[2]["Body"] == texter.app[SETTINGS].sms_help_text
    await texter.text("hello again")
    await twilio_rest.wait_messages(4)
    await texter.drain()
    assert len(twilio_rest.messages) == 4


async def test_twilio_21610_on_a_send_opts_the_number_out(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    twilio_rest.refuse_next(400, 21610, "Attempt to send to unsubscribed recipient")
    await texter.text("hi")
    await twilio_rest.wait_messages(1)
    await texter.drain()
    *_, failed = await texter.messages()
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "21610")
    assert await texter.opted_out()
    await texter.text("anyone there?")
    await texter.drain()
    assert len(twilio_rest.refused) == 1 and twilio_rest.messages == []  # not tried again
    *_, unsent = await texter.messages()
    assert unsent.error_code == "opted_out"


async def test_other_refusals_are_recorded_as_failed(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    twilio_rest.refuse_next(400, 21211, "The 'To' number is not a valid phone number.")
    await texter.text("hi")
    await twilio_rest.wait_messages(1)
    await texter.drain()
    *_, failed = await texter.messages()
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "21211")
    assert not await texter.opted_out()


async def test_status_callbacks_update_the_stored_message(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    await texter.text("hi")
    await twilio_rest.wait_messages(1)
    await texter.drain()
    *_, reply = await texter.messages()
    sid = reply.external_id
    assert sid is not None
    for status in ("sent", "delivered", "sent"):  # the late "sent" comes out of order
        assert (await texter.status(sid, status))[0] == 200
    *_, reply = await texter.messages()
    assert reply.status is DeliveryStatus.DELIVERED

    await texter.text("and again")
    await twilio_rest.wait_messages(2)
    await texter.drain()
    *_, second = await texter.messages()
    assert second.external_id is not None
    await texter.status(second.external_id, "undelivered", "30007")
    *_, second = await texter.messages()
    assert (second.status, second.error_code) == (DeliveryStatus.UNDELIVERED, "30007")
    failures = [e for e in await texter.store.events(second.conversation_id)
                if e.kind == "delivery.failed"]  # fmt: skip
    assert failures and failures[-1].data["error_code"] == "30007"

    assert (await texter.status("SM" + "f" * 32, "delivered"))[0] == 200  # unknown: logged
    assert (await texter.status(second.external_id, "received"))[0] == 200  # inbound status
    assert not await texter.opted_out()
    await texter.status(second.external_id, "failed", "21610")
    assert await texter.opted_out()


async def test_mms_media_are_stored_as_attachments(texter: Texter) -> None:
    media = (
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2", "video/mp4"),
    )
    assert (await texter.text("my broken parcel", media=media))[0] == 200
    await texter.drain()
    inbound = (await texter.messages())[0]
    assert [(a.url, a.content_type) for a in inbound.attachments] == list(media)


async def test_formatted_numbers_are_one_identity_with_the_caller_id(
    open_texter: OpenTexter,
) -> None:
    texter = await open_texter(number="+1 (555) 123-4567")
    await texter.text("hi")
    await texter.drain()
    customer = await texter.store.find_customer(phone(JANE))
    assert customer is not None
    call = await texter.store.open_session(caller_identity("+15551234567", "CA1"),
                                           ChannelKind.PHONE)  # fmt: skip
    assert call.customer.id == customer.id and not call.created_customer


async def test_long_replies_fit_the_segment_limit_by_encoding(
    open_texter: OpenTexter, twilio_rest: FakeTwilioRest
) -> None:
    texter = await open_texter(brain=EchoBrain())
    gsm = " ".join(f"Step {i} is done." for i in range(60))  # ~1000 GSM-7 characters
    await texter.text(gsm)
    [sent] = await twilio_rest.wait_messages(1)
    assert encoding(sent["Body"]) == "GSM-7" and count_segments(sent["Body"]) == 3
    assert 400 < len(sent["Body"]) <= 3 * 153 and sent["Body"].endswith("done. ...")

    emoji = " ".join(f"Step {i} is done 🎉." for i in range(30))
    await texter.text(emoji)
    [_, sent] = await twilio_rest.wait_messages(2)
    assert encoding(sent["Body"]) == "UCS-2" and count_segments(sent["Body"]) <= 3
    assert len(sent["Body"].encode("utf-16-le")) // 2 <= 3 * 67
    assert len(sent["Body"]) < 3 * 153 // 2  # far shorter than the GSM-7 reply

    await texter.text("short 👍")
    [*_, sent] = await twilio_rest.wait_messages(3)
    assert sent["Body"] == "echo: short 👍"
    await texter.drain()
    messages = await texter.messages()
    long_reply = messages[1]
    assert long_reply.text == twilio_rest.messages[0]["Body"]  # what the customer got
    cuts = [e for e in await texter.store.events(long_reply.conversation_id)
            if e.kind == "message.cut"]  # fmt: skip
    assert cuts and cuts[0].data  # the full text is kept for reps


class DyingBrain:
    """The process dies while the agent is thinking (the turn task is cancelled)."""

    history_window = 0

    async def respond(self, turn: TurnContext) -> Decision:
        raise asyncio.CancelledError


async def test_a_message_stored_before_a_crash_is_answered_on_restart(
    open_texter: OpenTexter, twilio_rest: FakeTwilioRest
) -> None:
    first = await open_texter(brain=DyingBrain(), twilio_sms_from=OUR_NUMBER)
    assert await first.text("Where is my order 1001?") == (200, EMPTY_TWIML)
    await first.drain()
    [unanswered] = await first.store.unhandled_messages()
    await first.client.close()
    assert twilio_rest.messages == []

    again = await open_texter(twilio_sms_from=OUR_NUMBER)  # same data dir, real agent
    [sent] = await twilio_rest.wait_messages(1)
    assert (sent["To"], sent["From"]) == (JANE, OUR_NUMBER)
    await again.drain()
    assert await again.store.unhandled_messages() == []
    inbound, reply = await again.messages()
    assert inbound.id == unanswered.id and reply.text == sent["Body"]
