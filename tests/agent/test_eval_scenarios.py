"""bench/agent_eval.py's scenarios against the embedded policy, and its judge."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.protocols import EventDraft

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    p.stem: tomllib.loads(p.read_text("utf-8"))
    for p in sorted((ROOT / "bench" / "scenarios").glob("*.toml"))
}


def _eval_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_eval", ROOT / "bench" / "agent_eval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


EVAL = _eval_module()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_embedded_policy_ends_each_scenario_right(name: str) -> None:
    _, make = EVAL.brains()[0]
    result = await EVAL.run_scenario(name, SCENARIOS[name], make)
    assert result.wrong_actions == []
    assert result.correct, result


def _events(*kinds: str) -> list[EventDraft]:
    return [EventDraft(kind=kind, data={}) for kind in kinds]


def test_the_judge_counts_unexpected_changes_leaks_and_exact_counts() -> None:
    spec: dict[str, Any] = {
        "expect": [{"outcome": "resolved", "counts": {"tool.password_reset": 3}}],
        "never_contains": ["SECRET"],
    }
    ok = EVAL.judge("x", spec, _events(*["tool.password_reset"] * 3), ["done"], None, 3)
    assert ok.correct and ok.wrong_actions == []
    four = EVAL.judge("x", spec, _events(*["tool.password_reset"] * 4), ["done"], None, 4)
    assert not four.correct and four.wrong_actions == ["tool.password_reset"]
    leak = EVAL.judge("x", spec, _events(*["tool.password_reset"] * 3), ["a SECRET"], None, 1)
    assert not leak.correct and leak.wrong_actions == ["leaked 'SECRET'"]
    extra = EVAL.judge(
        "x", spec, _events("tool.password_reset", "tool.password_reset",
                           "tool.password_reset", "tool.subscription_cancel"), [], None, 1,
    )  # fmt: skip
    assert not extra.correct and extra.wrong_actions == ["tool.subscription_cancel"]
