"""Make the caller utterances the tests use, as 8 kHz μ-law WAV, plus manifest.json.

    .venv/bin/python audio_fixtures/make_fixtures.py            # (re)write the files
    .venv/bin/python audio_fixtures/make_fixtures.py --check    # compare, write nothing

Speech is rendered by the gateway's own `EspeakSynthesizer` (pyttsx3 driving
espeak-ng, the same code path the phone channel speaks with), then resampled
and μ-law encoded by `channels.speech.audio` exactly as a phone line would carry
it. Silence, line noise and a cough are synthesized with seeded numpy. Output is
deterministic for a given espeak-ng version. Every clip except the silence has
250 ms of silence before and after it, as an utterance cut from a call would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from channels.speech.audio import (
    MULAW_RATE,
    pcm_to_mulaw,
    read_mulaw_wav,
    resample,
    write_mulaw_wav,
)
from channels.speech.tts import EspeakSynthesizer, VoiceStyle, speech_samples

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
PAD_MS = 250
SEED = 20240611

CALM = VoiceStyle(voice="en-us", rate=160, pitch=50, volume=0.7)
CALM_F = VoiceStyle(voice="en-us+f3", rate=160, pitch=55, volume=0.7)
BRITISH = VoiceStyle(voice="en-gb-x-rp", rate=165, pitch=45, volume=0.7)
ANGRY = VoiceStyle(voice="en-us+m3", rate=235, pitch=70, volume=1.0)

# name -> (text, voice, extra manifest fields)
SPEECH: dict[str, tuple[str, VoiceStyle, dict[str, Any]]] = {
    "order_status": (
        "Hi, I'm calling to check the status of my order.",
        CALM,
        {"intent": "order_status", "keywords": ["status", "order"]},
    ),
    "order_number_spoken": (
        "My order number is one zero zero one.",
        CALM_F,
        {"intent": "order_number", "digits": "1001", "keywords": ["order", "number"]},
    ),
    "password_reset": (
        "I forgot my password and I need to reset it.",
        BRITISH,
        {"intent": "password_reset", "keywords": ["password", "reset"]},
    ),
    "talk_to_person": (
        "Let me talk to a person.",
        CALM,
        {"intent": "human", "keywords": ["talk", "person"]},
    ),
    "angry_caller": (
        "This is ridiculous! I have been waiting for two weeks and my order still "
        "has not arrived! I want my money back right now!",
        ANGRY,
        {"intent": "complaint", "sentiment": "angry", "keywords": ["waiting", "money"]},
    ),
}


Pcm = NDArray[np.int16]


def _silence(ms: int) -> Pcm:
    return np.zeros(MULAW_RATE * ms // 1000, dtype=np.int16)


def _padded(pcm8k: Pcm) -> Pcm:
    return np.concatenate([_silence(PAD_MS), pcm8k, _silence(PAD_MS)])


def _line_noise(rng: np.random.Generator, ms: int) -> Pcm:
    """Hiss about 40 dB below full scale with a faint 60 Hz hum."""
    n = MULAW_RATE * ms // 1000
    t = np.arange(n) / MULAW_RATE
    noise = rng.normal(0.0, 300.0, n) + 120.0 * np.sin(2 * np.pi * 60.0 * t)
    return np.clip(np.rint(noise), -32768, 32767).astype(np.int16)


def _cough(rng: np.random.Generator, ms: int = 120) -> Pcm:
    """A 120 ms burst: low-passed noise under a fast-attack, exponential-decay envelope."""
    n = MULAW_RATE * ms // 1000
    raw = rng.normal(0.0, 1.0, n + 8)
    smooth = np.convolve(raw, np.ones(8) / 8.0, mode="valid")[:n]  # crude low-pass
    t = np.arange(n) / n
    envelope = np.minimum(t / 0.08, 1.0) * np.exp(-4.0 * t)
    burst: NDArray[np.float64] = smooth / np.max(np.abs(smooth)) * envelope * 20000.0
    return np.rint(burst).astype(np.int16)


async def _render_speech() -> dict[str, tuple[bytes, dict[str, Any]]]:
    synth = EspeakSynthesizer(timeout_s=30.0)
    clips: dict[str, tuple[bytes, dict[str, Any]]] = {}
    try:
        for name, (text, style, extra) in SPEECH.items():
            speech = await synth.synthesize(text, style)
            pcm8k = _to_8k(speech_samples(speech), speech.sample_rate)
            fields = {"kind": "speech", "text": text, "voice": style.model_dump(), **extra}
            clips[name] = (pcm_to_mulaw(_padded(pcm8k), MULAW_RATE), fields)
    finally:
        await synth.close()
    return clips


def _to_8k(pcm: Pcm, rate: int) -> Pcm:
    return resample(pcm.astype(np.int16), rate, MULAW_RATE)


def build() -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Every fixture as (file name -> μ-law bytes, manifest entries)."""
    rng = np.random.default_rng(SEED)
    clips = asyncio.run(_render_speech())
    clips["silence"] = (pcm_to_mulaw(_silence(2000), MULAW_RATE), {"kind": "silence", "text": ""})
    clips["line_noise"] = (
        pcm_to_mulaw(_padded(_line_noise(rng, 1500)), MULAW_RATE),
        {"kind": "noise", "text": "", "level_dbfs": -40},
    )
    clips["cough"] = (
        pcm_to_mulaw(_padded(_cough(rng)), MULAW_RATE),
        {"kind": "noise", "text": "", "burst_ms": 120},
    )
    files: dict[str, bytes] = {}
    manifest: list[dict[str, Any]] = []
    for name, (mulaw, fields) in clips.items():
        files[f"{name}.wav"] = mulaw
        manifest.append(
            {
                "name": name,
                "file": f"{name}.wav",
                "duration_ms": len(mulaw) * 1000 // MULAW_RATE,
                "sample_rate": MULAW_RATE,
                "encoding": "mulaw",
                **fields,
            }
        )
    manifest.insert(
        2,
        {
            "name": "order_number_keyed",
            "file": None,
            "kind": "dtmf",
            "text": "",
            "digits": "1001#",
            "intent": "order_number",
        },
    )
    return files, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the stored files")
    args = parser.parse_args(argv)
    files, manifest = build()
    manifest_text = json.dumps({"fixtures": manifest}, indent=2, ensure_ascii=False) + "\n"
    if args.check:
        stale = [name for name, data in files.items() if _read(HERE / name) != data]
        if _read(MANIFEST) != manifest_text.encode():
            stale.append(MANIFEST.name)
        for name in stale:
            print(f"differs: {name}", file=sys.stderr)
        return 1 if stale else 0
    for name, data in files.items():
        write_mulaw_wav(HERE / name, data, sample_rate=MULAW_RATE)
    MANIFEST.write_text(manifest_text, encoding="utf-8")
    total = sum(len(data) for data in files.values())
    print(f"wrote {len(files)} files ({total // 1024} KiB of audio) and {MANIFEST.name}")
    return 0


def _read(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    if path.suffix == ".wav":
        return read_mulaw_wav(path)[0]
    return path.read_bytes()


if __name__ == "__main__":
    sys.exit(main())
