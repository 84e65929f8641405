"""SMS segments as Twilio counts them (the inbound webhook's NumSegments, the REST
reply's num_segments) are the conversation's usage, once per message sid."""

from __future__ import annotations

from channels.sms.transport import EMPTY_TWIML
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_desk import SqliteDeskStore
from tests.channels.sms.texting import Texter
from tests.support.twilio_rest import FakeTwilioRest


async def test_segments_in_and_out_are_counted_once(
    texter: Texter, twilio_rest: FakeTwilioRest
) -> None:
    body = (
        "Hi, I ordered a pair of boots two weeks ago and they still haven't arrived. "
        "The order number is 1001. Could you tell me where it is and when I should "
        "expect it? I need them for a trip next weekend, thanks a lot."
    )
    form = texter.inbound_form(body)
    form["NumSegments"] = "2"  # as Twilio reports a 200-character GSM-7 text
    assert await texter.post("/twilio/sms", form) == (200, EMPTY_TWIML)
    [sent] = await twilio_rest.wait_messages(1)
    await texter.drain()
    assert await texter.post("/twilio/sms", form) == (200, EMPTY_TWIML)  # Twilio retries
    await texter.drain()
    [created] = twilio_rest.resources
    [inbound, reply] = await texter.messages()
    assert reply.external_id == created["sid"]
    store = texter.store
    assert isinstance(store, SqliteStore)
    cid = inbound.conversation_id
    used = (await SqliteDeskStore(store).usage(cid, cid)).totals
    assert used.sms_segments == 2 + int(str(created["num_segments"]))
    assert sent["Body"] == reply.text
