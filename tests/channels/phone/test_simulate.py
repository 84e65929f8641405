"""`gateway simulate-call` (and `gateway models`) as a developer uses them."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulate import load_turn, simulate
from channels.speech.audio import read_mulaw_wav, write_mulaw_wav
from gateway.errors import ChannelError, ConfigError
from gateway.keys import OUTBOUND_CALLER, STORE
from gateway.models import ChannelKind, Identity, IdentityKind
from tests.channels.phone.calls import FixtureTranscriber, Recording, phone_app, phone_settings

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_simulate_call_prints_the_transcript_and_latency(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = _free_port()  # the REST stand-in the gateway hangs up through
    settings = phone_settings(tmp_path, f"http://127.0.0.1:{port}")
    client = await aiohttp_client(phone_app(settings, FixtureTranscriber(recordings)))
    wav = tmp_path / "bye.wav"
    write_mulaw_wav(wav, recordings["goodbye"].mulaw)
    args = argparse.Namespace(
        turns=[str(wav)], url=str(client.make_url("")).rstrip("/"), caller="+15550005555",
        out=str(tmp_path / "heard.wav"), api_port=port, wait=20.0,
    )  # fmt: skip
    assert await simulate(args, settings) == 0
    out = capsys.readouterr().out
    assert "agent: Thanks for calling support. How can I help you today?" in out
    assert "caller: Bye now.  (confidence 0.87)" in out
    assert "agent: Thanks for contacting us. Have a good day!" in out
    [latency] = [line for line in out.splitlines() if line.strip().startswith(str(wav))]
    assert latency.endswith(" ms") and 0 < int(latency.split()[-2]) < 5000
    heard, rate = read_mulaw_wav(tmp_path / "heard.wav")
    assert rate == 8000 and len(heard) > 8000 * 3  # the greeting and the goodbye


def test_turns_are_wav_files_or_keys(tmp_path: Path, recordings: dict[str, Recording]) -> None:
    assert load_turn("keys:1001#") == "1001#"
    with pytest.raises(ConfigError):
        load_turn("keys:12x")
    with pytest.raises(ConfigError):
        load_turn(str(tmp_path / "missing.wav"))
    wav = tmp_path / "q.wav"
    write_mulaw_wav(wav, recordings["order_status"].mulaw)
    assert load_turn(str(wav)) == recordings["order_status"].mulaw


def test_the_cli_has_simulate_call_and_models(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATA_DIR"] = str(tmp_path)
    run = [sys.executable, "-m", "gateway.cli"]
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert "simulate-call" in helped.stdout and "models" in helped.stdout
    listed = subprocess.run([*run, "models", "list"], capture_output=True, text=True, env=env,
                            cwd=ROOT, check=True)  # fmt: skip
    assert "configured (GATEWAY_STT_MODEL): tiny.en" in listed.stdout
    no_token = subprocess.run([*run, "simulate-call", "keys:1"], capture_output=True, text=True,
                              env=env, cwd=ROOT)  # fmt: skip
    assert no_token.returncode == 2 and "GATEWAY_TWILIO_AUTH_TOKEN" in no_token.stderr


async def _place_when_listening(
    app: web.Application, conversation_id: int, customer_id: int
) -> str:
    """Place an outreach call once the simulation's REST stand-in listens."""
    calls = app[OUTBOUND_CALLER]
    for _ in range(100):
        try:
            return await calls.place(
                to="+15551234567", conversation_id=conversation_id, customer_id=customer_id,
                outreach_id="evt-sim", opening="Hi Jane, it's about your order 1001.",
                voicemail="Hi Jane, please call us back about your order.",
            )  # fmt: skip
        except ChannelError:  # not listening yet
            await asyncio.sleep(0.1)
    raise AssertionError("the stand-in never listened")


@pytest.mark.parametrize("answered_by", ["human", "machine_end_beep"])
async def test_simulate_call_answers_an_outbound_call(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    capsys: pytest.CaptureFixture[str],
    answered_by: str,
) -> None:
    port = _free_port()
    settings = phone_settings(
        tmp_path, f"http://127.0.0.1:{port}", outbound_caller_id="+15550009999"
    )
    app = phone_app(settings, FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    jane = Identity(kind=IdentityKind.PHONE, value="+15551234567")
    opened = await app[STORE].open_session(jane, ChannelKind.SMS)
    wav = tmp_path / "bye.wav"
    write_mulaw_wav(wav, recordings["goodbye"].mulaw)
    args = argparse.Namespace(
        turns=[str(wav)], url=str(client.make_url("")).rstrip("/"), caller="+15550005555",
        out=str(tmp_path / "heard.wav"), api_port=port, wait=20.0, answer_outbound=answered_by,
    )  # fmt: skip
    simulation = asyncio.create_task(simulate(args, settings))
    sid = await _place_when_listening(app, opened.conversation.id, opened.customer.id)
    assert await simulation == 0
    out = capsys.readouterr().out
    assert f"the gateway calls +15551234567 from +15550009999 ({sid}): {answered_by}" in out
    if answered_by == "human":
        transcript = out.split("transcript:")[1].strip().splitlines()
        assert transcript[0].endswith("agent: Hi Jane, it's about your order 1001.")
        assert "caller: Bye now.  (confidence 0.87)" in out
    else:
        assert "voicemail played" in out
        assert (tmp_path / "heard.wav").read_bytes()[:4] == b"RIFF"
