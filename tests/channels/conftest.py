"""Fixtures shared by the channel tests: the real Whisper models (tiny.en, base) laid
out once per session from the installed weight packages (tests/support/real_whisper.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.speech.stt import load_whisper_model
from tests.support.real_whisper import real_model_dir


@pytest.fixture(scope="session")
def tiny_en_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Whisper tiny.en (hash-checked), where its package installed it."""
    return real_model_dir("tiny.en", tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Whisper base (hash-checked), its two halves joined into a temporary folder."""
    return real_model_dir("base", tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def tiny_en_model(tiny_en_dir: Path) -> Iterator[Any]:
    """Real tiny.en loaded once through faster_whisper.WhisperModel (2 workers, 1 thread each)."""
    yield load_whisper_model(tiny_en_dir, compute_type="int8", workers=2, cpu_threads=1)
