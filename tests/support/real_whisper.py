"""Real Whisper models for the tests, from the weight packages the test extra installs.

`real_model_dir("tiny.en", cache)` lays out the folder through the gateway's own
code (channels/speech/model_wheels.py: tiny.en where it is installed, base joined
into `cache`), with model.bin's sha256 checked. Where the packages are missing
(a bare checkout without the test extra) the test is skipped with the reason;
nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from channels.speech.model_wheels import WHEEL_MODELS, wheel_model

SPEECH_ENV = "GATEWAY_TEST_SPEECH_DIR"


def real_model_dir(name: str, cache: Path) -> Path:
    """The hash-checked folder of the real model `name` (tiny.en or base), or skip."""
    path = wheel_model(name, cache)
    if path is None:
        packages = ", ".join(WHEEL_MODELS[name].distributions)
        pytest.skip(f"real Whisper {name} needs the test extra's weight packages ({packages})")
    return path


def shared_speech_dir() -> Path | None:
    """The recordings of real people (items.json): GATEWAY_TEST_SPEECH_DIR, else
    `../shared/speech` next to the repository; None when absent."""
    override = os.environ.get(SPEECH_ENV)
    root = Path(__file__).resolve().parents[2]
    folder = Path(override) if override else root.parent / "shared" / "speech"
    return folder if (folder / "items.json").is_file() else None
