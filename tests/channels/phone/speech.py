"""Real recordings from `../shared/speech` turned into what a phone line carries.

The folder sits next to the repository (see its README.md); tests that need it
skip when it is absent. Nothing is copied into the project.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from channels.speech.audio import (
    MULAW_RATE,
    Int16Array,
    mulaw_encode,
    read_wav,
    resample,
    split_frames,
)
from channels.speech.vad import Endpointer, EndpointerConfig, EndpointEvent
from tests.support.real_whisper import SPEECH_ENV, shared_speech_dir


def speech_dir() -> Path:
    """The shared recordings (GATEWAY_TEST_SPEECH_DIR or ../shared/speech), or skip."""
    found = shared_speech_dir()
    if found is None:
        pytest.skip(f"real speech recordings not found (../shared/speech or {SPEECH_ENV})")
    return found


def load_phone(item_id: str) -> Int16Array:
    """One recording (by its items.json id) as 8 kHz int16, band-limited like a phone line."""
    root = speech_dir()
    items = {item["id"]: item for item in json.loads((root / "items.json").read_text())}
    pcm, rate = read_wav(root / items[item_id]["file"])
    return resample(pcm, rate, MULAW_RATE)


def speech_bounds(
    pcm: Int16Array, rate: int = MULAW_RATE, rel_db: float = -25.0
) -> tuple[int, int]:
    """(first, last) sample of the 10 ms frames within `rel_db` of the loudest frame:
    an energy-based reference for where the speech is, independent of the VAD."""
    step = rate // 100
    frames = pcm[: len(pcm) // step * step].astype(np.float64).reshape(-1, step)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > rel_db)[0]
    return int(loud[0]) * step, (int(loud[-1]) + 1) * step


def trimmed(item_id: str) -> Int16Array:
    """A recording cut down to its speech (see `speech_bounds`)."""
    pcm = load_phone(item_id)
    first, last = speech_bounds(pcm)
    return pcm[first:last]


def silence(ms: int) -> Int16Array:
    return np.zeros(ms * MULAW_RATE // 1000, dtype=np.int16)


def run_call(
    pcm: Int16Array, config: EndpointerConfig | None = None, endpointer: Endpointer | None = None
) -> list[tuple[int, EndpointEvent]]:
    """Send 8 kHz audio through μ-law in 20 ms frames, as Twilio does; every event
    with the stream position (ms) at which it came out."""
    ep = endpointer or Endpointer(config)
    out: list[tuple[int, EndpointEvent]] = []
    for frame in split_frames(mulaw_encode(pcm)):
        out.extend((ep.position_ms, event) for event in ep.feed_mulaw(frame))
    out.extend((ep.position_ms, event) for event in ep.finish())
    return out
