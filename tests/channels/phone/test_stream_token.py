"""A Media Stream is bound to the call our signed voice webhook answered: a replayed
upgrade signature opens nothing, and the caller is who the webhook said."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from channels.phone.twilio.stream_token import StreamTokens
from channels.phone.twilio.transport import caller_identity
from gateway.app import METRICS, STORE
from gateway.errors import AuthError
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FixtureTranscriber,
    Recording,
    phone_app,
    phone_settings,
    signatures,
)

JANE = "+15551234567"  # a customer with an account in the demo data
STREAM_URL = "wss://support.example.com/twilio/media"


def test_tokens_are_bound_one_time_and_expire() -> None:
    tokens = StreamTokens(b"k" * 32)
    call, other = "CA" + "1" * 32, "CA" + "2" * 32
    token = tokens.issue(call, "+15550001111")
    with pytest.raises(AuthError):
        tokens.redeem(token, other)  # another call's stream
    assert tokens.redeem(token, call).caller == "+15550001111"
    with pytest.raises(AuthError):
        tokens.redeem(token, call)  # once only
    with pytest.raises(AuthError):
        tokens.redeem(token[:-2] + "xx", call)  # tampered
    with pytest.raises(AuthError):
        StreamTokens(b"another key " * 3).redeem(tokens.issue(other, JANE), other)
    with pytest.raises(AuthError):
        tokens.redeem("", other)
    expired = StreamTokens(b"k" * 32, ttl_s=-1)
    with pytest.raises(AuthError):
        expired.redeem(expired.issue(other, JANE), other)


async def _refused(sim: TwilioSimulator) -> None:
    async with asyncio.timeout(10):
        await sim.until(lambda: sim.closed)
    assert sim.received.media == []  # never greeted


async def test_a_replayed_upgrade_opens_no_call_and_start_cannot_name_the_caller(
    tmp_path: Path, aiohttp_client: AiohttpClient, recordings: dict[str, Recording]
) -> None:
    app = phone_app(phone_settings(tmp_path), FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    base = str(client.make_url(""))
    store = app[STORE]

    # The outside check's replay: a call that never reached /twilio/voice, Jane's number.
    forged = TwilioSimulator(base, signatures(), call_sid="CA" + "7" * 32,
                             account_sid=ACCOUNT_SID, caller=JANE)  # fmt: skip
    await forged.connect(STREAM_URL, {"callSid": forged.call_sid, "from": JANE})
    await _refused(forged)

    # A real call's token, replayed for another call sid: refused too.
    real = TwilioSimulator(base, signatures(), call_sid="CA" + "8" * 32,
                           account_sid=ACCOUNT_SID, caller="+15550009999")  # fmt: skip
    answer = await real.dial()
    assert answer is not None
    url, parameters = answer
    assert "from" not in parameters and parameters["callSid"] == real.call_sid
    other = TwilioSimulator(base, signatures(), call_sid="CA" + "9" * 32,
                            account_sid=ACCOUNT_SID, caller=JANE)  # fmt: skip
    await other.connect(url, {**parameters, "callSid": other.call_sid, "from": JANE})
    await _refused(other)

    # The real call streams; a `from` slipped into its start changes nothing.
    await real.connect(url, {**parameters, "from": JANE})
    async with asyncio.timeout(10):
        await real.until(lambda: bool(real.received.media))
    assert await store.find_customer(caller_identity("+15550009999", real.call_sid)) is not None
    assert await store.find_customer(caller_identity(JANE, "-")) is None  # Jane never called

    # The same token again (a replay of the whole stream): refused.
    again = TwilioSimulator(base, signatures(), call_sid=real.call_sid,
                            account_sid=ACCOUNT_SID, caller=JANE)  # fmt: skip
    await again.connect(url, parameters)
    await _refused(again)
    await real.hang_up()
    assert app[METRICS].bad_input.labels("phone", "stream_token")._value.get() == 3
