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
    assert "alice\talice\tbilling,general\t+15551230000\trep\toffline" in out
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
    assert "alice\tAlice B\tbilling,general\t+15551230000\trep\toffline" in out
    assert main(["reps", "update", "alice", "--phone", ""]) == 0  # removes the number
    assert main(["reps", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "alice\tAlice B\tbilling,general\t-\trep\toffline" in out
    assert main(["reps", "update", "nobody", "--name", "X"]) == 2
    assert main(["reps", "update", "alice", "--max-calls", "99"]) == 2
    assert main(["reps", "update", "alice", "--phone", "not a number"]) == 2
    _, err = capsys.readouterr()
    assert "no rep named 'nobody'" in err
    assert "--max-calls" in err and "--phone" in err and "Traceback" not in err


async def test_beside_a_running_gateway_on_sqlite_reps_are_added_and_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.routing.setup import open_routing_store
    from gateway.store.sqlite import SqliteStore

    running = SqliteStore.open(tmp_path / "gateway.sqlite3")  # a gateway holds the file
    try:
        monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
        monkeypatch.setattr("sys.stdin", io.StringIO("long enough pw\n"))
        add = ["reps", "add", "alice", "--skills", "billing", "--role", "supervisor",
               "--password-stdin"]  # fmt: skip
        assert await asyncio.to_thread(main, add) == 0
        routing = open_routing_store(running)
        (alice,) = await routing.list_reps()  # the running store reads what was written
        assert (alice.username, alice.skills, alice.role.value) == ("alice", ("billing",),
                                                                    "supervisor")  # fmt: skip
        assert await asyncio.to_thread(main, ["reps", "disable", "alice"]) == 0
        assert await routing.list_reps() == []
        (listed,) = await routing.list_reps(include_disabled=True)
        assert listed.disabled
        creds = await routing.credentials("alice")
        assert creds is not None and creds.disabled
        assert await asyncio.to_thread(main, ["reps", "enable", "alice"]) == 0
        assert [r.username for r in await routing.list_reps()] == ["alice"]
    finally:
        await running.close()
    _, err = capsys.readouterr()
    assert "within a few seconds" in err and "Traceback" not in err


def test_an_unknown_skill_is_refused_with_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough pw\n"))
    assert main(["reps", "add", "bob", "--skills", "salez", "--password-stdin"]) == 2
    _, err = capsys.readouterr()
    assert "unknown skill salez" in err
    assert "billing, general, technical" in err  # the default queues' skills
    assert main(["reps", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "bob" not in out


def test_no_password_on_stdin_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    for args in (["reps", "add", "x"], ["reps", "add", "x", "--password-stdin"]):
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # as `</dev/null`
        assert main(args) == 2
        _, err = capsys.readouterr()
        assert "no password" in err and "Traceback" not in err and "EOFError" not in err


def test_passwd_sets_a_new_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.routing.passwords import verify_password
    from gateway.settings import load_settings

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("first password\n"))
    assert main(["reps", "add", "carol", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("second password\n"))
    assert main(["reps", "passwd", "carol", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["reps", "passwd", "carol", "--password-stdin"]) == 2

    async def stored_hash() -> str:
        from gateway.app import open_store
        from gateway.routing.setup import open_routing_store

        store = await open_store(load_settings())
        try:
            creds = await open_routing_store(store).credentials("carol")
            assert creds is not None
            return creds.password_hash
        finally:
            await store.close()

    digest = asyncio.run(stored_hash())
    assert verify_password("second password", digest)
    assert not verify_password("first password", digest)
