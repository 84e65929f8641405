"""The outbound call of proactive outreach, played out against the local Twilio REST
stand-in: the real app (store, embedded agent, VAD, espeak-ng voice) places the call
through the real `twilio` client; the stand-in answers it as a person (opening the
Media Stream like Twilio) or as a machine (fetching the `<Play>` audio), or reports
it unanswered, with signed callbacks."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from channels.phone.call.voice import to_mulaw
from channels.phone.outbound.caller import OutboundCalls
from channels.speech.audio import FRAME_BYTES, MULAW_RATE, STT_RATE, mulaw_decode, resample
from channels.speech.stt import WhisperTranscriber
from channels.speech.tts import EspeakSynthesizer, VoiceStyle
from gateway.errors import ChannelError
from gateway.keys import OUTBOUND_CALLER, STORE
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Conversation,
    DeliveryStatus,
    Identity,
    IdentityKind,
    Message,
    Verification,
)
from gateway.protocols import Store
from tests.channels.phone.calls import (
    PUBLIC_URL,
    FakeTwilioRest,
    FixtureTranscriber,
    Recording,
    eventually,
    phone_app,
    phone_settings,
)

JANE = "+15551234567"
OUR_NUMBER = "+15550009999"
OPENING = "Hi Jane, it's about your order 1001: it's running two days late."
VOICEMAIL = "Hi Jane, this is Acme support about your order 1001. Please call us back."
SECRET = "a-secret-key-every-node-shares-0123456789"
LONG_OPENING = (
    "Hi Jane, it's about your order 1001: it's running two days late, because the"
    " carrier missed its pickup at our warehouse in Ohio on Monday, so it will now"
    " reach you on Friday instead of Wednesday, and the shipping fee has been refunded."
)


@dataclass
class Outreach:
    client: TestClient  # type: ignore[type-arg]
    calls: OutboundCalls
    store: Store
    rest: FakeTwilioRest
    api: str  # the stand-in's URL
    conversation: Conversation
    outcomes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def place(self, opening: str = OPENING, outreach_id: str = "evt-1") -> str:
        return await self.calls.place(
            to=JANE, conversation_id=self.conversation.id,
            customer_id=self.conversation.customer_id, outreach_id=outreach_id,
            opening=opening, voicemail=VOICEMAIL,
        )  # fmt: skip

    async def messages(self) -> list[Message]:
        return await self.store.conversation_messages(self.conversation.id)

    async def call_events(self, kind: str = "outreach.call") -> list[dict[str, object]]:
        return [e.data for e in await self.store.events(self.conversation.id) if e.kind == kind]


async def _outreach(
    tmp_path: Path, aiohttp_client: AiohttpClient, twilio_rest: FakeTwilioRest,
    recordings: dict[str, Recording], **extra: object,
) -> Outreach:  # fmt: skip
    api = await twilio_rest.start()
    extra.setdefault("secret_key", SECRET)  # a shared store needs one set
    settings = phone_settings(
        tmp_path, api, outbound_caller_id=OUR_NUMBER, phone_end_of_turn="text", **extra
    )
    app = phone_app(settings, FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    store = app[STORE]
    # Jane texted us before: the outreach writes in her one conversation.
    sms = Identity(kind=IdentityKind.PHONE, value=JANE, verified=Verification.SENDER)
    opened = await store.open_session(sms, ChannelKind.SMS, display_name="Jane Doe")
    calls = app[OUTBOUND_CALLER]
    assert isinstance(calls, OutboundCalls)
    outreach = Outreach(client, calls, store, twilio_rest, api, opened.conversation)

    async def hook(outreach_id: str, outcome: str) -> None:
        outreach.outcomes.append((outreach_id, outcome))

    calls.outcome_hook = hook
    return outreach


@pytest.fixture
async def outreach(
    store_url: str,  # first: the database outlives the app
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    twilio_rest: FakeTwilioRest,
    recordings: dict[str, Recording],
) -> AsyncIterator[Outreach]:
    """Jane's conversation and the outbound caller, on SQLite and on PostgreSQL."""
    yield await _outreach(tmp_path, aiohttp_client, twilio_rest, recordings, database_url=store_url)


def _mark_id(name: str) -> int:
    return int(name.split(":")[0])


async def test_the_call_is_placed_with_machine_detection_and_signed_callbacks(
    outreach: Outreach,
) -> None:
    sid = await outreach.place()
    call = outreach.rest.call(sid)
    form = call.form
    assert (form["To"], form["From"]) == (JANE, OUR_NUMBER)
    assert form["MachineDetection"] == "DetectMessageEnd"
    assert form["Method"] == "POST" and form["StatusCallbackMethod"] == "POST"
    assert form["Url"].startswith(f"{PUBLIC_URL}/twilio/outbound/answer?o=")
    assert form["StatusCallback"].startswith(f"{PUBLIC_URL}/twilio/outbound/status?o=")
    assert {"answered", "completed"} <= set(call.status_callback_events)
    assert form["Timeout"] == "25"
    [placed] = await outreach.call_events("outreach.call_placed")
    assert placed["call_sid"] == sid and placed["outreach_id"] == "evt-1"
    assert placed["opening"] == OPENING


async def test_a_person_hears_the_opening_first_then_talks_with_the_agent(
    outreach: Outreach, recordings: dict[str, Recording]
) -> None:
    sid = await outreach.place()
    answered = await outreach.rest.answer_call(sid, outreach.base, "human")
    phone = answered.phone
    assert phone is not None and not answered.played
    async with asyncio.timeout(20):
        await phone.until(lambda: bool(phone.received.marks))
        await phone.wait_quiet()
    said = await outreach.messages()
    opening = said[-1]
    assert (opening.author, opening.text, opening.channel) == (
        AuthorKind.AGENT, OPENING, ChannelKind.PHONE
    )  # fmt: skip
    assert opening.status is DeliveryStatus.SENT
    assert opening.timing is not None and opening.timing.end_ms > opening.timing.start_ms
    # The first audio the callee heard is the opening: every mark so far is its.
    assert phone.received.media and {_mark_id(n) for _, n in phone.received.marks} == {opening.id}
    conversation = await outreach.store.get_conversation(outreach.conversation.id)
    assert conversation.channel is ChannelKind.PHONE
    assert outreach.outcomes == [("evt-1", "human")]
    [event] = await outreach.call_events()
    assert (event["outcome"], event["call_sid"], event["answered_by"]) == ("human", sid, "human")

    # A spoken question is answered, in the same conversation.
    heard = len(phone.received.media)
    await phone.say(recordings["order_status"].mulaw)
    async with asyncio.timeout(20):
        await phone.until(lambda: len(phone.received.media) > heard)
        await phone.wait_quiet()
    asked, answer = (await outreach.messages())[-2:]
    assert (asked.author, asked.text) == (AuthorKind.CUSTOMER, recordings["order_status"].text)
    assert asked.conversation_id == outreach.conversation.id
    assert answer.author is AuthorKind.AGENT and answer.text

    # She hangs up; Twilio reports the call completed: no second outcome.
    await phone.hang_up()
    code = await outreach.rest.report_status(sid, outreach.base, "completed", answered_by="human")
    assert code == 204
    await eventually(lambda: _has_event(outreach, "phone.call_ended"))
    assert outreach.outcomes == [("evt-1", "human")]
    assert len(await outreach.call_events()) == 1


async def _has_event(outreach: Outreach, kind: str) -> bool:
    return bool(await outreach.call_events(kind))


async def test_speaking_over_the_opening_cuts_it_to_what_was_heard(
    outreach: Outreach, recordings: dict[str, Recording]
) -> None:
    sid = await outreach.place(LONG_OPENING)
    answered = await outreach.rest.answer_call(sid, outreach.base, "unknown")
    phone = answered.phone
    assert phone is not None  # `unknown` is treated as a person
    async with asyncio.timeout(20):
        await phone.until(lambda: bool(phone.received.media))
    await phone.say(recordings["order_status"].mulaw)
    assert phone.received.clears, "barge-in sends clear"
    async with asyncio.timeout(20):
        await phone.wait_quiet()
    said = await outreach.messages()
    agent = [m for m in said if m.author is AuthorKind.AGENT]
    [opening] = [m for m in agent if LONG_OPENING.startswith(m.text)]
    heard = opening.text.split()
    assert 0 < len(heard) < len(LONG_OPENING.split())
    events = await outreach.store.events(outreach.conversation.id)
    [cut] = [e for e in events if e.kind == "message.cut" and e.data["message_id"] == opening.id]
    assert cut.data["original"] == LONG_OPENING
    await phone.hang_up()


async def test_a_machine_gets_the_voicemail_in_our_voice_and_a_hang_up(
    outreach: Outreach,
) -> None:
    sid = await outreach.place()
    answered = await outreach.rest.answer_call(sid, outreach.base, "machine_end_beep")
    assert answered.phone is None and answered.hung_up
    assert "<Say" not in answered.twiml
    [audio] = answered.played or []
    with wave.open(io.BytesIO(audio)) as wav:  # espeak-ng, 8 kHz 16-bit, a few seconds
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert wav.getnframes() > 8000
    assert outreach.outcomes == [("evt-1", "machine")]
    [event] = await outreach.call_events()
    assert (event["outcome"], event["answered_by"]) == ("machine", "machine_end_beep")
    voicemail = (await outreach.messages())[-1]
    assert (voicemail.author, voicemail.text) == (AuthorKind.AGENT, VOICEMAIL)
    assert voicemail.status is DeliveryStatus.SENT
    # The <Play> URL is ours alone: an altered token is refused.
    play_url = answered.twiml.split("<Play>")[1].split("</Play>")[0]
    path = urlsplit(play_url).path
    forged = path[: -len(".wav") - 2] + ("AA" if not path.endswith("AA.wav") else "BB") + ".wav"
    response = await outreach.client.get(forged)
    assert response.status == 403
    # Twilio's completed callback after the hang-up is late: nothing changes.
    assert await outreach.rest.report_status(
        sid, outreach.base, "completed", answered_by="machine_end_beep"
    ) == 204  # fmt: skip
    assert outreach.outcomes == [("evt-1", "machine")]
    assert len(await outreach.call_events()) == 1


@pytest.mark.parametrize(("status", "outcome"), [("no-answer", "no_answer"), ("busy", "busy"),
                                                 ("failed", "failed")])  # fmt: skip
async def test_an_unanswered_call_reports_its_outcome_once(
    outreach: Outreach, status: str, outcome: str
) -> None:
    sid = await outreach.place()
    assert await outreach.rest.report_status(sid, outreach.base, "ringing") == 204
    assert outreach.outcomes == []
    for _ in range(2):  # Twilio retries a callback it thinks failed
        assert await outreach.rest.report_status(sid, outreach.base, status) == 204
    assert outreach.outcomes == [("evt-1", outcome)]
    [event] = await outreach.call_events()
    assert (event["outcome"], event["call_sid"]) == (outcome, sid)


async def test_forged_callbacks_are_refused(outreach: Outreach) -> None:
    sid = await outreach.place()
    call = outreach.rest.call(sid)
    params = {"CallSid": sid, "AccountSid": outreach.rest.account_sid,
              "CallStatus": "in-progress", "AnsweredBy": "human"}  # fmt: skip
    # Not signed by Twilio.
    status, _ = await outreach.rest.signed_post(
        outreach.base, call.form["Url"], params, signature="bm90IGEgc2lnbmF0dXJl"
    )
    assert status == 403
    code = await outreach.rest.report_status(sid, outreach.base, "busy", signature="Zm9yZ2Vk")
    assert code == 403
    # Signed (someone with our account's token), but our own token in the URL altered.
    url = urlsplit(call.form["Url"])
    token = parse_qs(url.query)["o"][0]
    other = f"{PUBLIC_URL}{url.path}?o={token[:-2]}{'AA' if not token.endswith('AA') else 'BB'}"
    status, _ = await outreach.rest.signed_post(outreach.base, other, params)
    assert status == 403
    assert outreach.outcomes == [] and await outreach.call_events() == []


async def test_a_refused_call_raises_a_channel_error(outreach: Outreach) -> None:
    outreach.rest.refuse_next_call(400, 21215, "Geo permission not enabled for +44")
    with pytest.raises(ChannelError, match="21215"):
        await outreach.place()
    with pytest.raises(ChannelError, match="not a phone number"):
        await outreach.calls.place(
            to="jane@example.com", conversation_id=outreach.conversation.id,
            customer_id=outreach.conversation.customer_id, outreach_id="evt-2",
            opening=OPENING, voicemail=VOICEMAIL,
        )  # fmt: skip
    assert outreach.rest.created == []


async def test_real_tiny_en_recognises_the_opening_the_callee_heard(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    twilio_rest: FakeTwilioRest,
    recordings: dict[str, Recording],
    tiny_en_model: Any,
) -> None:
    # The agent at its normal speaking rate, heard through μ-law as on a phone line.
    outreach = await _outreach(tmp_path, aiohttp_client, twilio_rest, recordings, tts_rate=170)
    sid = await outreach.place()
    phone = (await outreach.rest.answer_call(sid, outreach.base, "human")).phone
    assert phone is not None
    async with asyncio.timeout(30):
        await phone.until(lambda: bool(phone.received.marks))
    # Every frame the gateway sent, in order (no gaps from the test machine's scheduling).
    sent = b"".join(audio for _, _, audio in phone.received.media)
    heard = resample(mulaw_decode(sent), MULAW_RATE, STT_RATE)
    stt = WhisperTranscriber(tiny_en_model, workers=1, timeout_s=60.0)
    try:
        transcript = await stt.transcribe((heard / 32768.0).astype(np.float32))
    finally:
        await stt.close()
    words = transcript.text.lower()
    # Exactly the opening, whole: as long as espeak-ng's own rendering of it (whose length
    # varies by a few samples from run to run), in 20 ms frames.
    voice = EspeakSynthesizer(VoiceStyle(rate=170))
    try:
        alone = to_mulaw(await voice.synthesize(OPENING))
    finally:
        await voice.close()
    assert abs(len(sent) - len(alone)) <= FRAME_BYTES + len(alone) // 100
    # tiny.en hears espeak's names and numbers loosely ("Jane" as "Jayden", "order 1001"
    # as "older one thousand one", "two days late" as "two main blades"), and which
    # of them depends on those few samples: most words must be the opening's.
    expected = ("jane", "about", "order", "running", "days", "late")
    assert words.startswith("hi ") and sum(w in words for w in expected) >= 3, words
    await phone.hang_up()


async def test_the_callee_asking_for_a_person_is_transferred_warm(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    twilio_rest: FakeTwilioRest,
    recordings: dict[str, Recording],
) -> None:
    outreach = await _outreach(
        tmp_path, aiohttp_client, twilio_rest, recordings,
        transfer_numbers="+15550001111", transfer_caller_id="+15550008888",
    )  # fmt: skip
    sid = await outreach.place()
    phone = (await outreach.rest.answer_call(sid, outreach.base, "human")).phone
    assert phone is not None
    async with asyncio.timeout(20):
        await phone.until(lambda: bool(phone.received.marks))
        await phone.wait_quiet()
    stopping: list[asyncio.Task[None]] = []

    def redirected(call_sid: str, twiml: str) -> None:
        # Twilio runs the new TwiML at once: the call's <Connect><Stream> stops.
        if call_sid == sid and not stopping:
            stopping.append(asyncio.create_task(phone.hang_up()))

    outreach.rest.on_redirect = redirected
    await phone.say(recordings["talk_to_person"].mulaw)
    await outreach.rest.wait_until(lambda: len(outreach.rest.created) == 2, within_s=30)
    await asyncio.gather(*stopping)
    # The callee was moved into the conference, and the line rung from the transfer number.
    [(moved, twiml)] = outreach.rest.redirects
    assert moved == sid and "<Conference" in twiml
    rep = outreach.rest.created[1]
    assert (rep.form["To"], rep.form["From"]) == ("+15550001111", "+15550008888")
    # The rep's line is created before `transfer.ringing` is committed: wait for it.
    kinds: list[str] = []
    async with asyncio.timeout(10):
        while not {"transfer.requested", "transfer.ringing"} <= set(kinds):
            await asyncio.sleep(0.05)
            kinds = [e.kind for e in await outreach.store.events(outreach.conversation.id)]


async def test_a_callback_on_a_node_that_did_not_place_the_call_is_settled_once(
    pg_url: str,  # first: the database outlives both nodes
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    twilio_rest: FakeTwilioRest,
    recordings: dict[str, Recording],
) -> None:
    secret = SECRET  # both nodes sign with the same key
    first = await _outreach(
        tmp_path / "one", aiohttp_client, twilio_rest, recordings, database_url=pg_url,
        secret_key=secret,
    )  # fmt: skip
    sid = await first.place()
    # A second node on the same database and secret key (or the first, restarted): it
    # never saw the call placed, and finds it in the conversation's events.
    settings = phone_settings(
        tmp_path / "two", first.api, outbound_caller_id=OUR_NUMBER, database_url=pg_url,
        secret_key=secret,
    )  # fmt: skip
    app = phone_app(settings, FixtureTranscriber(recordings))
    other = await aiohttp_client(app)
    calls = app[OUTBOUND_CALLER]
    assert isinstance(calls, OutboundCalls)
    outcomes: list[tuple[str, str]] = []

    async def hook(outreach_id: str, outcome: str) -> None:
        outcomes.append((outreach_id, outcome))

    calls.outcome_hook = hook
    base = str(other.make_url("")).rstrip("/")
    answered = await first.rest.answer_call(sid, first.base, "machine_end_silence")
    assert answered.hung_up and answered.played
    assert first.outcomes == [("evt-1", "machine")]
    # Twilio fetches the voicemail from the other node, which never rendered it: it is
    # rendered there from the call's stored text.
    play = urlsplit(answered.twiml.split("<Play>")[1].split("</Play>")[0].replace("&amp;", "&"))
    response = await other.get(f"{play.path}?{play.query}")
    assert response.status == 200
    here, there = len(answered.played[0]), len(await response.read())
    assert abs(here - there) <= here // 100  # espeak-ng varies by a few samples a run
    # The late callback reaches the other node: the call is settled already.
    code = await first.rest.report_status(sid, base, "completed", answered_by="machine_end_silence")
    assert code == 204
    assert outcomes == []
    [event] = await first.call_events()
    assert event["outcome"] == "machine"
