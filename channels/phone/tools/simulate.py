"""`gateway simulate-call`: a phone call into a running gateway, without Twilio.

    gateway simulate-call audio_fixtures/order_status.wav keys:1001# --out agent.wav

plays each TURN into the gateway as Twilio would (see `simulator.py`): a WAV
file (8 kHz μ-law, or 16-bit PCM at any rate, resampled) is spoken in real
time, `keys:DIGITS` is pressed on the keypad. Before each turn it waits for
the agent to finish talking; after the last it hangs up (unless the agent
hung up first). Then it prints the call's transcript (from the gateway, with
timing and confidence) and each turn's latency (end of the caller's speech or
last key to the first audio of the answer), and saves what the caller heard.

With `--answer-outbound human|machine_end_beep|...` (and `--api-port`) it
waits instead for the gateway to place an outbound call (proactive outreach:
an event whose channel is `call`), answers it as Twilio would with that
machine-detection result, then plays the turns (a person) or saves the
voicemail it was played (a machine).

Requests are signed with GATEWAY_TWILIO_AUTH_TOKEN for GATEWAY_PUBLIC_URL,
the same settings the gateway uses. With `--api-port`, a stand-in for
Twilio's REST API listens there so the agent's hang-ups work too: start the
gateway with GATEWAY_TWILIO_API_URL=http://127.0.0.1:PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from websockets.exceptions import InvalidStatus

from channels.phone.tools.simulator import TwilioApiStandIn, TwilioSimulator
from channels.speech.audio import (
    MULAW_RATE,
    MULAW_SILENCE,
    mulaw_decode,
    mulaw_encode,
    read_mulaw_wav,
    read_wav,
    resample,
    write_mulaw_wav,
)
from channels.twilio.signature import TwilioSignatures
from gateway.errors import ChannelError, ConfigError, GatewayError
from gateway.settings import Settings

ANSWER_WAIT_S = 30.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate-call` to a CLI."""
    cmd = sub.add_parser(
        "simulate-call",
        help="call a running gateway as Twilio would (no Twilio account needed)",
        description="Play WAV files and keypad presses into a running gateway over a "
        "simulated Twilio Media Stream; print the transcript and per-turn latency.",
    )
    cmd.add_argument("turns", nargs="+", metavar="TURN",
                     help="a WAV file to say, or keys:DIGITS to press (keys:1001#)")  # fmt: skip
    cmd.add_argument("--url", help="the gateway's address (default http://HOST:PORT from settings)")
    cmd.add_argument(
        "--from",
        dest="caller",
        default="+15551234567",
        help="caller number (E.164; default +15551234567, Jane in the demo data)",
    )
    cmd.add_argument("--out", help="save what the caller heard to this WAV file")
    cmd.add_argument(
        "--api-port",
        type=int,
        default=0,
        help="serve a stand-in for Twilio's REST API on this port",
    )
    cmd.add_argument(
        "--answer-outbound",
        metavar="ANSWERED_BY",
        help="wait for the gateway to place a call (on --api-port) and answer it as this "
        "machine-detection result: human, machine_end_beep, ...",
    )
    cmd.add_argument("--wait", type=float, default=ANSWER_WAIT_S,
                     help="seconds to wait for each answer (default 30)")  # fmt: skip


def load_turn(turn: str) -> bytes | str:
    """A WAV file as 8 kHz μ-law, or the keys of `keys:DIGITS`."""
    if turn.startswith("keys:"):
        keys = turn.removeprefix("keys:")
        if not keys or any(k not in "0123456789*#ABCD" for k in keys):
            raise ConfigError(f"{turn}: keys are 0-9, *, # and A-D")
        return keys
    try:
        with contextlib.suppress(ValueError):
            mulaw, rate = read_mulaw_wav(turn)
            if rate == MULAW_RATE:
                return mulaw  # phone audio already: sent byte for byte
        pcm, rate = read_wav(turn)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{turn}: {exc}") from exc
    return mulaw_encode(resample(pcm, rate, MULAW_RATE))


def speech_end_s(mulaw: bytes) -> float:
    """Where the speech in `mulaw` ends (the last 10 ms within 25 dB of the loudest)."""
    pcm = mulaw_decode(mulaw).astype(np.float64)
    step = MULAW_RATE // 100
    frames = pcm[: len(pcm) // step * step].reshape(-1, step)
    if not len(frames):
        return 0.0
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > -25.0)[0]
    return (int(loud[-1]) + 1) * step / MULAW_RATE if len(loud) else 0.0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a parsed `simulate-call`; returns the exit status, raises GatewayError."""
    return asyncio.run(simulate(args, settings))


async def simulate(args: argparse.Namespace, settings: Settings) -> int:
    """`run`, inside a running event loop."""
    token = settings.twilio_auth_token
    if token is None:
        raise ConfigError("GATEWAY_TWILIO_AUTH_TOKEN: set it to the running gateway's token")
    turns = [await asyncio.to_thread(load_turn, turn) for turn in args.turns]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = args.url or f"http://{host}:{settings.port}"
    signatures = TwilioSignatures.from_settings(settings)
    return await _call(args, settings, token.get_secret_value(), url, signatures, turns)


async def _call(
    args: argparse.Namespace, settings: Settings, token: str, url: str,
    signatures: TwilioSignatures, turns: list[bytes | str],
) -> int:  # fmt: skip
    account = settings.twilio_account_sid or "AC" + "0" * 32
    outbound = getattr(args, "answer_outbound", None)
    if outbound and not args.api_port:
        raise ConfigError("--answer-outbound needs --api-port: the gateway places the call there")
    sim = TwilioSimulator(url, signatures, call_sid="CA" + secrets.token_hex(16),
                          account_sid=account, caller=args.caller)  # fmt: skip
    api = TwilioApiStandIn(account, token) if args.api_port else None
    if api is not None:
        print(f"Twilio REST stand-in on {await api.start(args.api_port)}")
        api.calls[sim.call_sid] = sim
    latencies: list[tuple[str, float | None]] = []
    try:
        try:
            if outbound:
                assert api is not None
                sim, connected = await _answer_outbound(args, api, sim, outbound)
                if sim.voicemail is not None:
                    return await _voicemail(args, sim)
            else:
                connected = await sim.start_call()
        except (aiohttp.ClientError, OSError, InvalidStatus) as exc:
            raise ChannelError(
                f"cannot call the gateway at {url}: {exc}. Is it running, with the same "
                "GATEWAY_TWILIO_AUTH_TOKEN and GATEWAY_PUBLIC_URL as here?"
            ) from exc
        if not connected:
            print(f"the gateway answered: {sim.unavailable}")
            return 1
        print(f"call {sim.call_sid} with {sim.caller} connected to {url}")
        await _wait_answer(sim, 0, args.wait)
        for name, turn in zip(args.turns, turns, strict=True):
            await _quiet(sim, args.wait)
            if sim.closed:
                print("the call ended before every turn was played")
                break
            heard = len(sim.received.media)
            if isinstance(turn, str):
                done = await sim.press(turn)
            else:
                started, _ = await sim.say(turn)
                done = started + speech_end_s(turn)
            latencies.append((name, await _wait_answer(sim, heard, args.wait, since=done)))
        await _quiet(sim, args.wait)
        await sim.hang_up()
        await asyncio.sleep(0.3)  # the gateway stores the call's last timings
        try:
            transcript = await sim.get_json(f"/twilio/calls/{sim.call_sid}")
        except aiohttp.ClientError as exc:
            print(f"no transcript from the gateway: {exc}")
            transcript = {}
    finally:
        await sim.close()
        if api is not None:
            await api.close()
    _print_transcript(transcript, latencies)
    if args.out:
        audio = sim.agent_audio() or bytes([MULAW_SILENCE])
        await asyncio.to_thread(write_mulaw_wav, args.out, audio)
        print(f"\nwhat the caller heard: {args.out}")
    return 0


async def _answer_outbound(
    args: argparse.Namespace, api: TwilioApiStandIn, sim: TwilioSimulator, answered_by: str
) -> tuple[TwilioSimulator, bool]:
    """Wait for the gateway to place a call, answer it as `answered_by`; the callee's side
    of the call, and whether its stream is connected (a person answered)."""
    print(f"waiting up to {args.wait:.0f} s for the gateway to place a call...")
    try:
        async with asyncio.timeout(args.wait):
            sid, form = await api.placed.get()
    except TimeoutError:
        raise ChannelError("the gateway placed no call (send it an outreach event)") from None
    print(f"the gateway calls {form['To']} from {form['From']} ({sid}): {answered_by}")
    callee = TwilioSimulator(
        sim.base_url, sim.signatures, call_sid=sid, account_sid=sim.account_sid,
        caller=form["To"], called=form["From"],
    )  # fmt: skip
    api.calls[sid] = callee
    root = ET.fromstring(await callee.answer(form["Url"], answered_by))
    stream = root.find("./Connect/Stream")
    if stream is not None:
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        await callee.connect(stream.get("url", ""), parameters)
        return callee, True
    plays = [p.text or "" for p in root.iter("Play")]
    callee.voicemail = b""
    async with aiohttp.ClientSession() as session:
        for play in plays:  # Twilio fetches <Play> URLs with a plain GET
            local = callee.base_url + "/" + play.split("://", 1)[-1].split("/", 1)[-1]
            async with session.get(local) as response:
                response.raise_for_status()
                callee.voicemail += await response.read()
    return callee, False


async def _voicemail(args: argparse.Namespace, callee: TwilioSimulator) -> int:
    """A machine answered: report (and save) the voicemail it was played."""
    size = len(callee.voicemail or b"")
    print(f"voicemail played ({size} bytes of audio), then the gateway hung up")
    if args.out and callee.voicemail:
        await asyncio.to_thread(Path(args.out).write_bytes, callee.voicemail)
        print(f"the voicemail: {args.out}")
    return 0


async def _quiet(sim: TwilioSimulator, wait_s: float) -> None:
    """Until the agent has finished talking (or `wait_s` has passed)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            await sim.wait_quiet()


async def _wait_answer(
    sim: TwilioSimulator, heard: int, wait_s: float, since: float | None = None
) -> float | None:
    """Seconds from `since` to the first audio after the first `heard` frames (None: none)."""
    try:
        async with asyncio.timeout(wait_s):
            await sim.until(lambda: len(sim.received.media) > heard or sim.closed)
    except TimeoutError:
        return None
    if len(sim.received.media) <= heard or since is None:
        return None
    return sim.received.media[heard][0] - since


def _print_transcript(transcript: Any, latencies: list[tuple[str, float | None]]) -> None:
    print("\ntranscript:")
    for message in transcript.get("messages", []):
        start, end = message.get("start_ms"), message.get("end_ms")
        when = f"{start / 1000:6.2f}-{end / 1000:6.2f}s" if start is not None else " " * 15
        who = "caller" if message["author"] == "customer" else message["author"]
        confidence = message.get("confidence")
        extra = f"  (confidence {confidence:.2f})" if confidence is not None else ""
        print(f"  {when}  {who:>6}: {message['text']}{extra}")
    print("\nlatency (end of the caller's turn to the first audio of the answer):")
    for name, latency in latencies:
        shown = f"{latency * 1000:.0f} ms" if latency is not None else "no answer"
        print(f"  {name}: {shown}")


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `gateway simulate-call`
    from gateway.settings import load_settings

    parser = argparse.ArgumentParser(prog="gateway")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate-call", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args, load_settings())
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


__all__ = ["add_parser", "load_turn", "run", "simulate", "speech_end_s"]
