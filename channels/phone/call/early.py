"""Early transcription of a caller's turn, while its end-of-turn silence runs out.

- Once the caller has been quiet for `settle_ms` (100 ms), the speech of the
  utterance that silence will end is settled (`Endpointer.tentative`), so it is
  transcribed right away instead of after the silence. When the turn ends with
  that same speech (its audio then carries at most more of the silence after
  it) the transcript is used as is; when the caller speaks on, it is dropped (a
  decode not started yet is cancelled).
- Quick end: when that early transcript reads as a finished turn
  (channels/speech/turns.py) the turn may end after `quick_end_ms` of silence
  rather than the full end-of-turn silence; anything else waits it out.
- With an audio judge (GATEWAY_PHONE_END_OF_TURN=smart, channels/speech/
  end_of_turn.py) the same settled audio is also scored by Smart Turn, and that
  score decides instead of the transcript's punctuation: complete ends the turn
  after the judge's `short_ms` of silence, incomplete waits out the (longer)
  end-of-turn silence.

`EarlyTranscription` holds at most one such transcription for one call; the
call (channels/phone/call/phone_call.py) drives it frame by frame and ends the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from channels.speech.end_of_turn import AudioTurnJudge
from channels.speech.turns import looks_complete
from channels.speech.vad import Endpointer, UtteranceEnded
from gateway.metrics import Metrics
from gateway.protocols import Transcriber, Transcript


class EarlyTranscription:
    """The early transcription of one call's turn in progress; see the module docstring."""

    def __init__(
        self,
        endpointer: Endpointer,
        transcriber: Transcriber,
        *,
        quick_end_ms: int,
        metrics: Metrics | None,
        judge: AudioTurnJudge | None = None,
        owner: Hashable | None = None,
    ) -> None:
        self._endpointer = endpointer
        self._owner = owner  # the call, for the recogniser's fair queueing
        self._transcriber = transcriber
        self._quick_end_ms = quick_end_ms
        self._metrics = metrics
        self._judge = judge
        self._early: _Early | None = None  # transcribing what the silence may end

    def update(self, *, ended: bool) -> None:
        """After each frame: transcribe the utterance the silence in progress will end,
        if it lasts (nothing new once the call has `ended`); drop the one started for a
        silence the caller broke."""
        bounds = self._endpointer.settling
        early = self._early
        if early is not None:
            if early.bounds == bounds:
                return
            self._early = None
            self._drop(early)  # the caller spoke on
        if bounds is None or ended:
            return
        utterance = self._endpointer.tentative()
        if utterance is None:
            return
        audio = utterance.audio_float32()
        task = asyncio.ensure_future(self._transcriber.transcribe(audio, owner=self._owner))
        task.add_done_callback(_quietly)
        judged: asyncio.Future[float] | None = None
        if self._judge is not None:
            judged = asyncio.ensure_future(self._judge.probability(audio))
            judged.add_done_callback(_quietly)
        self._early = _Early(bounds, utterance.audio_start_ms, utterance.audio.size, task)
        self._early.judged = judged

    def complete(self) -> bool:
        """Whether to end the turn now: the silence has lasted `quick_end_ms` and the
        early transcript of what it ends reads as a whole turn (channels/speech/turns.py)."""
        early, quick = self._early, self._quick_end_ms
        if early is None:
            return False
        bounds = self._endpointer.settling
        if bounds != early.bounds:
            return False
        silent_ms = self._endpointer.position_ms - bounds[1]
        if self._judge is not None:
            judged = early.judged
            if judged is None or not judged.done() or judged.cancelled():
                return False
            if silent_ms < self._judge.short_ms or judged.exception() is not None:
                return False
            return judged.result() >= self._judge.threshold
        if quick <= 0 or not early.task.done() or early.task.cancelled() or silent_ms < quick:
            return False
        return early.task.exception() is None and looks_complete(early.task.result().text)

    def take(self, utterance: UtteranceEnded) -> asyncio.Task[Transcript] | None:
        """`utterance` has ended: the transcription started early on its audio, if any
        (one started on other audio is dropped)."""
        early, self._early = self._early, None
        if early is not None and not early.matches(utterance):
            self._drop(early)
            early = None
        return early.task if early else None

    def drop(self) -> None:
        """The call is over: drop the transcription in flight, if any."""
        if self._early is not None:
            self._drop(self._early)
            self._early = None

    def count(self, outcome: str) -> None:
        """Count an early transcript by `outcome` ("used", "dropped")."""
        if self._metrics is not None:
            self._metrics.early_transcripts.labels(outcome).inc()

    def _drop(self, early: _Early) -> None:
        early.task.cancel()  # a decode already running finishes in its thread, unused
        if early.judged is not None:
            early.judged.cancel()
        self.count("dropped")


class _Early:
    """A transcription started before its utterance ended (see `EarlyTranscription.update`)."""

    __slots__ = ("audio_start_ms", "bounds", "judged", "samples", "task")

    def __init__(
        self, bounds: tuple[int, int], audio_start_ms: int, samples: int,
        task: asyncio.Task[Transcript],
    ) -> None:  # fmt: skip
        self.bounds = bounds
        self.audio_start_ms = audio_start_ms
        self.samples = samples
        self.task = task
        self.judged: asyncio.Future[float] | None = None  # the audio judge's probability

    def matches(self, utterance: UtteranceEnded) -> bool:
        """Whether `utterance` is the audio this transcription started on: the same
        speech, the same start, and at most more of the silence after it."""
        return (
            self.bounds == (utterance.start_ms, utterance.end_ms)
            and self.audio_start_ms == utterance.audio_start_ms
            and self.samples <= utterance.audio.size
        )


def _quietly(task: asyncio.Task[Any]) -> None:
    """Retrieve the outcome of an early transcription nobody may await (dropped)."""
    if not task.cancelled():
        task.exception()


__all__ = ["EarlyTranscription"]
