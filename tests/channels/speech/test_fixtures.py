"""audio_fixtures/: the caller utterances are small, valid 8 kHz μ-law WAV files."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from channels.speech.audio import mulaw_decode, read_mulaw_wav

FIXTURES = Path(__file__).resolve().parents[3] / "audio_fixtures"
EXPECTED = {
    "order_status",
    "order_number_spoken",
    "order_number_keyed",
    "password_reset",
    "talk_to_person",
    "angry_caller",
    "silence",
    "line_noise",
    "cough",
}


def _manifest() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
    return entries


def _fmt_chunk(raw: bytes) -> tuple[int, int, int, int, int, int]:
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    pos = 12
    while pos + 8 <= len(raw):
        chunk, size = struct.unpack_from("<4sI", raw, pos)
        if chunk == b"fmt ":
            fields: tuple[int, int, int, int, int, int] = struct.unpack_from(
                "<HHIIHH", raw, pos + 8
            )
            return fields
        pos += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


def test_manifest_names_every_utterance() -> None:
    entries = _manifest()
    assert {entry["name"] for entry in entries} == EXPECTED
    keyed = next(entry for entry in entries if entry["name"] == "order_number_keyed")
    assert (keyed["kind"], keyed["digits"], keyed["file"]) == ("dtmf", "1001#", None)
    spoken = next(entry for entry in entries if entry["name"] == "order_number_spoken")
    assert spoken["digits"] == "1001" and "one zero zero one" in spoken["text"]
    for entry in entries:
        if entry["kind"] == "speech":
            assert entry["text"] and entry["keywords"]
            assert all(word in entry["text"].lower() for word in entry["keywords"])


@pytest.mark.parametrize(
    "entry", [e for e in _manifest() if e["file"]], ids=lambda entry: str(entry["name"])
)
def test_each_file_is_small_valid_8khz_mulaw(entry: dict[str, Any]) -> None:
    path = FIXTURES / entry["file"]
    raw = path.read_bytes()
    assert len(raw) < 100_000
    tag, channels, rate, byte_rate, block_align, bits = _fmt_chunk(raw)
    assert (tag, channels, rate, byte_rate, block_align, bits) == (7, 1, 8000, 8000, 1, 8)
    mulaw, rate = read_mulaw_wav(path)
    assert rate == 8000
    assert len(mulaw) * 1000 // 8000 == entry["duration_ms"]
    pcm = mulaw_decode(mulaw).astype(np.float64)
    rms = float(np.sqrt(np.mean(pcm**2)))
    if entry["kind"] == "speech":
        assert 1000 < entry["duration_ms"] < 8000
        assert rms > 500
        assert np.all(pcm[:1000] == 0)  # 250 ms of silence before the caller speaks
    elif entry["kind"] == "silence":
        assert entry["duration_ms"] == 2000 and rms == 0
    else:
        assert 0 < rms < 1000


def test_the_angry_caller_is_louder_and_faster() -> None:
    entries = {entry["name"]: entry for entry in _manifest()}
    angry, calm = entries["angry_caller"], entries["order_status"]
    assert angry["voice"]["rate"] > calm["voice"]["rate"]
    assert angry["voice"]["volume"] > calm["voice"]["volume"]
    assert angry["voice"]["voice"] != calm["voice"]["voice"]
