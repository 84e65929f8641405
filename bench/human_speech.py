"""Recorded human speech as phone callers' utterances, for the voice benchmarks.

The recordings are `../shared/speech` next to the repository (GATEWAY_TEST_SPEECH_DIR
overrides it): `items.json` names each file and its reference transcript. Each one
used here is decoded to 16 kHz, then carried as a call carries it: 8 kHz μ-law
(the gateway's own audio code), ready to be sent in 20 ms frames like Twilio.

Recordings read as lists with long pauses inside (the digit strings of `vosk_test`,
the cards of `cards_005`) and those over `max_s` (the 10 s LibriSpeech passages)
are left out: an end-of-turn model may rightly answer at such a pause, in the
middle of what the bench sends as one turn, whose latency would then be measured
from the wrong end.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from channels.speech.audio import STT_RATE, float32_to_pcm16, pcm_to_mulaw

ROOT = Path(__file__).resolve().parents[1]
MAX_S = 7.0
SKIP = frozenset({"vosk_test", "cards_005"})  # read as lists, with long pauses between


@dataclass(frozen=True)
class Recording:
    """One recorded utterance: its id, what is said, and the audio as 8 kHz μ-law."""

    id: str
    reference: str
    mulaw: bytes
    seconds: float


def speech_dir() -> Path:
    """Where the recordings are: GATEWAY_TEST_SPEECH_DIR, else ../shared/speech."""
    override = os.environ.get("GATEWAY_TEST_SPEECH_DIR")
    return Path(override) if override else ROOT.parent / "shared" / "speech"


def missing_reason(folder: Path) -> str | None:
    """Why the recordings cannot be used (None when they can)."""
    if not (folder / "items.json").is_file():
        return (
            f"no recorded speech at {folder} (items.json absent): put the shared recordings "
            "there or point GATEWAY_TEST_SPEECH_DIR at them"
        )
    return None


def load_recordings(folder: Path, max_s: float = MAX_S) -> list[Recording]:
    """The recordings of `folder` no longer than `max_s` seconds, as 8 kHz μ-law."""
    from faster_whisper import decode_audio  # reads wav and flac, resamples to 16 kHz

    found = []
    for item in json.loads((folder / "items.json").read_text()):
        if item["id"] in SKIP or float(item["duration_s"]) > max_s:
            continue
        audio = np.asarray(decode_audio(str(folder / item["file"]), sampling_rate=STT_RATE))
        mulaw = pcm_to_mulaw(float32_to_pcm16(audio), STT_RATE)
        found.append(Recording(item["id"], item["reference"], mulaw, audio.size / STT_RATE))
    return found
