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
  end_of_turn.py) the settled audio is scored by Smart Turn first, and that
  score decides instead of the transcript's punctuation: complete ends the turn
  after the judge's `short_ms` of silence, incomplete waits out the (longer)
  end-of-turn silence. While the recogniser is busy (`spare()` is false) the
  early transcription waits for that score: it starts as soon as the judge has
  called the turn complete (or failed), and otherwise only once the silence has
  lasted `short_ms`. Most pauses inside a sentence are shorter, and a decode,
  once started, runs to its end even when the caller speaks on, so starting one
  at every pause spent the shared recogniser's CPU on transcripts nobody used (a
  second or so each with Whisper's full window) while other calls waited. An
  idle recogniser starts it at once: nobody waits for it then.

`EarlyTranscription` holds at most one such transcription for one call; the
call (channels/phone/call/phone_call.py) drives it frame by frame and ends the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
        spare: Callable[[], bool] = lambda: False,
    ) -> None:
        self._endpointer = endpointer
        self._owner = owner  # the call, for the recogniser's fair queueing
        self._spare = spare  # the recogniser is idle: transcribe before the judge has scored
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
                if early.task is None and self._may_transcribe(early, bounds):
                    early.task = self._transcribe(early.audio)
                return
            self._early = None
            self._drop(early)  # the caller spoke on
        if bounds is None or ended:
            return
        utterance = self._endpointer.tentative()
        if utterance is None:
            return
        audio = utterance.audio_float32()
        early = _Early(bounds, utterance.audio_start_ms, audio)
        if self._judge is not None:
            early.judged = asyncio.ensure_future(self._judge.probability(audio))
            early.judged.add_done_callback(_quietly)
        if self._judge is None or self._spare():
            early.task = self._transcribe(audio)
        self._early = early

    def _may_transcribe(self, early: _Early, bounds: tuple[int, int]) -> bool:
        """Whether to start the early transcription the judge has held back: it called
        the turn complete (or could not judge), or the silence has lasted `short_ms`."""
        judged, judge = early.judged, self._judge
        if judged is None or judge is None:
            return True
        if self._endpointer.position_ms - bounds[1] >= judge.short_ms:
            return True
        if not judged.done():
            return False
        return (
            judged.cancelled()
            or judged.exception() is not None
            or (judged.result() >= judge.threshold)
        )

    def _transcribe(self, audio: NDArray[np.float32]) -> asyncio.Task[Transcript]:
        task = asyncio.ensure_future(self._transcriber.transcribe(audio, owner=self._owner))
        task.add_done_callback(_quietly)
        return task

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
        task = early.task
        if quick <= 0 or task is None or not task.done() or task.cancelled() or silent_ms < quick:
            return False
        return task.exception() is None and looks_complete(task.result().text)

    def take(self, utterance: UtteranceEnded) -> asyncio.Task[Transcript] | None:
        """`utterance` has ended: the transcription started early on its audio, if any
        (one started on other audio is dropped)."""
        early, self._early = self._early, None
        if early is None:
            return None
        if early.task is None or not early.matches(utterance):
            self._drop(early)
            return None
        return early.task

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
        if early.judged is not None:
            early.judged.cancel()
        if early.task is not None:
            early.task.cancel()  # a decode already running finishes in its thread, unused
            self.count("dropped")


class _Early:
    """A transcription started before its utterance ended (see `EarlyTranscription.update`)."""

    __slots__ = ("audio", "audio_start_ms", "bounds", "judged", "task")

    def __init__(
        self, bounds: tuple[int, int], audio_start_ms: int, audio: NDArray[np.float32]
    ) -> None:
        self.bounds = bounds
        self.audio_start_ms = audio_start_ms
        self.audio = audio
        self.task: asyncio.Task[Transcript] | None = None  # None: held back for the judge
        self.judged: asyncio.Future[float] | None = None  # the audio judge's probability

    def matches(self, utterance: UtteranceEnded) -> bool:
        """Whether `utterance` is the audio this transcription started on: the same
        speech, the same start, and at most more of the silence after it."""
        return (
            self.bounds == (utterance.start_ms, utterance.end_ms)
            and self.audio_start_ms == utterance.audio_start_ms
            and self.audio.size <= utterance.audio.size
        )


def _quietly(task: asyncio.Task[Any]) -> None:
    """Retrieve the outcome of an early transcription nobody may await (dropped)."""
    if not task.cancelled():
        task.exception()


__all__ = ["EarlyTranscription"]
