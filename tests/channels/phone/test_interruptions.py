"""Barge-in that behaves like a person (channels/phone/call/interruption.py).

The call's parts: what counts as a backchannel or a noise. A whole call (the real
app, VAD and espeak-ng voice over a real media websocket; the fixture transcriber):
while the agent reads out an order, the caller says "okay" and clears their throat
("hmm", no words): each stops the audio at once (`clear`), and each time the answer
goes on from where it stopped; the stored message is the whole answer, heard in
full. Then a real request cuts it for good, to what was heard.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.call.interruption import is_backchannel, is_noise
from channels.phone.tools.simulator import TwilioSimulator
from gateway.app import STORE
from gateway.protocols import Transcript
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FixtureTranscriber,
    Recording,
    _espeak,
    eventually,
    phone_app,
    phone_settings,
    signatures,
)

JANE = "+15551234567"  # on account C-1001 in the demo backend


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("Mm-hm.", True),
        ("Yeah.", True),
        ("Okay, right.", True),
        ("Uh-huh", True),
        ("I see.", True),
        ("Yeah, but where is it?", False),
        ("Let me talk to a person.", False),
        ("No.", False),  # disagreeing takes the turn
        ("", False),
    ],
)
def test_backchannels(text: str, backchannel: bool) -> None:
    assert is_backchannel(text) is backchannel


@pytest.mark.parametrize(
    ("text", "no_speech", "noise"),
    [("", 0.0, True), ("[coughing]", 0.1, True), ("(door slams)", 0.1, True),
     ("Hello?", 0.9, True), ("Hello?", 0.1, False)],
)  # fmt: skip
def test_noise(text: str, no_speech: float, noise: bool) -> None:
    heard = Transcript(text=text, confidence=0.5, duration_ms=500, no_speech_prob=no_speech)
    assert is_noise(heard) is noise


async def test_okay_and_a_throat_clearing_resume_and_a_request_cuts(
    tmp_path: Path, aiohttp_client: AiohttpClient, recordings: dict[str, Recording]
) -> None:
    okay = Recording("okay", _espeak("Okay."), "Okay.")
    hum = Recording("hum", _espeak("Hmmmmm."), "")  # not a known recording: no words
    stt = FixtureTranscriber({**recordings, "okay": okay})
    app = phone_app(phone_settings(tmp_path, tts_rate=200), stt)
    client = await aiohttp_client(app)
    store = app[STORE]
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE
    )
    assert await sim.start_call()
    async with asyncio.timeout(30):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    await sim.say(recordings["order_status"].mulaw)
    async with asyncio.timeout(30):
        await sim.wait_quiet(1.5)

    # The order's details: a long answer. Interrupt it twice without taking the turn.
    marks = len(sim.received.marks)
    await sim.press("1001#")
    async with asyncio.timeout(30):
        await sim.until(lambda: len(sim.received.marks) > marks)
    answer_id = int(sim.received.marks[-1][1].split(":")[0])
    clears = len(sim.received.clears)
    for interruption in (okay, hum):
        await sim.say(interruption.mulaw)
        # The clear goes out while the caller speaks, but the gateway may be behind the
        # caller's audio on a loaded machine: wait for it rather than expect it already.
        async with asyncio.timeout(30):
            await sim.until(lambda before=clears: len(sim.received.clears) > before)
        clears = len(sim.received.clears)
        heard = len(sim.received.media)
        async with asyncio.timeout(30):  # ... and the answer goes on
            await sim.until(lambda before=heard: len(sim.received.media) > before + 25)
    async with asyncio.timeout(60):
        await sim.wait_quiet(1.5)

    async def answer_timed() -> bool:
        # What was heard of the answer is stored once, with its voice timing, when its
        # last mark is back: wait for that write rather than for a guessed time.
        answer = next(m for m in await store.history(customer.id) if m.id == answer_id)
        return answer.timing is not None

    customer = await _jane(store)
    await eventually(answer_timed, within_s=30)
    messages = {m.id: m for m in await store.history(customer.id)}
    answer = messages[answer_id]
    assert "Tracking number" in answer.text  # the whole answer, heard in full
    events = await store.events(answer.conversation_id)
    assert not [e for e in events if e.kind == "message.cut" and e.data["message_id"] == answer_id]
    said = [m.text for m in messages.values() if m.id > answer_id]
    assert "Okay." not in said  # a backchannel is not a turn

    await sim.hang_up()


async def _jane(store: object) -> object:
    from gateway.models import Identity, IdentityKind

    customer = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=JANE))  # type: ignore[attr-defined]
    assert customer is not None
    return customer
