"""Speech to text: the real faster-whisper code on a random-weight Whisper tiny.en."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from channels.speech.audio import (
    MULAW_RATE,
    mulaw_encode,
    mulaw_to_pcm,
    pcm16_to_float32,
    read_mulaw_wav,
    read_wav,
    resample,
)
from channels.speech.stt import (
    MAX_TOKENS,
    ModelLoadError,
    ModelMissing,
    TranscriptionBusy,
    TranscriptionTimeout,
    WhisperTranscriber,
    resolve_model,
    token_cap,
)
from gateway.errors import ConfigError
from gateway.protocols import Transcriber, Transcript
from gateway.settings import load_settings
from tests.support.real_whisper import shared_speech_dir
from tests.support.whisper_model import build_random_whisper

FIXTURES = Path(__file__).resolve().parents[3] / "audio_fixtures"


def _noise(seconds: float, seed: int = 0, level: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(16000 * seconds)) * level).astype(np.float32)


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_token_cap_grows_with_audio_and_stays_within_whisper_limit() -> None:
    assert token_cap(0.0) == 10
    assert token_cap(1.0) == 16
    assert token_cap(2.0) == 22
    assert token_cap(10.0) < token_cap(20.0) <= MAX_TOKENS
    assert token_cap(600.0) == token_cap(30.0) <= MAX_TOKENS  # per 30 s window


async def test_random_tiny_model_transcribes_two_seconds(
    transcriber: WhisperTranscriber,
) -> None:
    as_protocol: Transcriber = transcriber
    result = await as_protocol.transcribe(_tone(2.0))
    assert isinstance(result, Transcript)
    assert result.duration_ms == 2000
    assert 0.0 <= result.confidence <= 1.0
    assert 0.0 <= result.no_speech_prob <= 1.0
    assert result.language == "en"
    assert 0 < result.tokens <= token_cap(2.0)
    assert result.processing_ms > 0


async def test_token_cap_bounds_the_output_on_noise(transcriber: WhisperTranscriber) -> None:
    one_second = await transcriber.transcribe(_noise(1.0))
    assert one_second.tokens <= token_cap(1.0) == 16
    # Random weights never say <|endoftext|>: only the cap stops them, far below Whisper's 224.
    ten_seconds = await transcriber.transcribe(_noise(10.0, seed=1))
    assert ten_seconds.tokens <= token_cap(10.0) == 70
    assert len(ten_seconds.text.split()) <= 70


async def test_int16_input_is_accepted_and_a_blip_is_not_decoded(
    transcriber: WhisperTranscriber,
) -> None:
    pcm = (_tone(1.0) * 32767).astype(np.int16)
    assert (await transcriber.transcribe(pcm)).duration_ms == 1000
    blip = await transcriber.transcribe(_noise(0.05))
    assert (blip.text, blip.confidence, blip.tokens) == ("", 0.0, 0)
    with pytest.raises(ValueError, match="mono"):
        await transcriber.transcribe(np.zeros((2, 16000), dtype=np.float32))


async def test_requests_beyond_the_pool_wait_their_turn(random_whisper_model: Any) -> None:
    stt = WhisperTranscriber(random_whisper_model, workers=1, timeout_s=60.0)
    peak_running = peak_waiting = 0

    async def watch() -> None:
        nonlocal peak_running, peak_waiting
        while True:
            peak_running = max(peak_running, stt.running)
            peak_waiting = max(peak_waiting, stt.waiting)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(*(stt.transcribe(_noise(1.0, seed=i)) for i in range(4)))
    finally:
        watcher.cancel()
        await stt.close()
    assert [r.duration_ms for r in results] == [1000] * 4
    assert peak_running == 1
    assert peak_waiting >= 2
    assert (stt.running, stt.waiting) == (0, 0)


async def test_the_event_loop_keeps_ticking_while_transcribing(
    transcriber: WhisperTranscriber,
) -> None:
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    try:
        await asyncio.gather(*(transcriber.transcribe(_noise(2.0, seed=i)) for i in range(3)))
    finally:
        beat.cancel()
    took = time.perf_counter() - started
    assert len(gaps) > 10
    assert max(gaps) < 0.1, f"loop stalled {max(gaps):.3f} s during {took:.2f} s of decoding"


async def test_timeout_and_the_slot_comes_back(random_whisper_model: Any) -> None:
    stt = WhisperTranscriber(random_whisper_model, workers=1, timeout_s=0.01)
    try:
        with pytest.raises(TranscriptionTimeout, match="no transcript within"):
            await stt.transcribe(_noise(2.0))
        stt.timeout_s = 60.0
        result = await stt.transcribe(_noise(1.0))  # waits for the abandoned decode, then runs
        assert result.duration_ms == 1000
        assert (stt.running, stt.waiting) == (0, 0)
    finally:
        await stt.close()


async def test_too_many_waiting_is_refused(random_whisper_model: Any) -> None:
    stt = WhisperTranscriber(random_whisper_model, workers=1, timeout_s=60.0, max_waiting=1)
    try:
        outcomes = await asyncio.gather(
            *(stt.transcribe(_noise(1.0, seed=i)) for i in range(3)), return_exceptions=True
        )
    finally:
        await stt.close()
    assert isinstance(outcomes[0], Transcript)
    assert isinstance(outcomes[1], Transcript)
    assert isinstance(outcomes[2], TranscriptionBusy)


def test_english_only_model_refuses_another_language(random_whisper_model: Any) -> None:
    with pytest.raises(ModelLoadError, match="English-only"):
        WhisperTranscriber(random_whisper_model, language="fr")


def test_multilingual_tiny_keeps_the_same_cap(tmp_path: Path) -> None:
    path = build_random_whisper(tmp_path / "tiny", "tiny")
    stt = WhisperTranscriber.load(str(path), language="de", workers=1, cpu_threads=1)
    assert stt.multilingual
    result = stt.transcribe_blocking(_noise(2.0))
    assert (result.language, result.tokens) == ("de", token_cap(2.0))
    with pytest.raises(ModelLoadError, match="does not know 'xx'"):
        WhisperTranscriber(stt.model, language="xx")


# ------------------------------------------------------------ model lookup


def test_missing_model_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_cached(*args: Any, **kwargs: Any) -> str:
        assert kwargs.get("local_files_only") is True  # never the network
        raise FileNotFoundError("not in the cache")

    monkeypatch.setattr("faster_whisper.utils.download_model", not_cached)
    with pytest.raises(ModelMissing) as missing:
        resolve_model("tiny.en", tmp_path / "models", wheels=False)  # not installed either
    message = str(missing.value)
    assert isinstance(missing.value, ConfigError)
    assert "gateway models pull tiny.en" in message
    assert "GATEWAY_STT_MODEL" in message
    assert "\n" not in message

    with pytest.raises(ModelMissing, match=r"gateway models pull tiny\.en") as no_dir:
        resolve_model(str(tmp_path / "nowhere"))
    assert "no such directory" in str(no_dir.value)


def test_incomplete_model_directory_is_refused(tmp_path: Path, random_whisper_dir: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(random_whisper_dir / "config.json", partial)
    with pytest.raises(ModelMissing, match=r"no model\.bin, tokenizer\.json"):
        resolve_model(str(partial))


def test_model_from_settings_via_the_models_dir(
    tmp_path: Path, random_whisper_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_STT_MODEL", raising=False)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.en").symlink_to(random_whisper_dir, target_is_directory=True)
    settings = load_settings(data_dir=tmp_path, stt_workers=1, stt_cpu_threads=1)
    assert settings.stt_model == "tiny.en"
    assert resolve_model("tiny.en", tmp_path / "models") == tmp_path / "models" / "tiny.en"
    stt = WhisperTranscriber.from_settings(settings)
    assert (stt.language, stt.workers, stt.multilingual) == ("en", 1, False)
    assert stt.transcribe_blocking(_tone(0.5)).duration_ms == 500


# ------------------------------------------------------- real recognition


async def test_real_base_recognises_the_espeak_fixtures(base_dir: Path) -> None:
    """espeak-ng's voice at 8 kHz, through the multilingual base (recognisers do worse on
    it than on people: tiny.en hears "check the status" as "can't understand")."""
    stt = await asyncio.to_thread(WhisperTranscriber.load, str(base_dir), workers=1)
    assert stt.multilingual
    manifest = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
    normalise = EnglishTextNormalizer()
    references, hypotheses = [], []
    try:
        for entry in manifest:
            if entry["kind"] != "speech":
                continue
            mulaw, rate = read_mulaw_wav(FIXTURES / entry["file"])
            assert rate == 8000
            heard = await stt.transcribe(pcm16_to_float32(mulaw_to_pcm(mulaw, 16000)))
            assert heard.confidence > 0.3, heard
            references.append(normalise(entry["text"]))
            hypotheses.append(normalise(heard.text))
    finally:
        await stt.close()
    assert "check the status of my order" in hypotheses[0]
    assert jiwer.wer(references, hypotheses) < 0.3, list(zip(references, hypotheses, strict=True))


async def test_real_tiny_en_on_people_through_the_phone_line(tiny_en_model: Any) -> None:
    """Recordings of real people, band-limited to 8 kHz and μ-law coded as a call is."""
    root = shared_speech_dir()
    if root is None:
        pytest.skip("no real speech recordings (../shared/speech or GATEWAY_TEST_SPEECH_DIR)")
    items = {item["id"]: item for item in json.loads((root / "items.json").read_text())}
    stt = WhisperTranscriber(tiny_en_model, workers=2, timeout_s=60.0)
    normalise = EnglishTextNormalizer()
    references, hypotheses = [], []
    try:
        for item_id in ("librivox_0880", "sb_spk1_snt3", "sb_spk2_snt4", "goforward"):
            pcm, rate = read_wav(root / items[item_id]["file"])
            line = mulaw_to_pcm(mulaw_encode(resample(pcm, rate, MULAW_RATE)), 16000)
            heard = await stt.transcribe(pcm16_to_float32(line))
            assert 0.3 < heard.confidence <= 1.0, (item_id, heard)
            references.append(normalise(items[item_id]["reference"]))
            hypotheses.append(normalise(heard.text))
    finally:
        await stt.close()
    assert jiwer.wer(references, hypotheses) < 0.25, list(zip(references, hypotheses, strict=True))


async def test_a_busy_call_delays_another_calls_utterance_by_one_job_at_most(
    random_whisper_model: Any,
) -> None:
    """One worker; call A has five utterances queued (its first decoding) when call B's
    one arrives: B's is decoded next, not after A's backlog."""
    stt = WhisperTranscriber(random_whisper_model, workers=1, timeout_s=60.0)
    finished: list[str] = []

    async def say(owner: str, name: str, seed: int) -> None:
        await stt.transcribe(_noise(1.0, seed=seed), owner=owner)
        finished.append(name)

    try:
        busy = [asyncio.create_task(say("CA-busy", f"a{i}", i)) for i in range(5)]
        await asyncio.sleep(0)  # each asks once: the first decodes, four wait
        assert (stt.running, stt.waiting, stt.idle) == (1, 4, False)
        await say("CA-other", "b", 9)
        assert finished == ["a0", "b"]
        await asyncio.gather(*busy)
    finally:
        await stt.close()
    assert finished == ["a0", "b", "a1", "a2", "a3", "a4"]
    assert (stt.running, stt.waiting, stt.idle) == (0, 0, True)
