"""Encoding only what was said (GATEWAY_STT_WINDOW=utterance): the same words as
faster-whisper's 30 s window on real recordings, Whisper's repeats dropped, digits kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from channels.speech.audio import STT_RATE, pcm16_to_float32, read_wav, resample
from channels.speech.short_window import drop_repeats
from channels.speech.stt import WhisperTranscriber
from gateway.errors import ConfigError
from tests.channels.phone.speech import speech_dir


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        (
            "At that high level, the air is pure. At that high level",
            "At that high level, the air is pure.",
        ),
        (
            "mend the coat before you go out before you go out before",
            "mend the coat before you go out",
        ),
        ("ten of clubs ten of clubs ten of clubs", "ten of clubs"),
        ("ten of clubs ten of clubs ten of clubs ten of clubs clubs ten", "ten of clubs"),
        ("five five", "five five"),  # too short to be a loop
        ("no no no", "no no no"),
        ("My order is 1 0 0 1 0 0 1 0 0", "My order is 1 0 0 1 0 0 1 0 0"),  # digits repeat
        ("I want to go, I want to go now", "I want to go, I want to go now"),
    ],
)
def test_drop_repeats(heard: str, kept: str) -> None:
    assert drop_repeats(heard) == kept


def test_an_unknown_window_is_refused(random_whisper_model: Any) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_STT_WINDOW"):
        WhisperTranscriber(random_whisper_model, window="half")


def test_the_utterance_window_hears_what_the_full_window_hears(tiny_en_model: Any) -> None:
    root = speech_dir()
    items = {item["id"]: item for item in json.loads((root / "items.json").read_text())}
    normalise = EnglishTextNormalizer()
    short = WhisperTranscriber(tiny_en_model, workers=1, window="utterance")
    full = WhisperTranscriber(tiny_en_model, workers=1, window="full")
    for item_id in ("goforward", "sb_spk2_snt2", "librivox_0930"):
        pcm, rate = read_wav(root / items[item_id]["file"])
        audio = pcm16_to_float32(resample(pcm, rate, STT_RATE))
        heard = short.transcribe_blocking(audio)
        assert normalise(heard.text) == normalise(full.transcribe_blocking(audio).text)
        assert normalise(heard.text) == normalise(items[item_id]["reference"])
        assert 0.3 < heard.confidence <= 1.0 and heard.tokens > 0
