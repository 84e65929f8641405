"""`gateway reps add` / `gateway reps list`."""

from __future__ import annotations

import asyncio
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


def test_reps_update_changes_only_what_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough pw\n"))
    assert main(["reps", "add", "alice", "--skills", "general", "--phone", "+15551230000",
                 "--password-stdin"]) == 0  # fmt: skip
    assert main(["reps", "update", "alice", "--name", "Alice B", "--skills", "billing,general",
                 "--max-calls", "2"]) == 0  # fmt: skip
    assert main(["reps", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "alice\tAlice B\tbilling,general\t+15551230000\toffline" in out
    assert main(["reps", "update", "alice", "--phone", ""]) == 0  # removes the number
    assert main(["reps", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "alice\tAlice B\tbilling,general\t-\toffline" in out
    assert main(["reps", "update", "nobody", "--name", "X"]) == 2
    assert main(["reps", "update", "alice", "--max-calls", "99"]) == 2
    assert main(["reps", "update", "alice", "--phone", "not a number"]) == 2
    _, err = capsys.readouterr()
    assert "no rep named 'nobody'" in err
    assert "--max-calls" in err and "--phone" in err and "Traceback" not in err


async def test_on_sqlite_the_command_says_to_stop_the_gateway_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.store.sqlite import SqliteStore

    running = SqliteStore.open(tmp_path / "gateway.sqlite3")  # a gateway holds the file
    try:
        monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
        assert await asyncio.to_thread(main, ["reps", "list"]) == 2
    finally:
        await running.close()
    _, err = capsys.readouterr()
    assert "another gateway process is using" in err and "stop the gateway" in err
