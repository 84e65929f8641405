"""Outreach's side of the outbound call seam (`OUTBOUND_CALLER`): what it asks the
caller to say, and what it makes of the outcome the caller reports. The call itself
(Twilio's REST API, the media stream, machine detection) is the phone side's."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.errors import ChannelError
from gateway.keys import OUTBOUND_CALLER
from gateway.outreach.caller import OutboundCaller
from gateway.outreach.models import OutreachChannel, OutreachState
from tests.gateway.outreach.conftest import JANE_PHONE, Gateway, OpenGateway, order_delayed


class RecordingCaller:
    """An `OutboundCaller` that records what it was asked (or refuses, like Twilio)."""

    def __init__(self, refuse: bool = False) -> None:
        self.placed: list[dict[str, Any]] = []
        self.refuse = refuse

    async def place(self, *, to: str, conversation_id: int, customer_id: int, outreach_id: str,
                    opening: str, voicemail: str) -> str:  # fmt: skip
        if self.refuse:
            raise ChannelError("Twilio refused the call (21215)")
        self.placed.append({"to": to, "conversation_id": conversation_id, "opening": opening,
                            "voicemail": voicemail, "outreach_id": outreach_id})  # fmt: skip
        return f"CA{len(self.placed):032x}"


async def _placed(gw: Gateway, outreach_id: str) -> None:
    """Wait until the sender loop placed the call (the row waits for its outcome)."""
    async with asyncio.timeout(10):
        while True:
            if (await gw.service.get(outreach_id)).call_sid is not None:
                return
            await asyncio.sleep(0.02)


def _with(caller: OutboundCaller) -> Any:
    def before(app: web.Application) -> None:
        app[OUTBOUND_CALLER] = caller

    return before


async def test_a_call_opens_with_the_reason_and_a_person_answering_delivers_it(
    open_gateway: OpenGateway,
) -> None:
    caller = RecordingCaller()
    gw = await open_gateway(before=_with(caller))
    outreach_id = (await gw.post(order_delayed(channel="call")))[1]["id"]
    await _placed(gw, outreach_id)
    [placed] = caller.placed
    assert placed["to"] == JANE_PHONE and placed["outreach_id"] == outreach_id
    assert placed["opening"].startswith("Hi Jane, it's about your order 1001: it's running late")
    assert "Friday" in placed["voicemail"]
    sending = await gw.service.get(outreach_id)
    assert sending.state is OutreachState.SENDING and sending.call_sid is not None
    await gw.service.call_outcome(outreach_id, "human")
    shown = await gw.get(outreach_id)
    assert shown["state"] == "delivered" and shown["outcome"] == "human"
    await gw.service.sweep()
    assert len(caller.placed) == 1 and gw.twilio.messages == []  # nothing else sent


async def test_an_unanswered_call_moves_on_to_the_next_channel(open_gateway: OpenGateway) -> None:
    caller = RecordingCaller()
    gw = await open_gateway(before=_with(caller))
    outreach_id = (await gw.post(order_delayed(channel="call")))[1]["id"]
    await _placed(gw, outreach_id)
    await gw.service.call_outcome(outreach_id, "no_answer")
    done = await gw.settled(outreach_id)
    # Forced to calls only: nothing left to try.
    assert done.state is OutreachState.FAILED and done.tried == (OutreachChannel.CALL,)
    assert done.error == "no_answer" and len(caller.placed) == 1


async def test_a_refused_call_falls_back_and_without_a_caller_no_call_is_tried(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway(before=_with(RecordingCaller(refuse=True)))
    outreach_id = (await gw.post(order_delayed(channel="call")))[1]["id"]
    done = await gw.settled(outreach_id)
    assert done.state is OutreachState.FAILED and done.error == "call_failed"
