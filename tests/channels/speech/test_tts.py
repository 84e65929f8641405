"""Text to speech: pyttsx3 + espeak-ng in a dedicated worker process."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest

from channels.speech.tts import (
    DEFAULT_PROMPTS,
    EspeakSynthesizer,
    PromptCache,
    SynthesisError,
    SynthesisTimeout,
    VoiceStyle,
    speech_samples,
    split_sentences,
)
from gateway.protocols import Speech, Synthesizer
from gateway.settings import load_settings


def test_split_sentences() -> None:
    assert split_sentences("Hello there.  How are you? Fine!") == [
        "Hello there.",
        "How are you?",
        "Fine!",
    ]
    assert split_sentences("Dr. Smith sent order No. 1001 for 3.50 dollars. Thanks.") == [
        "Dr. Smith sent order No. 1001 for 3.50 dollars.",
        "Thanks.",
    ]
    assert split_sentences('He said "stop." Then left') == ['He said "stop."', "Then left"]
    assert split_sentences("   ") == []
    long = "word, " * 60 + "end."
    pieces = split_sentences(long, max_chars=100)
    assert all(len(piece) <= 100 for piece in pieces)
    assert " ".join(pieces).split() == long.split()


async def test_a_sentence_becomes_audible_pcm(synthesizer: EspeakSynthesizer) -> None:
    as_protocol: Synthesizer = synthesizer
    speech = await as_protocol.synthesize("Your order has shipped and arrives on Tuesday.")
    samples = speech_samples(speech)
    assert speech.sample_rate == synthesizer.sample_rate == 22050
    assert samples.dtype == np.int16
    assert 1500 < speech.duration_ms < 6000
    assert np.abs(samples).max() > 5000
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 500


async def test_empty_text_is_silence_without_work() -> None:
    tts = EspeakSynthesizer()
    speech = await tts.synthesize("  \n ")
    assert (speech.pcm, speech.duration_ms) == (b"", 0)
    assert tts.worker_pid is None
    await tts.close()


async def test_concurrent_calls_are_serialized(synthesizer: EspeakSynthesizer) -> None:
    texts = [
        "Yes.",
        "Your order is on its way.",
        "Your order left our warehouse yesterday and should arrive within three days.",
    ]
    results = await asyncio.gather(*(synthesizer.synthesize(text) for text in reversed(texts)))
    results.reverse()
    assert [speech.text for speech in results] == texts
    durations = [speech.duration_ms for speech in results]
    assert durations == sorted(durations) and durations[0] < durations[-1] / 3
    alone = await synthesizer.synthesize(texts[1])
    assert abs(alone.duration_ms - results[1].duration_ms) < 50


async def test_stream_yields_sentence_by_sentence(synthesizer: EspeakSynthesizer) -> None:
    text = "Thanks for waiting. I found your order. It ships tomorrow."
    parts = [part async for part in synthesizer.stream(text)]
    assert [part.text for part in parts] == split_sentences(text)
    assert all(part.duration_ms > 300 for part in parts)


async def test_voices_and_unknown_voice(synthesizer: EspeakSynthesizer) -> None:
    text = "I have been waiting for two weeks."
    calm = await synthesizer.synthesize(text, VoiceStyle(voice="en-us", rate=150))
    fast = await synthesizer.synthesize(text, VoiceStyle(voice="en-us+m3", rate=300))
    assert fast.duration_ms < calm.duration_ms * 0.75
    with pytest.raises(SynthesisError, match="no voice 'xx-nowhere'"):
        await synthesizer.synthesize(text, VoiceStyle(voice="xx-nowhere"))
    assert (await synthesizer.synthesize("Still fine.")).duration_ms > 300


async def test_a_killed_worker_is_restarted(synthesizer: EspeakSynthesizer) -> None:
    first = synthesizer.worker_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # dead now or dying when the next request arrives
    speech = await synthesizer.synthesize("Back again.")
    assert speech.duration_ms > 300
    assert synthesizer.worker_pid not in (None, first)
    assert synthesizer.restarts == 1


async def test_a_hung_utterance_times_out_and_the_worker_is_replaced(
    synthesizer: EspeakSynthesizer,
) -> None:
    first = synthesizer.worker_pid
    synthesizer.timeout_s = 0.0001
    with pytest.raises(SynthesisTimeout):
        await synthesizer.synthesize("This sentence is long enough to take a moment. " * 20)
    synthesizer.timeout_s = 30.0
    assert (await synthesizer.synthesize("Recovered.")).duration_ms > 300
    assert synthesizer.worker_pid not in (None, first)


async def test_closed_synthesizer_refuses_work() -> None:
    tts = EspeakSynthesizer()
    await tts.start()
    pid = tts.worker_pid
    await tts.close()
    assert pid is not None and tts.worker_pid is None
    with pytest.raises(SynthesisError, match="closed"):
        await tts.synthesize("Hello.")


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TTS_VOICE", "en-gb")
    monkeypatch.setenv("GATEWAY_TTS_RATE", "190")
    tts = EspeakSynthesizer.from_settings(load_settings())
    assert (tts.style.voice, tts.style.rate, tts.timeout_s) == ("en-gb", 190, 10.0)


class _Counting:
    """A Synthesizer that counts the renders it passes on."""

    def __init__(self, inner: EspeakSynthesizer) -> None:
        self.inner = inner
        self.calls: list[str] = []

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def synthesize(self, text: str) -> Speech:
        self.calls.append(text)
        return await self.inner.synthesize(text)

    async def close(self) -> None:
        await self.inner.close()


async def test_prompt_cache_renders_each_prompt_once(synthesizer: EspeakSynthesizer) -> None:
    counting = _Counting(synthesizer)
    cache = PromptCache(counting)
    await asyncio.gather(cache.warm(), cache.warm(), cache.get("greeting"))
    greeting = await cache.get("greeting")
    assert greeting is await cache.get("greeting")
    assert greeting.duration_ms > 1000
    assert sorted(counting.calls) == sorted(DEFAULT_PROMPTS.values())
    assert cache.renders == len(DEFAULT_PROMPTS) == len(cache.names)
    with pytest.raises(KeyError):
        await cache.get("nonexistent")
