"""The `gateway` command as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in out.stdout and "check-config" in out.stdout


def test_bad_setting_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, GATEWAY_PORT="http"),
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "GATEWAY_PORT" in out.stderr and "Traceback" not in out.stderr


def test_serve_answers_health_and_metrics_then_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200 and b"ok" in r.read()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "gateway did not come up"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body = r.read().decode()
        assert "gateway_messages_total" in body or "# HELP gateway_messages" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert "widget.js" in r.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert (tmp_path / "data" / "gateway.sqlite3").exists()


def _gateway(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=120,
    )


def _one_error_line(stderr: str) -> str:
    """The error the command printed: exactly one `gateway: ...` line, no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("gateway: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    out = _gateway(tmp_path, "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"gateway {version('support-gateway')}"


def test_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _gateway(tmp_path, "serve", "--port", str(port))
    assert out.returncode == 2
    line = _one_error_line(out.stderr)
    assert "GATEWAY_PORT" in line and f"127.0.0.1:{port}" in line and "in use" in line


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("GATEWAY_QUEUES", "notjson", "a JSON object such as {"),
        ("GATEWAY_BUSINESS_HOURS", "mon 9-5", 'a JSON object such as {"mon": '),
        ("GATEWAY_WEBCHAT_ALLOWED_ORIGINS", '["https://x.com"', "a comma-separated list"),
        ("GATEWAY_LLM_TOOLS", "[lookup_order", "a comma-separated list"),
    ],
)
def test_badly_written_structured_setting_is_one_line(
    tmp_path: Path, env: str, value: str, expected: str
) -> None:
    out = _gateway(tmp_path, "check-config", **{env: value})
    assert out.returncode == 2
    line = _one_error_line(out.stderr)
    assert f"{env}: expected {expected}" in line and repr(value) in line


def test_lists_are_taken_comma_separated(tmp_path: Path) -> None:
    out = _gateway(
        tmp_path,
        "check-config",
        GATEWAY_WEBCHAT_ALLOWED_ORIGINS="https://x.com, https://www.x.com",
        GATEWAY_LLM_TOOLS="lookup_order",
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["webchat_allowed_origins"] == ["https://x.com", "https://www.x.com"]
    assert shown["llm_tools"] == ["lookup_order"]


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_unsupported_database_is_reported_first(tmp_path: Path, command: str) -> None:
    # No GATEWAY_SECRET_KEY either (a shared store needs one): the URL is the real problem.
    out = _gateway(tmp_path, command, GATEWAY_DATABASE_URL="mysql://app:hunter2@db/support")
    assert out.returncode == 2
    line = _one_error_line(out.stderr)
    assert "GATEWAY_DATABASE_URL" in line and "'mysql'" in line and "postgresql://" in line
    assert "GATEWAY_SECRET_KEY" not in out.stderr and "hunter2" not in out.stderr
