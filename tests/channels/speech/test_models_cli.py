"""`gateway models pull|list`: never a stack trace, never the network in tests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from channels.speech import models_cli
from channels.speech.models_cli import ModelDownloadError, add_models_parser, pull, run_models
from gateway.settings import load_settings


def _offline(*args: Any, **kwargs: Any) -> str:
    try:
        raise OSError(-2, "Name or service not known")
    except OSError as exc:
        raise RuntimeError(
            "An error happened while trying to locate the files on the Hub.\n"
            "Please check your internet connection."
        ) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway")
    add_models_parser(parser.add_subparsers(dest="command"))
    return parser


def test_pull_without_internet_fails_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.snapshot_download", _offline)
    with pytest.raises(ModelDownloadError) as failed:
        pull("tiny.en", tmp_path)
    message = str(failed.value)
    assert "\n" not in message
    assert "Systran/faster-whisper-tiny.en" in message
    assert "Name or service not known" in message and "internet" in message
    assert not (tmp_path / "tiny.en").exists()  # no empty folder left behind


def test_unknown_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelDownloadError, match=r"unknown speech model 'tiny\.xx'"):
        pull("tiny.xx", tmp_path)


def test_pull_downloads_with_a_progress_bar_into_the_models_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_whisper_dir: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_download(repo: str, **kwargs: Any) -> str:
        seen.update(kwargs, repo=repo)
        target = Path(kwargs["local_dir"])
        for name in ("model.bin", "config.json", "tokenizer.json"):
            (target / name).symlink_to(random_whisper_dir / name)
        return str(target)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_download)
    settings = load_settings(data_dir=tmp_path)
    assert run_models(_parser().parse_args(["models", "pull", "base.en"]), settings) == 0
    assert seen["repo"] == "Systran/faster-whisper-base.en"
    assert seen["tqdm_class"] is not None
    assert Path(seen["local_dir"]) == tmp_path / "models" / "base.en"
    listing = models_cli.list_models(settings)
    assert "base.en" in listing and str(tmp_path / "models" / "base.en") in listing


def test_list_and_the_standalone_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_STT_MODEL", str(tmp_path / "nothing-here"))
    monkeypatch.setattr("huggingface_hub.snapshot_download", _offline)
    assert models_cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "NOT INSTALLED" in out and "available to pull: " in out and "tiny.en" in out
    assert models_cli.main(["pull", "tiny.en"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: cannot download speech model 'tiny.en'")
    assert err.count("\n") == 1 and "Traceback" not in err
