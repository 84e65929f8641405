"""The end-of-turn rule the gateway ships (GATEWAY_PHONE_END_OF_TURN=smart, default
settings), on real recordings through the phone line and the call's own endpointer and
early transcription: what bench/end_of_turn.py chose (docs/voice.md, End of turn).

- A finished sentence Smart Turn calls unfinished through the 8 kHz line waits
  GATEWAY_PHONE_SMART_TURN_MAX_MS (800 ms), not the 1,000 ms it used to.
- A natural pause mid-sentence that Smart Turn scores between the old threshold (0.3)
  and the new one (0.7) no longer ends the turn there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from channels.phone.call.early import EarlyTranscription
from channels.phone.setup import endpointer_config
from channels.speech.audio import MULAW_RATE, mulaw_encode, split_frames
from channels.speech.end_of_turn import AudioTurnJudge, SmartTurn
from channels.speech.vad import Endpointer, UtteranceEnded
from gateway.settings import Settings
from tests.channels.phone.calls import phone_settings
from tests.channels.phone.speech import silence, trimmed
from tests.channels.phone.test_smart_turn import Silent


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn.load()


class Scores(AudioTurnJudge):
    """The judge the gateway builds, noting each probability it gives."""

    def __init__(self, model: SmartTurn, settings: Settings) -> None:
        super().__init__(  # as channels/phone/setup.py builds it
            model,
            threshold=settings.phone_smart_turn_threshold,
            short_ms=settings.phone_smart_turn_ms,
            workers=1,
        )
        self.given: list[float] = []

    async def probability(self, audio: NDArray[np.float32]) -> float:
        p = await super().probability(audio)
        self.given.append(p)
        return p


async def _turns(settings: Settings, model: SmartTurn, item_id: str) -> tuple[list[int], Scores]:
    """Dead air (ms from the end of the recording's speech) at each end of turn, for the
    recording said once and followed by silence, driven as PhoneCall.on_audio drives it."""
    speech = trimmed(item_id)
    audio = np.concatenate([silence(300), speech, silence(1500)])
    done_ms = (300 * MULAW_RATE // 1000 + speech.size) * 1000 // MULAW_RATE
    endpointer = Endpointer(endpointer_config(settings))
    judge = Scores(model, settings)
    early = EarlyTranscription(
        endpointer,
        Silent(),  # type: ignore[arg-type]  # never asked: quick_end_ms=0 and a judge
        quick_end_ms=0,
        metrics=None,
        judge=judge,
    )
    ends: list[int] = []
    try:
        for frame in split_frames(mulaw_encode(audio)):
            events = endpointer.feed_mulaw(frame)
            early.update(ended=False)
            pending = early._early  # the judge's ~30 ms lie well inside the silence
            if pending is not None and pending.judged is not None:
                await asyncio.wait({pending.judged})
            if early.complete():
                events += endpointer.end_now()
            for event in events:
                if isinstance(event, UtteranceEnded):
                    ends.append(endpointer.position_ms - done_ms)
                    early.take(event)
        early.drop()
    finally:
        await judge.close()
    return ends, judge


async def test_a_finished_sentence_scored_unfinished_waits_the_shorter_max(
    tmp_path: Path, smart_turn: SmartTurn
) -> None:
    settings = phone_settings(tmp_path)
    # A Harvard sentence, finished, that Smart Turn scores ~0.03 through the phone line.
    [dead_ms], judge = await _turns(settings, smart_turn, "sb_spk2_snt1")
    assert max(judge.given) < settings.phone_smart_turn_threshold, judge.given
    # It waits the whole max wait (plus the VAD's ~50 ms to hear the silence start) ...
    assert settings.phone_smart_turn_max_ms <= dead_ms < settings.phone_smart_turn_max_ms + 150
    assert dead_ms < 950, dead_ms  # ... which is 800 ms now: 1,000 ms before


async def test_a_pause_mid_sentence_between_the_old_and_new_threshold_is_not_cut(
    tmp_path: Path, smart_turn: SmartTurn
) -> None:
    settings = phone_settings(tmp_path)
    # "A thin stripe runs down the middle": Smart Turn scores its natural pause ~0.5.
    ends, judge = await _turns(settings, smart_turn, "sb_spk1_snt4")
    assert len(ends) == 1, (ends, judge.given)  # one turn: not cut off at the pause
    at_pause = judge.given[0]
    assert 0.3 <= at_pause < settings.phone_smart_turn_threshold, judge.given  # 0.3 cut here
    assert 0 < ends[0] < 500, ends  # and the finished sentence ended quickly (scored ~0.97)
