"""A turn whose words read as finished ends after the short quick-end silence;
anything else waits the whole end-of-turn silence (channels/speech/turns.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from channels.speech.audio import STT_RATE
from channels.speech.turns import looks_complete
from gateway.app import STORE
from gateway.models import ChannelKind
from gateway.protocols import Transcript
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    Recording,
    phone_app,
    phone_settings,
    signatures,
)


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("Where is my order?", True),
        ("Let me talk to a person.", True),
        ("I forgot my password!", True),
        ("yes", True),
        ("No thanks", True),
        ("I'd like to check on my", False),  # no end of sentence
        ("I'd like to check on my.", False),  # ends on a word a sentence goes on from
        ("I was calling about, um.", False),
        ("My order number is 10.", False),  # numbers come in groups with pauses
        ("My order number is one zero.", False),
        ("Well, I was wondering...", False),
        ("So the thing is -", False),
        ("", False),
        ("   ", False),
    ],
)
def test_a_transcript_reads_as_a_finished_turn_or_not(text: str, complete: bool) -> None:
    assert looks_complete(text) is complete


class OneLine:
    """`Transcriber` that hears `text` in any utterance (and counts the calls)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    async def transcribe(self, pcm16k: NDArray[np.float32], *, owner: object = None) -> Transcript:
        self.calls += 1
        await asyncio.sleep(0.01)
        size = int(np.asarray(pcm16k).size)
        return Transcript(text=self.text, confidence=0.9, duration_ms=size * 1000 // STT_RATE)

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("text", "quick_end_ms", "quick"),
    [
        ("Hi, I'm calling to check the status of my order.", 300, True),
        ("Hi, I'm calling to check the status of my", 300, False),
        ("Hi, I'm calling to check the status of my order.", 0, False),  # turned off
    ],
)
async def test_the_turn_ends_early_only_when_its_words_are_finished(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    text: str,
    quick_end_ms: int,
    quick: bool,
) -> None:
    settings = phone_settings(tmp_path, phone_quick_end_ms=quick_end_ms, phone_end_of_turn="text")
    app = phone_app(settings, OneLine(text))
    client = await aiohttp_client(app)
    sim = TwilioSimulator(str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID)
    assert await sim.start_call()
    async with asyncio.timeout(20):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
        heard_before = len(sim.received.media)
        await sim.say(recordings["order_status"].mulaw)
        await sim.until(lambda: len(sim.received.media) > heard_before)

    [turn] = (await sim.get_json(f"/twilio/calls/{sim.call_sid}"))["turns"]
    waited = turn["stages_ms"]["endpointing"]
    if quick:
        assert quick_end_ms - 50 <= waited < 500, turn
    else:
        assert waited >= 580, turn  # GATEWAY_PHONE_END_SILENCE_MS, 600
    assert turn["early_transcript"] is True  # the early transcript is what was used
    store = app[STORE]
    asked = await store.find_message(ChannelKind.PHONE, f"{sim.call_sid}:u1")
    assert asked is not None and asked.text == text
    # One utterance, not cut in two by the early end.
    assert await store.find_message(ChannelKind.PHONE, f"{sim.call_sid}:u2") is None
    await sim.close()
