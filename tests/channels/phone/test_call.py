"""Whole phone calls over a real websocket, against the real app.

Twilio's side is `TwilioSimulator` (real-time audio, marks echoed after
playback, `clear` honoured). The gateway runs its real store, embedded agent,
VAD and espeak-ng voice; only speech recognition is the deterministic
`FixtureTranscriber`, and Twilio's REST API is a local server in the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from gateway.app import DISPATCHER, STORE
from gateway.models import (
    AuthorKind,
    ChannelKind,
    ConversationState,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_desk import SqliteDeskStore
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FakeTwilioRest,
    FixtureTranscriber,
    Recording,
    eventually,
    phone_app,
    phone_settings,
    signatures,
)

JANE = "+15551234567"  # on account C-1001 in the demo backend


def mark_message(name: str) -> int:
    return int(name.split(":")[0])


async def test_a_whole_call_with_keys_and_barge_in(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    twilio_rest: FakeTwilioRest,
) -> None:
    api = await twilio_rest.start()
    stt = FixtureTranscriber(recordings)
    app = phone_app(phone_settings(tmp_path, api, phone_end_of_turn="text"), stt)
    client = await aiohttp_client(app)
    store, dispatcher = app[STORE], app[DISPATCHER]

    # Jane chatted on the web first, signed in as account C-1001.
    web = await dispatcher.handle(
        InboundMessage(
            channel=ChannelKind.WEBCHAT,
            identity=Identity(
                kind=IdentityKind.ACCOUNT, value="C-1001", verified=Verification.HMAC
            ),
            text="Hello, I have a question about my order",
            account_ref="C-1001",
            display_name="Jane Doe",
        )
    )
    await dispatcher.drain()

    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE
    )
    assert await sim.start_call()
    async with asyncio.timeout(20):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()

    # Greeted by name, in the same conversation as the web chat.
    conversation = await store.get_conversation(web.conversation.id)
    assert conversation.channel is ChannelKind.PHONE
    assert set(conversation.channels) == {ChannelKind.WEBCHAT, ChannelKind.PHONE}
    said = await store.conversation_messages(conversation.id)
    greeting = said[-1]
    assert greeting.author is AuthorKind.AGENT
    assert greeting.text == "Hi Jane. Thanks for calling support. How can I help you today?"
    assert greeting.timing is not None and greeting.timing.end_ms > greeting.timing.start_ms

    # A spoken question, answered.
    question = recordings["order_status"]
    heard_before = len(sim.received.media)
    await sim.say(question.mulaw)
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.media) > heard_before)
        await sim.wait_quiet()
    said = await store.conversation_messages(conversation.id)
    asked, answer = said[-2], said[-1]
    assert (asked.author, asked.text, asked.channel) == (
        AuthorKind.CUSTOMER, question.text, ChannelKind.PHONE
    )  # fmt: skip
    assert asked.confidence == pytest.approx(0.87)
    assert asked.timing is not None and asked.timing.end_ms - asked.timing.start_ms > 2000
    assert asked.external_id == f"{sim.call_sid}:u1"
    assert "order number" in answer.text
    assert answer.timing is not None

    # The turn's stage timings: in the call's JSON, in order, and in the metrics.
    [turn] = (await sim.get_json(f"/twilio/calls/{sim.call_sid}"))["turns"]
    assert (turn["message_id"], turn["reply_id"]) == (asked.id, answer.id)
    points = ["speech_end_ms", "utterance_end_ms", "transcript_ms", "reply_ms", "first_audio_ms"]
    times = [turn[name] for name in points]
    assert all(isinstance(t, int) for t in times) and times == sorted(times), turn
    assert asked.timing.end_ms - 100 <= turn["speech_end_ms"] <= asked.timing.end_ms + 300
    stages = turn["stages_ms"]
    # With the text rule (GATEWAY_PHONE_END_OF_TURN=text) a finished sentence ends the
    # turn after GATEWAY_PHONE_QUICK_END_MS (300), well
    # before GATEWAY_PHONE_END_SILENCE_MS (600): see test_quick_end.py.
    assert 250 <= stages["endpointing"] < 500
    assert turn["early_transcript"] is True  # transcribed while the end of turn ran
    assert stages["total"] == sum(stages[s] for s in ("endpointing", "stt", "agent", "tts"))
    metrics = (await (await client.get("/metrics")).text()).splitlines()
    for stage in ("endpointing", "stt", "agent", "tts", "total"):
        assert f'gateway_voice_stage_seconds_count{{stage="{stage}"}} 1.0' in metrics
    assert 'gateway_voice_early_transcripts_total{outcome="used"} 1.0' in metrics

    # The order number on the keypad; barge in once its first sentence has been heard.
    marks_before = len(sim.received.marks)
    await sim.press("1001#")
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.marks) > marks_before)
    order_answer_id = mark_message(sim.received.marks[-1][1])
    interruption = recordings["talk_to_person"]
    started, _ = await sim.say(interruption.mulaw)
    assert sim.received.clears, "barge-in sends clear"
    onset = started + interruption.onset_s
    assert 0 < sim.received.clears[0] - onset <= 0.25

    # ... and asks for a person: wait until the handover and the hold prompt have played.
    async with asyncio.timeout(20):
        await sim.until(lambda: mark_message(sim.received.marks[-1][1]) > order_answer_id + 2)
        await sim.wait_quiet()
    await asyncio.sleep(0.1)  # the last timing is stored right after its mark
    by_id = {m.id: m for m in await store.conversation_messages(conversation.id)}
    cut = by_id[order_answer_id]
    keyed = by_id[order_answer_id - 1]
    assert (keyed.text, keyed.confidence) == ("Keyed in 1001", 1.0)
    assert cut.text.startswith("Order 1001 has shipped with UPS.")
    events = [e for e in await store.events(conversation.id) if e.kind == "message.cut"]
    [event] = [e for e in events if e.data["message_id"] == order_answer_id]
    assert event.data["text"] == cut.text and len(cut.text) < len(event.data["original"])
    assert event.data["original"].startswith(cut.text)
    assert "Tracking number" in event.data["original"]

    # The interruption asked for a person: handed over, and the caller is told to hold.
    conversation = await store.get_conversation(conversation.id)
    assert conversation.state is ConversationState.QUEUED
    later = [m for m in by_id.values() if m.id > order_answer_id]
    assert [m.author for m in later] == [AuthorKind.CUSTOMER, AuthorKind.AGENT, AuthorKind.AGENT]
    assert later[0].text == interruption.text
    assert "passing you to a member of our team" in later[1].text
    assert later[2].text == "One moment please, I am connecting you to a person."
    assert all(m.timing is not None for m in later)
    # Early transcripts of a turn's audio taken while its end was still being
    # decided may not match a whole recording (None); no such text was stored
    # (the stored messages above), and both utterances were recognised.
    assert [h for h in stt.heard if h is not None] == ["order_status", "talk_to_person"]

    # The caller hangs up: Twilio's (signed) status callback ends the call's session.
    status = {"CallSid": sim.call_sid, "AccountSid": ACCOUNT_SID, "CallStatus": "completed",
              "CallDuration": "47"}  # fmt: skip
    assert await sim.post("/twilio/voice/status", status) == ""
    async with asyncio.timeout(10):
        await sim.until(lambda: sim.closed)
    assert await sim.post("/twilio/voice/status", status) == ""  # Twilio retries: counted once

    async def ended() -> list[dict[str, object]]:
        events = await store.events(conversation.id)
        return [e.data for e in events if e.kind == "phone.call_ended"]

    [end] = await eventually(ended)
    assert end["call_sid"] == sim.call_sid
    assert end["reason"] == "Twilio reports the call completed"  # not just "stream closed"
    assert twilio_rest.requests == []
    # The call's usage (the cost report): Twilio's duration, every transcription asked
    # for (early ones too) and the speech synthesised for it, stored with its end.
    assert isinstance(store, SqliteStore)
    cid = conversation.id
    used = (await SqliteDeskStore(store).usage(cid, cid)).totals
    assert used.call_s == 47
    assert used.stt_ms == sum(stt.durations_ms) > 0
    assert used.tts_ms > 0


async def test_the_agent_hangs_up_after_its_goodbye_has_been_heard(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    twilio_rest: FakeTwilioRest,
) -> None:
    api = await twilio_rest.start()
    app = phone_app(phone_settings(tmp_path, api), FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    store = app[STORE]
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller="+442071838750"
    )
    twilio_rest.live.add(sim.call_sid)
    hang_ups: list[asyncio.Task[None]] = []
    twilio_rest.on_completed = lambda sid: hang_ups.append(asyncio.create_task(sim.hang_up()))
    assert await sim.start_call()
    async with asyncio.timeout(20):
        await sim.until(lambda: bool(sim.received.marks))
    customer = await store.find_customer(Identity(kind=IdentityKind.PHONE, value="+442071838750"))
    assert customer is not None and customer.display_name is None  # not on any account
    [greeting] = await store.history(customer.id)
    assert greeting.text == "Thanks for calling support. How can I help you today?"

    await sim.say(recordings["goodbye"].mulaw)
    async with asyncio.timeout(20):
        await sim.until(lambda: sim.closed)
    [(completed_at, call_sid, form)] = twilio_rest.requests
    assert (call_sid, form) == (sim.call_sid, {"Status": "completed"})
    said = await store.history(customer.id)
    assert [m.text for m in said[1:]] == ["Bye now.", "Thanks for contacting us. Have a good day!"]
    goodbye_marks = [at for at, name in sim.received.marks if mark_message(name) == said[-1].id]
    assert goodbye_marks and completed_at >= goodbye_marks[-1]  # heard first, then hung up
    assert not sim.received.clears

    # Completing a call that has already ended (Twilio error 20404) is not an error.
    from channels.phone.twilio.rest import TwilioCalls

    calls = TwilioCalls(ACCOUNT_SID, "test-auth-token-0123456789abcdef", api)
    try:
        assert await calls.complete(sim.call_sid) is False
    finally:
        await calls.close()
