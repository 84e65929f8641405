"""A rep answers an SMS customer through Twilio, and the customer rates by digit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.routing.rating import SMS_PROMPT, THANKS
from tests.channels.sms.texting import OUR_NUMBER, Texter, eventually, sms_settings
from tests.gateway.routing.desk import Desk, HandoverBrain
from tests.support.twilio_rest import FakeTwilioRest


async def test_a_rep_reply_goes_out_by_sms_and_the_customer_rates_with_a_digit(
    tmp_path: Path,
    twilio_rest: FakeTwilioRest,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    api_url = await twilio_rest.start()
    settings = sms_settings(tmp_path, api_url, twilio_sms_from=OUR_NUMBER)
    brain = HandoverBrain()
    client = await aiohttp_client(create_app(settings, brain=brain))
    desk, texter = Desk(client, brain), Texter(client)
    rep = await desk.rep("ann", "billing")

    assert (await texter.text("human billing"))[0] == 200
    await texter.drain()
    offer_id, conv_id = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    sent_before = len(twilio_rest.messages)
    await desk.service.reply(rep.id, conv_id, "Ann here: your refund is on its way.")
    sent = await twilio_rest.wait_messages(sent_before + 1)
    assert sent[-1]["Body"] == "Ann here: your refund is on its way."
    assert sent[-1]["To"] == texter.number and sent[-1]["From"] == OUR_NUMBER

    # HELP is answered by the SMS channel itself; the rep still sees it on the console.
    assert (await texter.text("HELP"))[0] == 200
    await texter.drain()
    events = await desk.routing.console_events(rep.id, (), 0, 100)
    seen_texts = [e.data["message"]["text"] for e in events if e.kind == "message"]
    assert seen_texts == ["HELP"]
    sent_before = len(await twilio_rest.wait_messages(sent_before + 2)) - 1

    await desk.service.close(rep.id, conv_id, "resolved")
    await twilio_rest.wait_messages(sent_before + 2)
    assert twilio_rest.messages[-1]["Body"] == SMS_PROMPT
    seen = len(brain.seen)
    assert (await texter.text("5"))[0] == 200
    await texter.drain()
    await twilio_rest.wait_messages(sent_before + 3)
    assert twilio_rest.messages[-1]["Body"] == THANKS
    assert len(brain.seen) == seen, "the agent answered the rating digit"
    events = await eventually(lambda: texter.store.events(conv_id))
    assert [e.data["score"] for e in events if e.kind == "rating"] == [5]

    # A digit with no rating asked for is an ordinary message for the agent.
    assert (await texter.text("3"))[0] == 200
    await texter.drain()
    assert brain.seen[-1] == "3"
