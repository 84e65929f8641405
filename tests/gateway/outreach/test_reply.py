"""The customer's reply continues the outreach's conversation, and the agent knows why
we got in touch."""

from __future__ import annotations

from gateway.models import AuthorKind, Direction
from gateway.outreach.models import OutreachState
from tests.channels.sms.texting import Texter, eventually
from tests.gateway.outreach.conftest import (
    AUTH,
    JANE_MAIL,
    JANE_PHONE,
    Gateway,
    OpenGateway,
    order_delayed,
)
from tests.support.mail import Mailer


async def test_the_reply_is_answered_about_the_order_we_wrote_about(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway()
    done = await gw.settled((await gw.post(order_delayed()))[1]["id"])
    assert done.state is OutreachState.SENT
    texter = Texter(gw.client, JANE_PHONE)
    await texter.text("is it still coming friday?")
    await texter.drain()
    answers = await gw.twilio.wait_messages(2)
    answer = answers[-1]["Body"]
    # The embedded agent looked order 1001 up (the customer named no order).
    assert "Order 1001 has shipped" in answer, answer
    assert done.conversation_id is not None
    messages = await gw.store.conversation_messages(done.conversation_id)
    assert [(m.direction, m.author) for m in messages] == [
        (Direction.OUTBOUND, AuthorKind.SYSTEM),  # the outreach
        (Direction.INBOUND, AuthorKind.CUSTOMER),  # the reply, same conversation
        (Direction.OUTBOUND, AuthorKind.AGENT),
    ]
    events = [e.kind for e in await gw.store.events(done.conversation_id)]
    assert "outreach.sent" in events and "tool.order_lookup" in events, events
    # Replied: the summary counts it.
    summary = await gw.client.get("/api/v1/outreach/summary", headers=AUTH)
    figures = (await summary.json())["outreach"]
    assert figures["sent"] == 1 and figures["replied"] == 1


async def test_without_the_outreach_the_same_question_gets_no_order_answer(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway()
    texter = Texter(gw.client, JANE_PHONE)
    await texter.text("is it still coming friday?")
    await texter.drain()
    [answer] = await eventually(lambda: _sent(gw))
    assert "1001" not in answer["Body"]


async def _sent(gw: Gateway) -> list[dict[str, str]]:
    return list(gw.twilio.messages)


async def test_an_emailed_answer_lands_in_the_outreach_conversation(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway(email_listen="127.0.0.1:0")
    event = {"id": "evt-renew", "type": "subscription.renewing", "customer": {"account": "C-1001"},
             "data": {"plan": "Pro", "renews_on": "1 January", "amount": "$99.00"}}  # fmt: skip
    done = await gw.settled((await gw.post(event))[1]["id"])
    assert done.state is OutreachState.SENT
    [ours] = gw.relay.mails
    assert ours["Subject"] == "Your Pro subscription renews on 1 January"
    mailer = Mailer(gw.client, gw.relay)
    await mailer.send(mailer.compose(JANE_MAIL, "Can I switch to yearly billing?", reply_to=ours))
    assert done.conversation_id is not None
    messages = await gw.store.conversation_messages(done.conversation_id)
    inbound = [m for m in messages if m.direction is Direction.INBOUND]
    assert [m.text for m in inbound] == ["Can I switch to yearly billing?"]


async def test_a_reply_about_something_else_is_not_taken_for_the_order(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway()
    await gw.settled((await gw.post(order_delayed()))[1]["id"])
    texter = Texter(gw.client, JANE_PHONE)
    await texter.text("I forgot my password, can you reset it?")
    await texter.drain()
    answers = await gw.twilio.wait_messages(2)
    answer = answers[-1]["Body"]
    assert "1001" not in answer and "password" in answer.lower(), answer
