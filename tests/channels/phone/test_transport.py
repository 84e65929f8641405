"""The phone channel's Twilio side: signatures, TwiML, bad stream messages, a stream
that ends without `stop`, a line without a speech model, and the real recogniser."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from channels.phone.twilio.transport import caller_identity
from channels.speech.audio import mulaw_decode
from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures
from gateway.app import METRICS, STORE
from gateway.models import AuthorKind, Identity, IdentityKind, Message, Verification
from gateway.protocols import Store
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    FixtureTranscriber,
    Recording,
    eventually,
    phone_app,
    phone_settings,
    signatures,
)
from tests.channels.phone.speech import speech_bounds
from tests.support.whisper_model import build_random_whisper

CALL = {"CallSid": "CA" + "5" * 32, "AccountSid": ACCOUNT_SID, "From": "+15550001111",
        "To": "+15550002222", "CallStatus": "ringing"}  # fmt: skip


def signed(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    sig = TwilioSignatures(token, PUBLIC_URL, "wss://support.example.com").sign(url, params)
    return {SIGNATURE_HEADER: sig}


async def events_of(store: Store, customer_phone: str, kind: str) -> list[dict[str, Any]]:
    """The `kind` events of the conversation of the customer with this number."""
    caller = Identity(kind=IdentityKind.PHONE, value=customer_phone)
    customer = await store.find_customer(caller)
    history = await store.history(customer.id, limit=1) if customer is not None else []
    if not history:
        return []
    events = await store.events(history[0].conversation_id)
    return [e.data for e in events if e.kind == kind]


async def test_webhooks_and_the_stream_refuse_forged_requests(
    tmp_path: Path, aiohttp_client: AiohttpClient, recordings: dict[str, Recording]
) -> None:
    app = phone_app(phone_settings(tmp_path), FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    voice = f"{PUBLIC_URL}/twilio/voice"

    ok = await client.post("/twilio/voice", data=CALL, headers=signed(voice, CALL))
    assert ok.status == 200 and ok.content_type == "text/xml"
    twiml = await ok.text()
    assert '<Stream url="wss://support.example.com/twilio/media">' in twiml
    assert f'<Parameter name="callSid" value="{CALL["CallSid"]}" />' in twiml
    assert '<Parameter name="token" value="' in twiml  # the caller travels signed, inside

    forged = [
        {},  # unsigned
        signed(voice, CALL, token="someone-else"),  # another token
        signed(voice, {**CALL, "From": "+19990000000"}),  # signed other parameters
        signed("https://evil.example.com/twilio/voice", CALL),  # signed another URL
    ]
    for headers in forged:
        refused = await client.post("/twilio/voice", data=CALL, headers=headers)
        assert refused.status == 403
    other_account = {**CALL, "AccountSid": "AC" + "9" * 32}
    refused = await client.post(
        "/twilio/voice", data=other_account, headers=signed(voice, other_account)
    )
    assert refused.status == 403

    status = {**CALL, "CallStatus": "completed"}
    status_url = f"{PUBLIC_URL}/twilio/voice/status"
    assert (await client.post("/twilio/voice/status", data=status)).status == 403
    headers = signed(status_url, status)
    done = await client.post("/twilio/voice/status", data=status, headers=headers)
    assert done.status == 204

    stream_url = "wss://support.example.com/twilio/media"
    for headers in ({}, signed(stream_url, {}, token="someone-else"), signed(voice, {})):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused_ws:
            await client.ws_connect("/twilio/media", headers=headers)
        assert refused_ws.value.status == 403
    ws = await client.ws_connect("/twilio/media", headers=signed(stream_url, {}))
    await ws.close()
    assert app[METRICS].bad_input.labels("phone", "signature")._value.get() == 9


async def test_without_an_auth_token_everything_is_refused(
    tmp_path: Path, aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = phone_settings(tmp_path, twilio_auth_token=None)
    client = await aiohttp_client(phone_app(settings, None))
    voice = f"{PUBLIC_URL}/twilio/voice"
    response = await client.post("/twilio/voice", data=CALL, headers=signed(voice, CALL))
    assert response.status == 403
    assert "GATEWAY_TWILIO_AUTH_TOKEN is unset" in caplog.text


async def test_without_a_speech_model_the_line_apologises(
    tmp_path: Path, aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = phone_settings(tmp_path, stt_model=str(tmp_path / "no-model-here"))
    client = await aiohttp_client(phone_app(settings, None))
    assert "gateway models pull" in caplog.text and "phone channel off" in caplog.text
    assert (await client.get("/healthz")).status == 200  # the gateway itself runs on
    voice = f"{PUBLIC_URL}/twilio/voice"
    response = await client.post("/twilio/voice", data=CALL, headers=signed(voice, CALL))
    assert response.status == 200
    twiml = await response.text()
    assert "<Say>Sorry, our phone line is not available right now." in twiml
    assert "<Hangup />" in twiml and "<Stream" not in twiml
    stream_url = "wss://support.example.com/twilio/media"
    with pytest.raises(aiohttp.WSServerHandshakeError) as off:
        await client.ws_connect("/twilio/media", headers=signed(stream_url, {}))
    assert off.value.status == 503


async def test_bad_stream_messages_are_dropped_and_the_call_goes_on(
    tmp_path: Path, aiohttp_client: AiohttpClient, recordings: dict[str, Recording]
) -> None:
    app = phone_app(phone_settings(tmp_path), FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    sim = TwilioSimulator(str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID,
                          caller="anonymous")  # fmt: skip
    assert await sim.start_call()
    async with asyncio.timeout(10):
        await sim.until(lambda: bool(sim.received.media))
    big = base64.b64encode(b"\xff" * 9000).decode()

    def media(seq: str, chunk: str, payload: str) -> str:
        body = {"track": "inbound", "chunk": chunk, "timestamp": "1", "payload": payload}
        return json.dumps({"event": "media", "sequenceNumber": seq,
                           "streamSid": sim.stream_sid, "media": body})  # fmt: skip

    start = {
        "accountSid": ACCOUNT_SID,
        "streamSid": sim.stream_sid,
        "callSid": sim.call_sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    bad = [
        "this is not JSON",
        json.dumps(["an", "array"]),
        json.dumps({"event": "surprise", "streamSid": sim.stream_sid}),
        "x" * 100_000,  # oversized
        media("999990", "999990", big),  # a payload over 8 KiB
        media("999991", "999991", "%%%"),  # not base64
        media("1", "2", "/w=="),  # an old sequence number
        json.dumps({"event": "dtmf", "sequenceNumber": "999992", "streamSid": "MZother",
                    "dtmf": {"track": "inbound_track", "digit": "5"}}),  # another stream
        json.dumps({"event": "start", "sequenceNumber": "999993", "streamSid": sim.stream_sid,
                    "start": start}),  # a second start
        json.dumps({"event": "mark", "sequenceNumber": "5", "streamSid": sim.stream_sid,
                    "mark": {"name": "nothing:0"}}),  # an old sequence number again
    ]  # fmt: skip
    for raw in bad:
        await sim.send_raw(raw)
    await sim.send_raw(b"\x00\x01binary")
    # None of that moved the stream's sequence on: the call goes on as before.
    await sim.wait_quiet()
    heard = len(sim.received.media)
    await sim.press("1001#")
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.media) > heard + 10)
    assert not sim.closed
    bad_input = app[METRICS].bad_input
    counts = {code: bad_input.labels("phone", code)._value.get() for code in (
        "bad_json", "bad_message", "unknown_event", "message_too_large", "payload_too_large",
        "bad_payload", "out_of_order", "wrong_stream", "duplicate_start", "binary")}  # fmt: skip
    assert all(count >= 1 for count in counts.values()), counts
    await sim.hang_up()


async def test_a_stream_that_ends_without_stop_ends_the_call_cleanly(
    tmp_path: Path, aiohttp_client: AiohttpClient, recordings: dict[str, Recording]
) -> None:
    stt = FixtureTranscriber(recordings)
    app = phone_app(phone_settings(tmp_path), stt)
    client = await aiohttp_client(app)
    sim = TwilioSimulator(str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID,
                          caller="+15550003333")  # fmt: skip
    assert await sim.start_call()
    async with asyncio.timeout(10):
        await sim.until(lambda: bool(sim.received.marks))  # the greeting has been heard
    question = recordings["password_reset"]
    _, speech_end = speech_bounds(mulaw_decode(question.mulaw))
    await sim.say(question.mulaw[:speech_end])
    await asyncio.sleep(0.25)  # silent, but not long enough to end the turn
    await sim.close()  # the socket goes away, without `stop`
    store = app[STORE]
    ended = await eventually(lambda: events_of(store, "+15550003333", "phone.call_ended"))
    assert ended[0]["reason"] == "stream closed"
    customer = await store.find_customer(caller_identity("+15550003333", sim.call_sid))
    assert customer is not None
    said = await store.history(customer.id)
    assert [(m.author, m.text) for m in said][:2] == [
        (AuthorKind.AGENT, "Thanks for calling support. How can I help you today?"),
        (AuthorKind.CUSTOMER, question.text),  # the turn the stream's end cut short
    ]
    assert customer.identities[0].verified is Verification.CALLER_ID


def test_caller_identity_is_e164_or_one_per_call() -> None:
    jane = caller_identity("+15551234567", "CA1")
    assert (jane.key, jane.verified) == ("phone:+15551234567", Verification.CALLER_ID)
    for withheld in ("anonymous", "+266696687", "client:alice", "sip:bob@example.com", ""):
        assert caller_identity(withheld, "CA1").key == "phone:call:CA1"


@pytest.fixture(scope="module")
def random_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_whisper(tmp_path_factory.mktemp("whisper") / "tiny.en", "tiny.en")


async def test_the_real_recogniser_runs_through_a_call(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    random_whisper: Path,
) -> None:
    # No transcriber given: the app loads the (random-weight) model itself, as in production.
    settings = phone_settings(
        tmp_path, stt_model=str(random_whisper), stt_workers=1, stt_cpu_threads=1
    )
    app = phone_app(settings, None)
    client = await aiohttp_client(app)
    sim = TwilioSimulator(str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID,
                          caller="+15550004444")  # fmt: skip
    assert await sim.start_call()
    await sim.say(recordings["talk_to_person"].mulaw)
    store = app[STORE]
    customer = await store.find_customer(caller_identity("+15550004444", sim.call_sid))
    assert customer is not None

    async def said() -> list[Message]:
        history = await store.history(customer.id)
        return [m for m in history if m.author is AuthorKind.CUSTOMER]

    [utterance] = await eventually(said, within_s=30)
    assert utterance.text  # random weights: nonsense, but words
    assert utterance.confidence is not None and 0.0 <= utterance.confidence <= 1.0
    assert utterance.timing is not None
    await sim.hang_up()
