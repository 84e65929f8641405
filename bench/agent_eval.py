"""Scripted support scenarios against the agent: which ones end right, with no wrong action.

    .venv/bin/python bench/agent_eval.py [--scenarios bench/scenarios] [-v] [--split dev]

Real customer wording. `bench/eval/utterances.jsonl` holds utterances from
public data sets (source and licence on every row; bench/eval/build.py rebuilds
it), each mapped to one of our intent families with what the agent must do:
answer it under one of the family's intents, or hand over (to the family's
queue). Each runs as the first message of a signed web chat of customer C-1001.
Only the `dev` split is reported by default (nothing is tuned on it; `train`
feeds the exemplars). Columns: right (the expected end: right intent answered,
or handed over to the right queue, and no wrong action), right queue (of the
handovers expected), unneeded handovers (of the rows that needed no person),
missed handovers (of those that did), wrong actions (changes not asked for).

Each `bench/scenarios/*.toml` is one conversation: the customer's account (or
none), the channel, the customer's turns, and one or more acceptable outcomes
(`[[expect]]`: `resolved` or `handover`, the handover `queue`, tool `effects`
that must have happened, exact `counts` of some of them, text the replies must
contain) plus `never_contains`
(text no reply may contain, such as another customer's tracking number).

The scenarios run against the embedded policy and, when GATEWAY_LLM_BASE_URL
and GATEWAY_LLM_MODEL are set, against the LLM brain too, each on a fresh demo
backend. A "wrong action" is an effect that changes something (a reset sent, a
cancellation, a refund or an approval request) that the matched outcome did
not expect, or a reply leaking what it must not: it must be zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.demo_backend import DemoBackend  # noqa: E402
from agent.kb import KnowledgeBase  # noqa: E402
from agent.policy import EmbeddedPolicy  # noqa: E402
from agent.understand import Matcher  # noqa: E402
from gateway.models import (  # noqa: E402
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Reply,
    Transfer,
    Verification,
)
from gateway.protocols import Brain, EventDraft, TurnContext  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

CHANGES = frozenset(
    {
        "tool.password_reset",
        "tool.subscription_cancel",
        "tool.refund_order",
        "tool.callback_schedule",
        "approval.pending",
    }
)


@dataclass
class Ledger:
    """In-memory `UsageLedger`."""

    rows: list[tuple[int, str, datetime]] = field(default_factory=list)

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int:
        return sum(1 for c, k, at in self.rows if c == customer_id and k == kind and at >= since)


@dataclass
class Result:
    name: str
    outcome: str  # "resolved" or "handover"
    correct: bool
    wrong_actions: list[str]
    turns: int


async def run_scenario(name: str, spec: dict[str, Any], make: Any) -> Result:
    channel = ChannelKind(spec.get("channel", "webchat"))
    now = datetime.now(UTC)
    customer = Customer(
        id=1,
        display_name=spec.get("name", "Customer"),
        account_ref=spec.get("account"),
        identities=(Identity(kind=IdentityKind.WEBCHAT, value="eval", verified=Verification.HMAC),),
        created_at=now,
    )
    with tempfile.TemporaryDirectory() as tmp:
        backend = DemoBackend(Path(tmp) / "backend.sqlite3")
        ledger = Ledger()
        brain, close = await make(backend, ledger)
        state: dict[str, Any] = {}
        history: list[Message] = []
        events: list[EventDraft] = []
        replies: list[str] = []
        handover: Transfer | None = None
        turns = 0
        try:
            for turns, text in enumerate(spec["turns"], start=1):
                seq = len(history) + 1
                message = _message(seq, channel, text, Direction.INBOUND, now)
                conversation = Conversation(
                    id=1, customer_id=1, state=ConversationState.BOT, channel=channel,
                    channels=(channel,), agent_state=state, version=turns,
                    created_at=now, updated_at=now,
                )  # fmt: skip
                context = TurnContext(
                    customer=customer,
                    conversation=conversation,
                    message=message,
                    history=tuple(history[-brain.history_window :] if brain.history_window else ()),
                )
                decision = await brain.respond(context)
                state = dict(decision.agent_state)
                events.extend(decision.events)
                ledger.rows.extend((1, e.kind, datetime.now(UTC)) for e in decision.events)
                history.append(message)
                for action in decision.actions:
                    if isinstance(action, Reply):
                        replies.append(action.text)
                        history.append(
                            _message(
                                len(history) + 1, channel, action.text, Direction.OUTBOUND, now
                            )
                        )
                    if isinstance(action, Transfer):
                        handover = action
                if handover is not None:
                    break
        finally:
            await close()
            await backend.close()
    return judge(name, spec, events, replies, handover, turns)


def judge(
    name: str,
    spec: dict[str, Any],
    events: list[EventDraft],
    replies: list[str],
    handover: Transfer | None,
    turns: int,
) -> Result:
    outcome = "handover" if handover is not None else "resolved"
    kinds = {e.kind for e in events}
    said = "\n".join(replies)
    leaks = [f"leaked {s!r}" for s in spec.get("never_contains", []) if s in said]
    best: list[str] | None = None
    for expect in spec["expect"]:
        if expect["outcome"] != outcome:
            continue
        if handover is not None and expect.get("queue") not in (None, handover.queue):
            continue
        counts = expect.get("counts", {})
        expected = set(expect.get("effects", [])) | set(counts)
        if not expected <= kinds:
            continue
        if any(sum(e.kind == kind for e in events) != n for kind, n in counts.items()):
            continue
        if not all(s in said for s in expect.get("reply_contains", [])):
            continue
        wrong = sorted((kinds & CHANGES) - expected)
        if best is None or len(wrong) < len(best):
            best = wrong
    correct = best is not None and not leaks
    wrong_actions = [*leaks, *(best if best is not None else sorted(kinds & CHANGES))]
    return Result(name, outcome, correct and not wrong_actions, wrong_actions, turns)


def _message(
    seq: int, channel: ChannelKind, text: str, direction: Direction, now: datetime
) -> Message:
    inbound = direction is Direction.INBOUND
    return Message(
        id=seq, conversation_id=1, customer_id=1, seq=seq, direction=direction,
        author=AuthorKind.CUSTOMER if inbound else AuthorKind.AGENT, channel=channel,
        text=text, created_at=now,
    )  # fmt: skip


def brains() -> list[tuple[str, Any]]:
    """(label, factory) for the embedded policy and, when configured, the LLM."""
    kb = KnowledgeBase()
    matcher = Matcher.load()

    async def policy(backend: DemoBackend, ledger: Ledger) -> tuple[Brain, Any]:
        async def close() -> None:
            return None

        return EmbeddedPolicy(backend, ledger, kb, matcher=matcher), close

    found: list[tuple[str, Any]] = [("embedded policy", policy)]
    settings = load_settings()
    if settings.llm_enabled:
        from agent.llm.wiring import build_llm_brain

        async def llm(backend: DemoBackend, ledger: Ledger) -> tuple[Brain, Any]:
            brain, client = build_llm_brain(
                settings, EmbeddedPolicy(backend, ledger, kb), backend, ledger, kb
            )
            return brain, client.close

        found.append((f"LLM {settings.llm_model}", llm))
    return found


@dataclass
class Graded:
    family: str
    right: bool
    handed: bool
    queue_ok: bool
    wrong: int
    said: str


async def run_utterance(row: dict[str, Any], make: Any) -> Graded:
    """One real utterance as the first message of a signed web chat, graded."""
    spec = {"account": "C-1001", "turns": [row["text"]], "expect": [{"outcome": "resolved"}]}
    captured: dict[str, Any] = {}

    async def wrapped(backend: DemoBackend, ledger: Ledger) -> tuple[Brain, Any]:
        brain, close = await make(backend, ledger)

        class Spy:
            history_window = brain.history_window

            async def respond(self, turn: TurnContext) -> Any:
                decision = await brain.respond(turn)
                captured["decision"] = decision
                return decision

        return Spy(), close

    await run_scenario(row["family"], spec, wrapped)
    decision = captured["decision"]
    transfer = next((a for a in decision.actions if isinstance(a, Transfer)), None)
    kinds = {e.kind for e in decision.events}
    expected = {"tool.password_reset"} if row["family"] == "password" else set()
    wrong = len((kinds & CHANGES) - expected)
    handed = transfer is not None
    queue_ok = handed and row.get("queue") in (None, transfer.queue if transfer else None)
    answered = not handed and decision.intent in row["intents"]
    right = queue_ok if row["handover"] else answered
    return Graded(row["family"], right and not wrong, handed, queue_ok, wrong, decision.intent)


async def evaluate_set(path: Path, split: str, verbose: bool) -> None:
    lines = path.read_text("utf-8").splitlines()  # noqa: ASYNC240 - a benchmark's input
    rows = [json.loads(line) for line in lines if line.strip()]
    rows = [r for r in rows if split == "all" or r["split"] == split]
    print(f"\n{len(rows)} real utterances ({split} split) from {path.relative_to(ROOT)}")
    for label, make in brains():
        graded = []
        for row in rows:
            g = await run_utterance(row, make)
            graded.append(g)
            if verbose and not g.right:
                print(f"  [{label}] BAD {row['family']:<20} -> {g.said:<24} {row['text']!r}")
        need = [g for g in graded if g.family in _NEEDS_PERSON]
        calm = [g for g in graded if g.family not in _NEEDS_PERSON]
        print(f"{label}: right {_pct(sum(g.right for g in graded), len(graded))}"
              f"  right queue {_pct(sum(g.queue_ok for g in need), len(need))}"
              f"  unneeded handovers {_pct(sum(g.handed for g in calm), len(calm))}"
              f"  missed handovers {_pct(sum(not g.handed for g in need), len(need))}"
              f"  wrong actions {sum(g.wrong for g in graded)}")  # fmt: skip
        families = sorted({g.family for g in graded})
        parts = []
        for f in families:
            mine = [g for g in graded if g.family == f]
            parts.append(f"{f} {_pct(sum(g.right for g in mine), len(mine))}")
        print("  by family: " + ", ".join(parts))


_NEEDS_PERSON = frozenset({"billing_dispute", "needs_person"})


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}% ({n}/{total})" if total else "n/a"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=Path, default=ROOT / "bench" / "scenarios")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per scenario")
    parser.add_argument("--utterances", type=Path, default=ROOT / "bench/eval/utterances.jsonl")
    parser.add_argument("--split", choices=("dev", "train", "all", "none"), default="dev")
    args = parser.parse_args()
    specs = {
        p.stem: tomllib.loads(p.read_text("utf-8")) for p in sorted(args.scenarios.glob("*.toml"))
    }
    print(f"{len(specs)} scenarios from {args.scenarios}")
    columns = ("resolved ok", "handover ok", "wrong end", "wrong actions", "turns")
    header = f"{'brain':<24} " + " ".join(f"{c:>{len(c)}}" for c in columns)
    rows = []
    for label, make in brains():
        results = [await run_scenario(name, spec, make) for name, spec in specs.items()]
        if args.verbose:
            for r in results:
                mark = "ok " if r.correct else "BAD"
                wrong = ", ".join(r.wrong_actions)
                print(f"  [{label}] {mark} {r.name:<24} {r.outcome:<9} turns={r.turns} {wrong}")
        resolved = sum(r.correct and r.outcome == "resolved" for r in results)
        handed = sum(r.correct and r.outcome == "handover" for r in results)
        wrong_end = sum(not r.correct for r in results)
        actions = sum(len(r.wrong_actions) for r in results)
        turns = sum(r.turns for r in results)
        rows.append(
            f"{label:<24} {resolved:>11} {handed:>11} {wrong_end:>9} {actions:>13} {turns:>5}"
        )
    print(header)
    print("\n".join(rows))
    if args.split != "none":
        await evaluate_set(args.utterances, args.split, args.verbose)


if __name__ == "__main__":
    asyncio.run(main())
