"""End of turn from the audio in a call (GATEWAY_PHONE_END_OF_TURN=smart): the call's
own endpointer and early transcription, fed a real recording through the phone line
frame by frame, with Smart Turn as the judge.

A caller who stops mid-sentence for 700 ms is not cut off (the silence-only rule,
600 ms, cuts them), and a finished sentence ends after the judge's short silence
instead of the long limit. The recording is one the model is sure about on the phone
line; how often it is right over many recordings is bench/end_of_turn.py's question.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from channels.phone.call.early import EarlyTranscription
from channels.speech.audio import MULAW_RATE, mulaw_encode, split_frames
from channels.speech.end_of_turn import AudioTurnJudge, SmartTurn
from channels.speech.vad import Endpointer, EndpointerConfig, UtteranceEnded
from gateway.protocols import Transcript
from tests.channels.phone.speech import load_phone, silence, speech_bounds


class Silent:
    """A transcriber that hears nothing: only the audio judge decides here."""

    async def transcribe(self, pcm16k: object, *, owner: object = None) -> object:
        raise AssertionError("not used: the transcript is not awaited in this test")

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn.load()


async def _ends(audio: np.ndarray, end_silence_ms: int, judge: AudioTurnJudge | None) -> list[int]:
    """Where (ms into the audio) each turn ended, driven as PhoneCall.on_audio drives it."""
    endpointer = Endpointer(EndpointerConfig(end_silence_ms=end_silence_ms))
    early = EarlyTranscription(
        endpointer,
        Silent(),
        quick_end_ms=0,
        metrics=None,
        judge=judge,  # type: ignore[arg-type]
    )
    ends: list[int] = []
    for frame in split_frames(mulaw_encode(audio)):
        events = endpointer.feed_mulaw(frame)
        early.update(ended=False)
        pending = early._early  # the judge takes ~30 ms, well inside one frame's 20 ms x 10
        if pending is not None and pending.judged is not None:
            await asyncio.wait({pending.judged})
        if early.complete():
            events += endpointer.end_now()
        for event in events:
            if isinstance(event, UtteranceEnded):
                ends.append(endpointer.position_ms)
                early.take(event)
    early.drop()
    return ends


def _sentence_and_pause() -> tuple[np.ndarray, int]:
    """A recorded sentence on the phone line, and where in it a natural pause falls
    (the quietest 20 ms between 40 % and 70 % of the way)."""
    pcm = load_phone("librivox_0870")
    first, last = speech_bounds(pcm)
    speech = pcm[first:last]
    step = MULAW_RATE // 50
    frames = speech[: speech.size // step * step].astype(np.float64).reshape(-1, step)
    energy = (frames**2).mean(1)
    lo, hi = int(energy.size * 0.4), int(energy.size * 0.7)
    return speech, (lo + int(np.argmin(energy[lo:hi]))) * step + step // 2


async def test_a_pause_mid_sentence_is_not_cut_and_the_end_comes_quickly(
    smart_turn: SmartTurn,
) -> None:
    speech, cut = _sentence_and_pause()
    audio = np.concatenate([silence(300), speech[:cut], silence(700), speech[cut:], silence(1500)])
    spoken_until_ms = (
        (300 * MULAW_RATE // 1000 + speech.size + 700 * MULAW_RATE // 1000) * 1000 // MULAW_RATE
    )

    judge = AudioTurnJudge(smart_turn, threshold=0.5, short_ms=200, workers=1)
    try:
        [smart_end] = await _ends(audio, 1000, judge)  # one turn: not cut at the pause
    finally:
        await judge.close()
    assert spoken_until_ms < smart_end < spoken_until_ms + 600, (smart_end, spoken_until_ms)

    silence_only = await _ends(audio, 600, None)
    assert len(silence_only) == 2  # today's silence rule cuts the caller off mid-sentence
    assert silence_only[-1] > smart_end  # ... and ends the finished turn later


class Counting:
    """A transcriber that notes how long the caller had been silent at each request."""

    def __init__(self, endpointer: Endpointer) -> None:
        self.endpointer = endpointer
        self.started_at_silence_ms: list[int] = []

    async def transcribe(self, pcm16k: np.ndarray, *, owner: object = None) -> Transcript:
        settling = self.endpointer.settling
        assert settling is not None
        self.started_at_silence_ms.append(self.endpointer.position_ms - settling[1])
        return Transcript(text="words", confidence=0.9, duration_ms=pcm16k.size // 16)

    async def close(self) -> None:
        return None


async def _early_starts(smart_turn: SmartTurn, *, spare: bool) -> tuple[list[int], int]:
    """A sentence with a 150 ms pause mid-way, driven as PhoneCall.on_audio drives it:
    the silence (ms) at which each early transcription started, and how many turns
    ended with their early transcript used."""
    speech, cut = _sentence_and_pause()
    audio = np.concatenate([silence(300), speech[:cut], silence(150), speech[cut:], silence(1500)])
    endpointer = Endpointer(EndpointerConfig(end_silence_ms=1000))
    transcriber = Counting(endpointer)
    judge = AudioTurnJudge(smart_turn, threshold=0.5, short_ms=300, workers=1)
    early = EarlyTranscription(
        endpointer, transcriber, quick_end_ms=0, metrics=None, judge=judge, spare=lambda: spare
    )
    used = 0
    try:
        for frame in split_frames(mulaw_encode(audio)):
            events = endpointer.feed_mulaw(frame)
            early.update(ended=False)
            pending = early._early
            if pending is not None and pending.judged is not None:
                await asyncio.wait({pending.judged})
            if pending is not None and pending.task is not None:
                await pending.task
            if early.complete():
                events += endpointer.end_now()
            for event in events:
                if isinstance(event, UtteranceEnded):
                    used += early.take(event) is not None
    finally:
        early.drop()
        await judge.close()
    return transcriber.started_at_silence_ms, used


async def test_no_early_transcription_at_a_short_pause_the_judge_calls_unfinished(
    smart_turn: SmartTurn,
) -> None:
    """A busy recogniser: a 150 ms pause mid-sentence starts no decode (the judge calls
    it unfinished and the silence is shorter than its `short_ms`); the finished
    sentence starts one as soon as the judge has scored it, well before `short_ms`,
    and that one is used."""
    started, used = await _early_starts(smart_turn, spare=False)
    assert used == 1
    assert len(started) == 1 and started[0] < 300, started


async def test_an_idle_recogniser_transcribes_at_every_settled_pause(
    smart_turn: SmartTurn,
) -> None:
    """An idle recogniser starts at once, before the judge has scored: at the pause
    too (that transcript is dropped when the caller goes on)."""
    started, used = await _early_starts(smart_turn, spare=True)
    assert used == 1
    assert len(started) >= 2 and max(started) <= 120, started  # every settled pause
