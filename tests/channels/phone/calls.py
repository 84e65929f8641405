"""Helpers for whole-call tests: the fixture recordings, a deterministic transcriber,
and the app with the phone channel on (the stand-in for Twilio's REST API lives in
`tests.support.twilio_rest`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from aiohttp import web
from numpy.typing import NDArray

from channels.speech.audio import (
    MULAW_RATE,
    STT_RATE,
    mulaw_decode,
    mulaw_encode,
    read_mulaw_wav,
    read_wav,
    resample,
    split_frames,
)
from channels.speech.vad import Endpointer, EndpointerConfig, UtteranceEnded
from channels.twilio.signature import TwilioSignatures
from gateway.app import create_app
from gateway.protocols import Transcriber, Transcript
from gateway.settings import Settings, load_settings
from tests.channels.phone.speech import speech_bounds
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.twilio_rest import FakeTwilioRest as FakeTwilioRest  # re-exported

FIXTURES = Path(__file__).resolve().parents[3] / "audio_fixtures"
PUBLIC_URL = "https://support.example.com"
GOODBYE_TEXT = "Bye now."
T = TypeVar("T")


@dataclass(frozen=True)
class Recording:
    """A caller recording: 8 kHz μ-law, what it says, where its speech starts."""

    name: str
    mulaw: bytes
    text: str

    @property
    def onset_s(self) -> float:
        """Where the speech starts (energy-based, independent of the VAD)."""
        first, _ = speech_bounds(mulaw_decode(self.mulaw))
        return first / MULAW_RATE


def load_recordings() -> dict[str, Recording]:
    """Every speech fixture of audio_fixtures/manifest.json, plus a spoken goodbye."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
    found = {}
    for entry in manifest:
        if entry.get("file") and entry["kind"] == "speech":
            mulaw, _ = read_mulaw_wav(FIXTURES / entry["file"])
            found[entry["name"]] = Recording(entry["name"], mulaw, entry["text"])
    found["goodbye"] = Recording("goodbye", _espeak(GOODBYE_TEXT), GOODBYE_TEXT)
    return found


def _espeak(text: str) -> bytes:
    """`text` spoken by the espeak-ng command line, as phone audio with silence around it."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "160", "-a", "120", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    path = Path(f"/tmp/gateway-test-{abs(hash(text))}.wav")
    path.write_bytes(wav)
    try:
        pcm, rate = read_wav(path)
    finally:
        path.unlink(missing_ok=True)
    quiet = np.zeros(MULAW_RATE // 4, dtype=np.int16)
    return mulaw_encode(np.concatenate((quiet, resample(pcm, rate, MULAW_RATE), quiet)))


def endpointed_samples(mulaw: bytes, config: EndpointerConfig | None = None) -> list[int]:
    """Sound spans (16 kHz samples) of the utterances the real endpointer cuts from
    `mulaw` played in 20 ms frames after half a second of silence, then a second."""
    endpointer = Endpointer(config)
    silence = bytes([0xFF]) * (MULAW_RATE // 2)
    lengths = []
    for frame in split_frames(silence + mulaw + silence * 2):
        for event in endpointer.feed_mulaw(frame):
            if isinstance(event, UtteranceEnded):
                lengths.append(sound_span(event.audio))
    return lengths


def sound_span(audio: NDArray[Any]) -> int:
    """Samples from the first to the last one louder than -34 dBFS (int16 or float
    audio): the length of an utterance whatever silence surrounds it."""
    level = np.abs(np.asarray(audio, dtype=np.float64))
    if np.issubdtype(np.asarray(audio).dtype, np.integer):
        level = level / 32768.0
    loud = np.flatnonzero(level > 0.02)
    return int(loud[-1] - loud[0] + 1) if loud.size else 0


class FixtureTranscriber:
    """`Transcriber` test double: an utterance is the known recording whose endpointed
    sound it matches in length (the nearest, within 150 ms; silence around it, which
    an early transcription has less of, does not count), else noise (empty text)."""

    TOLERANCE = STT_RATE * 150 // 1000

    def __init__(self, recordings: dict[str, Recording]) -> None:
        self.known: list[tuple[int, Recording]] = []
        for recording in recordings.values():
            for length in endpointed_samples(recording.mulaw):
                self.known.append((length, recording))
        self.heard: list[str | None] = []
        self.durations_ms: list[int] = []  # of every transcription asked for

    async def transcribe(self, pcm16k: NDArray[np.float32], *, owner: object = None) -> Transcript:
        await asyncio.sleep(0.01)  # a recogniser takes some time
        size = sound_span(pcm16k)
        length, best = min(self.known, key=lambda item: abs(item[0] - size))
        matched = abs(length - size) <= self.TOLERANCE
        self.heard.append(best.name if matched else None)
        self.durations_ms.append(int(np.asarray(pcm16k).size) * 1000 // STT_RATE)
        return Transcript(
            text=best.text if matched else "",
            confidence=0.87 if matched else 0.0,
            duration_ms=self.durations_ms[-1],
        )

    async def close(self) -> None:
        return None


def phone_settings(data_dir: Path, api_url: str = "http://127.0.0.1:9", **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": api_url,
        "tts_rate": 400,  # quick tests: the agent talks fast
    }
    values.update(extra)
    return load_settings(**values)


def phone_app(settings: Settings, transcriber: Transcriber | None) -> web.Application:
    """The real app (store, embedded agent, espeak, VAD) with `transcriber`."""
    return create_app(settings, transcriber=transcriber)


def signatures() -> TwilioSignatures:
    return TwilioSignatures(AUTH_TOKEN, PUBLIC_URL, "wss://support.example.com")


async def eventually(check: Callable[[], Awaitable[T]], within_s: float = 10.0) -> T:
    """Poll `check` until it returns something truthy (store reads have no events)."""
    async with asyncio.timeout(within_s):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.05)
