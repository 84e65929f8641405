"""Fixtures for the speech tests: one random-weight Whisper model per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.speech.stt import WhisperTranscriber, load_whisper_model
from channels.speech.tts import EspeakSynthesizer
from tests.support.whisper_model import build_random_whisper


@pytest.fixture(scope="session")
def random_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight model of the real Whisper tiny.en architecture (built once, ~1 s)."""
    return build_random_whisper(tmp_path_factory.mktemp("whisper") / "tiny.en", "tiny.en")


@pytest.fixture(scope="session")
def random_whisper_model(random_whisper_dir: Path) -> Iterator[Any]:
    """The random model loaded once through the real faster_whisper.WhisperModel."""
    yield load_whisper_model(random_whisper_dir, compute_type="int8", workers=2, cpu_threads=1)


@pytest.fixture
async def transcriber(random_whisper_model: Any) -> AsyncIterator[WhisperTranscriber]:
    """A transcriber over the shared model (2 workers, generous timeout)."""
    stt = WhisperTranscriber(random_whisper_model, workers=2, timeout_s=60.0)
    yield stt
    await stt.close()


@pytest.fixture
async def synthesizer() -> AsyncIterator[EspeakSynthesizer]:
    """An espeak-ng synthesizer with its worker process started."""
    tts = EspeakSynthesizer(timeout_s=30.0)
    await tts.start()
    yield tts
    await tts.close()
