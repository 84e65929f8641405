"""End-of-turn detection for phone calls, on the Silero VAD's speech probabilities.

The VAD itself (the model, its per-call state, the shared session) is
channels/speech/silero.py.

`Endpointer` turns 20 ms frames of one call into events:

- `SpeechStarted` as soon as speech is confirmed (for barge-in: ~100 ms after
  the onset with the defaults),
- `UtteranceEnded` with the utterance's 16 kHz PCM once the caller has been
  silent for `end_silence_ms`, or when it reaches `max_utterance_ms`,
- `SpeechDiscarded` when a confirmed start came to less than `min_speech_ms`
  of speech (a cough, a click, "mm"): whoever paused playback on
  `SpeechStarted` can resume.

Cost: one session run (~90 µs) per 32 ms window, so ~80-110 µs per 20 ms
frame on average on one core, μ-law decode and resampling included (about
0.5 % of real time); an utterance's end adds its HQ resampling (under 1 ms
for 15 s). Cheap enough to run inline in the transport. Times are
milliseconds of audio fed since the start of the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from channels.speech.audio import (
    MULAW_RATE,
    STT_RATE,
    Float32Array,
    Int16Array,
    StreamResampler,
    mulaw_decode,
    pcm16_to_float32,
    resample,
)
from channels.speech.silero import WINDOW, WINDOW_MS, SileroVad, VadState, shared_vad
from gateway.errors import ConfigError

# -------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech confirmed. `at_ms`: estimated onset; `detected_ms`: when it was confirmed."""

    at_ms: int
    detected_ms: int


@dataclass(frozen=True, slots=True)
class SpeechDiscarded:
    """The speech announced by the last SpeechStarted was too short to be an utterance."""

    start_ms: int
    end_ms: int


# "complete": ended by the caller of `end_now` (the words so far make a whole turn)
# before the full end-of-turn silence ran out.
EndReason = Literal["silence", "complete", "max_length", "stream_end"]


@dataclass(frozen=True, slots=True, eq=False)
class UtteranceEnded:
    """One utterance. `start_ms`..`end_ms` is the speech; `audio` (16 kHz int16)
    starts at `audio_start_ms`, pre-roll included, and runs a little past the end."""

    audio: Int16Array = field(repr=False)
    start_ms: int
    end_ms: int
    audio_start_ms: int
    reason: EndReason

    @property
    def duration_ms(self) -> int:
        """Length of the speech (not of the audio)."""
        return self.end_ms - self.start_ms

    def audio_float32(self) -> Float32Array:
        """The audio as float32 in [-1, 1), what faster-whisper's `transcribe` takes."""
        return pcm16_to_float32(self.audio)


EndpointEvent = SpeechStarted | SpeechDiscarded | UtteranceEnded


@dataclass(frozen=True)
class EndpointerConfig:
    """Tuning of the endpointer; all durations in milliseconds.

    A window counts as speech at `threshold` or above and as silence below
    `neg_threshold` (default `threshold - 0.15`, Silero's own hysteresis);
    in between it continues whatever was going on.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    start_ms: int = 64  # consecutive speech needed to confirm a start (2 windows)
    end_silence_ms: int = 600  # silence that ends a turn; shorter pauses are kept in
    min_speech_ms: int = 250  # shorter speech is a cough or a click, not an utterance
    max_utterance_ms: int = 15_000  # force an end (Whisper takes 30 s at most)
    pre_roll_ms: int = 300  # audio kept before the onset: soft starts, Whisper context
    post_roll_ms: int = 200  # audio kept after the end of speech (never past the present)
    # Silence after which the utterance it would end is `settling`: early enough to
    # transcribe it while the end-of-turn silence runs, late enough that a short gap
    # between words does not start a transcription each time.
    settle_ms: int = 100

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.threshold < 1.0:
            problems.append("threshold must be between 0 and 1")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            problems.append("neg_threshold must be in (0, threshold]")
        if not WINDOW_MS <= self.settle_ms <= self.end_silence_ms:
            problems.append(f"settle_ms must be between {WINDOW_MS} and end_silence_ms")
        if self.start_ms < 0 or self.pre_roll_ms < 0 or self.post_roll_ms < 0:
            problems.append("start_ms, pre_roll_ms and post_roll_ms must not be negative")
        if self.end_silence_ms < WINDOW_MS:
            problems.append(f"end_silence_ms must be at least {WINDOW_MS}")
        if self.max_utterance_ms <= max(self.min_speech_ms, self.start_ms):
            problems.append("max_utterance_ms must exceed min_speech_ms and start_ms")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def silence_threshold(self) -> float:
        """Below this probability a window is silence."""
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)


# ---------------------------------------------------------------- endpointer


class Endpointer:
    """Streaming endpointer for one call: feed audio in order, get events.

    Synchronous and cheap; not thread-safe (one per call). Input is int16 PCM
    at 8 kHz (`feed`, or μ-law frames with `feed_mulaw`) or at 16 kHz. For the
    VAD, 8 kHz input is upsampled by soxr's low-latency "QQ" filter: the HQ
    filter would hold audio back ~100 ms, and on band-limited phone audio
    Silero scores speech lower after the HQ filter than after QQ (whose images
    above 4 kHz look more like the wideband speech it was trained on). The
    utterance handed to STT is resampled from the 8 kHz original with HQ.

    At `max_utterance_ms` an utterance still in full flow is cut, and the
    next one starts at the cut (a SpeechStarted with `at_ms == detected_ms`),
    so no audio is lost or repeated.
    """

    def __init__(
        self,
        config: EndpointerConfig | None = None,
        *,
        vad: SileroVad | None = None,
        sample_rate: int = MULAW_RATE,
    ) -> None:
        if sample_rate not in (MULAW_RATE, STT_RATE):
            raise ConfigError(f"the endpointer takes 8000 or 16000 Hz, not {sample_rate}")
        self.config = config or EndpointerConfig()
        self.sample_rate = sample_rate
        self._vad = vad or shared_vad()
        self._state = VadState()
        wide = sample_rate == STT_RATE
        self._upsampler = None if wide else StreamResampler(MULAW_RATE, STT_RATE, quality="QQ")
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples short of a window
        self._window = 0  # index of the next window to score
        self._fed = 0  # input samples fed so far
        # Input audio kept for the utterances: chunks starting at sample `_kept_from`.
        self._chunks: list[Int16Array] = []
        self._kept_from = 0
        self._floor_ms = 0  # no utterance's audio starts before the previous one ended
        cfg = self.config
        self._start_windows = max(1, math.ceil(cfg.start_ms / WINDOW_MS))
        self._silence_prob = cfg.silence_threshold
        # Silence state: the run of speech windows that may confirm a start.
        self._run = 0
        self._run_start = 0
        # Speech state (when `_speech_start` is not None).
        self._speech_start: int | None = None  # window index of the onset
        self._silence_from: int | None = None  # window where the current silence began

    # ------------------------------------------------------------- feeding

    @property
    def in_speech(self) -> bool:
        """Whether a confirmed utterance is in progress."""
        return self._speech_start is not None

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio fed so far."""
        return self._fed * 1000 // self.sample_rate

    @property
    def speech_ms(self) -> int:
        """How long the confirmed speech in progress has lasted: from its onset to now, or
        to the start of the silence it is in now (0 when there is none). For barge-in:
        it stops growing the moment the caller falls silent, so a cough stays short."""
        if self._speech_start is None:
            return 0
        if self._silence_from is not None:
            return (self._silence_from - self._speech_start) * WINDOW_MS
        return max(0, self.position_ms - self._speech_start * WINDOW_MS)

    @property
    def settling(self) -> tuple[int, int] | None:
        """(start_ms, end_ms) of the utterance the silence in progress will end if it
        lasts, once that silence has lasted `settle_ms` (None otherwise). From then on
        `tentative()` holds that utterance's speech; its audio is the one the utterance
        will carry up to the present (all of it once the post-roll is in)."""
        start, silence = self._speech_start, self._silence_from
        if start is None or silence is None:
            return None
        start_ms, end_ms = start * WINDOW_MS, silence * WINDOW_MS
        if end_ms - start_ms < self.config.min_speech_ms:
            return None
        if self.position_ms < end_ms + self.config.settle_ms:
            return None
        return start_ms, end_ms

    def tentative(self) -> UtteranceEnded | None:
        """The utterance of `settling`, as the `UtteranceEnded` that will end it will be
        (same bounds; the same samples, or a prefix of them while the post-roll is still
        coming in: only silence follows), so it can be transcribed while the end-of-turn
        silence runs; None when not `settling`. Changes nothing in the endpointer."""
        bounds = self.settling
        if bounds is None:
            return None
        start_ms, end_ms = bounds
        audio_start = max(start_ms - self.config.pre_roll_ms, self._floor_ms)
        audio = self._peek(audio_start, min(end_ms + self.config.post_roll_ms, self.position_ms))
        if self.sample_rate != STT_RATE:
            audio = resample(audio, self.sample_rate, STT_RATE)
        return UtteranceEnded(audio=audio, start_ms=start_ms, end_ms=end_ms,
                              audio_start_ms=audio_start, reason="silence")  # fmt: skip

    def end_now(self) -> list[EndpointEvent]:
        """End the utterance that is `settling` now, without waiting for the rest of
        the end-of-turn silence: the caller (who has transcribed `tentative()` and
        found a complete turn) decides. The `UtteranceEnded` (reason "complete") has
        the bounds and samples `tentative()` had. Nothing happens when not settling."""
        events: list[EndpointEvent] = []
        if self.settling is not None:
            assert self._silence_from is not None
            self._end(self._silence_from, "complete", events)
        return events

    def feed_mulaw(self, frame: bytes) -> list[EndpointEvent]:
        """Feed μ-law 8 kHz audio (one 20 ms Media Streams frame, or any length)."""
        if self.sample_rate != MULAW_RATE:
            raise ValueError("feed_mulaw needs an endpointer built for 8000 Hz")
        return self.feed(mulaw_decode(frame))

    def feed(self, pcm: Int16Array) -> list[EndpointEvent]:
        """Feed the next int16 samples at `sample_rate`; returns the events they caused."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError("feed wants a 1-D int16 array")
        if pcm.size == 0:
            return []
        self._chunks.append(pcm.copy())
        self._fed += pcm.size
        wide = self._upsampler.process(pcm) if self._upsampler is not None else pcm
        samples = np.concatenate((self._pending, pcm16_to_float32(wide)))
        events: list[EndpointEvent] = []
        whole = samples.size - samples.size % WINDOW
        for offset in range(0, whole, WINDOW):
            prob = self._vad.probability(samples[offset : offset + WINDOW], self._state)
            self._step(prob, events)
            self._window += 1
        self._pending = samples[whole:]
        if self._speech_start is None:
            # Keep the pre-roll of the earliest onset still possible (a run in progress).
            self._forget_before((self._window - self._run) * WINDOW_MS - self.config.pre_roll_ms)
        return events

    def finish(self) -> list[EndpointEvent]:
        """End of the stream: close an utterance in progress (reason "stream_end")."""
        events: list[EndpointEvent] = []
        if self._speech_start is not None:
            end = self._silence_from if self._silence_from is not None else self._window
            self._end(end, "stream_end", events)
        return events

    # --------------------------------------------------------- state machine

    def _step(self, prob: float, events: list[EndpointEvent]) -> None:
        k = self._window
        cfg = self.config
        if self._speech_start is None:
            if prob < cfg.threshold:
                self._run = 0
                return
            if self._run == 0:
                self._run_start = k
            self._run += 1
            if self._run >= self._start_windows:
                self._begin(self._run_start, k + 1, events)
            return
        # In speech: Silero's hysteresis. Speech cancels a silence in progress,
        # a silence starts below `neg_threshold`, anything between changes nothing.
        if prob >= cfg.threshold:
            self._silence_from = None
        elif prob < self._silence_prob and self._silence_from is None:
            self._silence_from = k
        if self._silence_from is not None:
            # The speech before a silence is shorter than the maximum (it would have
            # been cut already), so only the silence can end it.
            if (k + 1 - self._silence_from) * WINDOW_MS >= cfg.end_silence_ms:
                self._end(self._silence_from, "silence", events)
        elif (k + 1 - self._speech_start) * WINDOW_MS >= cfg.max_utterance_ms:
            # Cut while the caller is still talking: the next utterance starts
            # right here, with no pre-roll (that audio is in this one).
            self._end(k + 1, "max_length", events)
            self._begin(k + 1, k + 1, events)

    def _begin(self, onset: int, now: int, events: list[EndpointEvent]) -> None:
        self._speech_start = onset
        self._silence_from = None
        self._run = 0
        events.append(SpeechStarted(at_ms=onset * WINDOW_MS, detected_ms=now * WINDOW_MS))

    def _end(self, end: int, reason: EndReason, events: list[EndpointEvent]) -> None:
        assert self._speech_start is not None
        cfg = self.config
        start_ms, end_ms = self._speech_start * WINDOW_MS, end * WINDOW_MS
        self._speech_start = self._silence_from = None
        if end_ms - start_ms < cfg.min_speech_ms:
            events.append(SpeechDiscarded(start_ms=start_ms, end_ms=end_ms))
            return
        audio_start = max(start_ms - cfg.pre_roll_ms, self._floor_ms)
        # A cut at the maximum hands the following audio to the next utterance.
        post_roll = 0 if reason == "max_length" else cfg.post_roll_ms
        audio_end = min(end_ms + post_roll, self.position_ms)
        audio = self._take(audio_start, audio_end)
        if self.sample_rate != STT_RATE:
            audio = resample(audio, self.sample_rate, STT_RATE)
        self._floor_ms = audio_end
        events.append(
            UtteranceEnded(
                audio=audio,
                start_ms=start_ms,
                end_ms=end_ms,
                audio_start_ms=audio_start,
                reason=reason,
            )
        )

    # -------------------------------------------------------------- history

    def _take(self, start_ms: int, end_ms: int) -> Int16Array:
        # The audio of [start_ms, end_ms); what precedes end_ms is dropped, as no
        # later utterance starts before the end of this one.
        first = start_ms * self.sample_rate // 1000 - self._kept_from
        last = end_ms * self.sample_rate // 1000 - self._kept_from
        kept = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = [kept[last:]]
        self._kept_from += last
        return kept[max(first, 0) : last].copy()

    def _peek(self, start_ms: int, end_ms: int) -> Int16Array:
        # What `_take` would return, leaving the history as it is.
        first = start_ms * self.sample_rate // 1000 - self._kept_from
        last = end_ms * self.sample_rate // 1000 - self._kept_from
        kept = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return kept[max(first, 0) : last].copy()

    def _forget_before(self, ms: int) -> None:
        # Drop whole chunks that end before `ms`; cheap enough to run per frame.
        limit = ms * self.sample_rate // 1000
        while self._chunks and self._kept_from + self._chunks[0].size <= limit:
            self._kept_from += self._chunks.pop(0).size


__all__ = [
    "EndReason",
    "EndpointEvent",
    "Endpointer",
    "EndpointerConfig",
    "SpeechDiscarded",
    "SpeechStarted",
    "UtteranceEnded",
]
