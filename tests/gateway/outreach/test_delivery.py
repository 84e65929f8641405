"""Which channel an outreach goes out on, and what it respects: fallback when a
channel fails, opt-outs (STOP, one-click unsubscribe), quiet hours, the frequency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from channels.webchat import sign_user_id
from gateway.models import Identity, IdentityKind
from gateway.outreach.models import OutreachChannel, OutreachState
from tests.channels.chat import Chat
from tests.channels.sms.texting import Texter
from tests.gateway.outreach.conftest import (
    AUTH,
    JANE_MAIL,
    JANE_PHONE,
    OpenGateway,
    order_delayed,
)


async def test_a_failing_channel_falls_back_to_the_next(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    gw.twilio.refuse_next(400, 21211, "The 'To' number is not a valid phone number.")
    status, body = await gw.post(order_delayed())
    assert status == 202
    done = await gw.settled(body["id"])
    assert done.state is OutreachState.SENT and done.channel is OutreachChannel.EMAIL, done
    assert done.tried == (OutreachChannel.SMS,)
    assert len(gw.twilio.refused) == 1 and gw.twilio.messages == []
    [mail] = gw.relay.mails
    assert mail["To"] == JANE_MAIL
    assert mail["Subject"] == "Your order 1001 is running late"
    assert "Friday" in mail.get_content()
    # Both attempts are in the customer's timeline; the failed one says so.
    assert done.conversation_id is not None
    messages = await gw.store.conversation_messages(done.conversation_id)
    assert [(m.channel.value, m.status.value if m.status else None) for m in messages] == [
        ("sms", "failed"),
        ("email", "sent"),
    ]


async def test_nothing_is_texted_to_an_opted_out_number(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    texter = Texter(gw.client, JANE_PHONE)
    await texter.text("STOP")
    await texter.drain()
    assert await texter.opted_out()
    _, body = await gw.post(order_delayed(channel="sms"))  # only SMS: skipped
    done = await gw.settled(body["id"])
    assert done.state is OutreachState.SKIPPED and done.error == "opted_out", done
    _, body = await gw.post(order_delayed("evt-2"))  # any channel: email instead
    done = await gw.settled(body["id"])
    assert done.state is OutreachState.SENT and done.channel is OutreachChannel.EMAIL
    assert gw.twilio.messages == []
    assert len(gw.relay.mails) == 1


async def _unsubscribe_link(mail: EmailMessage) -> str:
    header = str(mail["List-Unsubscribe"])
    assert header.startswith("<https://support.example.com/outreach/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return header.strip("<>").removeprefix("https://support.example.com")


async def test_one_click_unsubscribe_stops_outreach_mail(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    event = {"id": "evt-pay", "type": "payment.failed", "customer": {"email": JANE_MAIL},
             "data": {"amount": "$19.00", "why": "card expired"}}  # fmt: skip
    done = await gw.settled((await gw.post(event))[1]["id"])
    assert done.channel is OutreachChannel.EMAIL  # the rule's first channel
    [mail] = gw.relay.mails
    path = await _unsubscribe_link(mail)
    # Opening the link does nothing by itself (mail scanners follow links).
    page = await gw.client.get(path)
    assert page.status == 200 and "<form" in await page.text()
    email = Identity(kind=IdentityKind.EMAIL, value=JANE_MAIL)
    assert not await gw.store.is_opted_out(email)
    tampered = await gw.client.post(path[:-3] + "xyz", data="List-Unsubscribe=One-Click")
    assert tampered.status == 404
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = await gw.client.post(path, data="List-Unsubscribe=One-Click", headers=form)
    assert resp.status == 200
    assert await gw.store.is_opted_out(email)
    # The next payment event: not mailed; the next channel (SMS) is used.
    again = await gw.settled((await gw.post({**event, "id": "evt-pay-2"}))[1]["id"])
    assert again.channel is OutreachChannel.SMS and again.state is OutreachState.SENT
    assert len(gw.relay.mails) == 1


def _window_around_now() -> str:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


async def test_quiet_hours_defer_a_text_until_they_end(open_gateway: OpenGateway) -> None:
    # A 555 number has no region time zone: BUSINESS_TIMEZONE (UTC) is theirs.
    gw = await open_gateway(outreach_quiet_hours=_window_around_now())
    _, body = await gw.post(order_delayed(channel="sms"))
    done = await gw.settled(body["id"])
    assert done.state is OutreachState.DEFERRED, done
    assert done.due_at is not None
    wait = done.due_at - datetime.now(UTC)
    assert timedelta(minutes=55) < wait <= timedelta(hours=1, minutes=1)
    await gw.service.sweep()
    assert gw.twilio.messages == []  # not due yet: nothing sent
    shown = await gw.get(body["id"])
    assert shown["state"] == "deferred"
    # When the window has ended, it goes out (the row is the timer).
    gw.service.clock = lambda: datetime.now(UTC) + timedelta(hours=1, minutes=2)
    await gw.service.sweep()
    await gw.twilio.wait_messages(1)
    assert (await gw.service.get(body["id"])).state is OutreachState.SENT


async def test_the_frequency_cap_skips_the_extra_ones(open_gateway: OpenGateway) -> None:
    gw = await open_gateway(outreach_max_per_day=2)
    states = []
    for n in range(3):
        done = await gw.settled((await gw.post(order_delayed(f"evt-{n}")))[1]["id"])
        states.append((done.state.value, done.error))
    assert states == [("sent", None), ("sent", None), ("skipped", "frequency_cap")]
    assert len(gw.twilio.messages) == 2
    summary = await gw.client.get("/api/v1/outreach/summary", headers=AUTH)
    figures = (await summary.json())["outreach"]
    assert figures["created"] == 3 and figures["sent"] == 2 and figures["skipped"] == 1
    assert figures["by_channel"] == {"sms": 2}


async def test_web_chat_is_used_when_the_customer_has_it_open(open_gateway: OpenGateway) -> None:
    secret = "s3cret-shared-with-the-site"
    gw = await open_gateway(webchat_identity_secret=secret)
    chat = await Chat.open(gw.client)
    user = {"id": "C-1001", "name": "Jane Doe",
            "signature": sign_user_id(secret.encode(), "C-1001")}  # fmt: skip
    await chat.hello(user=user)
    await chat.say("hello", "u1")
    await chat.reply()
    event = order_delayed(channel="webchat")
    done = await gw.settled((await gw.post(event))[1]["id"])
    assert done.state is OutreachState.SENT and done.channel is OutreachChannel.WEBCHAT, done
    frame = await chat.until(lambda f: f.get("type") == "message" and "1001" in str(f))
    assert "running late" in str(frame)
    await chat.ws.close()
    # Nobody online: a web chat-only event is skipped, not lost silently.
    later = await gw.settled((await gw.post(order_delayed("evt-2", channel="webchat")))[1]["id"])
    assert later.state is OutreachState.SKIPPED and later.error == "no_channel"
