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

`EarlyTranscription` holds at most one such transcription for one call; the
call (channels/phone/call/phone_call.py) drives it frame by frame and ends the turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

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
    ) -> None:
        self._endpointer = endpointer
        self._transcriber = transcriber
        self._quick_end_ms = quick_end_ms
        self._metrics = metrics
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
        transcribing = self._transcriber.transcribe(utterance.audio_float32())
        task = asyncio.ensure_future(transcribing)
        task.add_done_callback(_quietly)
        self._early = _Early(bounds, utterance.audio_start_ms, utterance.audio.size, task)

    def complete(self) -> bool:
        """Whether to end the turn now: the silence has lasted `quick_end_ms` and the
        early transcript of what it ends reads as a whole turn (channels/speech/turns.py)."""
        early, quick = self._early, self._quick_end_ms
        if early is None or quick <= 0 or not early.task.done() or early.task.cancelled():
            return False
        bounds = self._endpointer.settling
        if bounds != early.bounds or self._endpointer.position_ms - bounds[1] < quick:
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
        self.count("dropped")


class _Early:
    """A transcription started before its utterance ended (see `EarlyTranscription.update`)."""

    __slots__ = ("audio_start_ms", "bounds", "samples", "task")

    def __init__(
        self, bounds: tuple[int, int], audio_start_ms: int, samples: int,
        task: asyncio.Task[Transcript],
    ) -> None:  # fmt: skip
        self.bounds = bounds
        self.audio_start_ms = audio_start_ms
        self.samples = samples
        self.task = task

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
