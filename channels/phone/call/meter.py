"""A call's speech usage (docs/reports.md, "Cost"): the audio its caller's speech
recogniser transcribed and its synthesizer rendered, counted by thin wrappers
around the shared models (cached prompts cost nothing more and are not counted).
Stored once, with the call's `phone.call_ended` (channels/phone/call/phone_call.py)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.protocols import Speech, Synthesizer, Transcriber, Transcript
from gateway.usage import Usage


@dataclass
class SpeechMeter:
    recognised_ms: int = 0
    synthesised_ms: int = 0

    def usage(self) -> Usage:
        return Usage(stt_ms=self.recognised_ms, tts_ms=self.synthesised_ms)


class MeteredTranscriber:
    """The shared `Transcriber`, counting what one call sends it (never closes it)."""

    def __init__(self, inner: Transcriber, meter: SpeechMeter) -> None:
        self._inner, self._meter = inner, meter

    async def transcribe(
        self, pcm16k: NDArray[np.float32], *, owner: Hashable | None = None
    ) -> Transcript:
        transcript = await self._inner.transcribe(pcm16k, owner=owner)
        self._meter.recognised_ms += transcript.duration_ms
        return transcript

    async def close(self) -> None:
        """The model is shared: closing is its owner's (channels/phone/setup.py)."""


class MeteredSynthesizer:
    """The shared `Synthesizer`, counting what it renders for one call."""

    def __init__(self, inner: Synthesizer, meter: SpeechMeter) -> None:
        self._inner, self._meter = inner, meter

    @property
    def sample_rate(self) -> int:
        return self._inner.sample_rate

    async def synthesize(self, text: str) -> Speech:
        speech = await self._inner.synthesize(text)
        self._meter.synthesised_ms += speech.duration_ms
        return speech

    async def close(self) -> None:
        """Shared: closing is its owner's."""


__all__ = ["MeteredSynthesizer", "MeteredTranscriber", "SpeechMeter"]
