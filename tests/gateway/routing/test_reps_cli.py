"""`gateway reps add` / `gateway reps list`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.cli import main


def test_reps_add_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough pw\n"))
    args = ["reps", "add", "alice", "--skills", "billing,general", "--phone", "+1 555 123 0000",
            "--password-stdin"]  # fmt: skip
    assert main(args) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough pw\n"))
    assert main(args) == 2  # the username is taken
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["reps", "add", "bob", "--password-stdin"]) == 2
    assert main(["reps", "list"]) == 0
    out, err = capsys.readouterr()
    assert "alice\talice\tbilling,general\t+15551230000\toffline" in out
    assert "bob" not in out
    assert "exists" in err and "at least 8" in err
