"""The agent's voice on the phone: text to 8 kHz μ-law chunks for the `Player`.

- `speak(synth, text)`: sentence by sentence (`tts.split_sentences`), the
  next `lookahead` sentences rendering while the current one plays. A
  sentence that cannot be synthesized comes out as a chunk without audio
  (the player skips it and the message counts as not fully heard).
- `PhonePrompts`: the fixed prompts (greeting, hold, goodbye) rendered once at
  start-up through `tts.PromptCache` and kept as μ-law, shared by every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping

import numpy as np

from channels.phone.call.playback import Chunk
from channels.speech.audio import pcm_to_mulaw
from channels.speech.tts import DEFAULT_PROMPTS, PromptCache, split_sentences
from gateway.errors import GatewayError
from gateway.protocols import Speech, Synthesizer

log = logging.getLogger("gateway.phone.voice")

LOOKAHEAD = 2


def to_mulaw(speech: Speech) -> bytes:
    """Synthesized PCM at its own rate to 8 kHz μ-law for the phone line."""
    if not speech.pcm:
        return b""
    samples = np.frombuffer(speech.pcm, dtype="<i2").astype(np.int16)
    return pcm_to_mulaw(samples, speech.sample_rate)


async def speak(
    synth: Synthesizer, text: str, *, lookahead: int = LOOKAHEAD
) -> AsyncGenerator[Chunk, None]:
    """`text` as chunks, one per sentence, rendered ahead of playback.

    Closing the generator early (barge-in) cancels the renders still waiting."""
    sentences = split_sentences(text)
    tasks: list[asyncio.Task[Speech]] = []
    try:
        for index, sentence in enumerate(sentences):
            while len(tasks) < min(index + 1 + lookahead, len(sentences)):
                tasks.append(asyncio.ensure_future(synth.synthesize(sentences[len(tasks)])))
            try:
                speech = await tasks[index]
                audio = await asyncio.to_thread(to_mulaw, speech)
            except GatewayError as exc:
                log.warning("cannot speak %r: %s", sentence[:60], exc)
                audio = b""
            yield Chunk(text=sentence, mulaw=audio)
    finally:
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failure past a barge-in is not news
            else:
                task.cancel()


class PhonePrompts:
    """Fixed prompts as (text, μ-law), rendered once for every call."""

    def __init__(self, prompts: Mapping[str, Chunk]) -> None:
        self._prompts = dict(prompts)

    @classmethod
    async def render(
        cls, synth: Synthesizer, texts: Mapping[str, str] = DEFAULT_PROMPTS
    ) -> PhonePrompts:
        """Render every prompt (at start-up)."""
        cache = PromptCache(synth, texts)
        await cache.warm()
        prompts: dict[str, Chunk] = {}
        for name in cache.names:
            speech = await cache.get(name)
            prompts[name] = Chunk(text=speech.text, mulaw=await asyncio.to_thread(to_mulaw, speech))
        return cls(prompts)

    def text(self, name: str) -> str:
        return self._prompts[name].text

    def chunk(self, name: str) -> Chunk:
        return self._prompts[name]


async def chunks_of(*parts: Chunk | str, synth: Synthesizer) -> AsyncGenerator[Chunk, None]:
    """Ready chunks (prompts) and text to synthesize, in order: "Hi Jane." + greeting."""
    for part in parts:
        if isinstance(part, Chunk):
            yield part
        else:
            async with contextlib.aclosing(speak(synth, part)) as spoken:
                async for chunk in spoken:
                    yield chunk


__all__ = ["LOOKAHEAD", "PhonePrompts", "chunks_of", "speak", "to_mulaw"]
