"""The bounded tool loop for one turn.

Each round streams one completion. Tool calls are run through the guardrails
(`LlmTools`) and their results appended; a round without tool calls is the
answer. At most `max_steps` rounds may call tools; the round after that is
offered no tools, so the model must answer with what it has. A call to
`escalate` ends the loop at once (the brain hands over). The second malformed
tool call in a turn, an empty answer, or a model still calling tools when it
was offered none is `LlmError("garbage")`: the brain falls back.

While a slow tool runs, `on_hold` is called once (a call says "one moment"),
so a caller is never left in silence. The time budget is the caller's
(`asyncio.timeout` around `run_loop`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.llm.client import LlmClient, LlmUsage, TextSink
from agent.llm.guard import LlmTools, Outcome
from agent.llm.tools import ESCALATE
from gateway.errors import LlmError

MAX_INVALID_CALLS = 2  # the first goes back to the model as a tool error


@dataclass
class LoopResult:
    """How the loop ended: an answer, or a request to escalate."""

    text: str
    steps: int
    escalation: str | None = None  # the raw JSON arguments of an `escalate` call
    tools_called: list[str] = field(default_factory=list)


async def run_loop(
    client: LlmClient,
    messages: list[dict[str, Any]],
    tools: LlmTools,
    *,
    max_steps: int,
    on_text: TextSink | None = None,
    on_hold: Callable[[], Awaitable[None]] | None = None,
    hold_after_s: float = 1.0,
    usage: LlmUsage | None = None,
) -> LoopResult:
    """Run the model and its tools until it answers. Raises LlmError."""
    said: list[str] = []
    called: list[str] = []
    invalid = 0
    held = False
    for step in range(max_steps + 1):
        offered = tools.schemas() if step < max_steps else []
        completion = await client.complete(messages, tools=offered, on_text=on_text, usage=usage)
        if completion.text.strip():
            said.append(completion.text.strip())
        if not completion.tool_calls:
            if not said:
                raise LlmError("garbage", "the model answered with nothing")
            return LoopResult(text=" ".join(said), steps=step, tools_called=called)
        if not offered:
            raise LlmError("garbage", f"the model kept calling tools after {max_steps} steps")
        messages.append(completion.as_message())
        for call in completion.tool_calls:
            called.append(call.name)
            if call.name == ESCALATE.name and ESCALATE.name in tools.allowed:
                return LoopResult(
                    text=" ".join(said), steps=step + 1, escalation=call.arguments,
                    tools_called=called,
                )  # fmt: skip
            run = asyncio.ensure_future(tools.run(call.name, call.arguments))
            try:
                if on_hold is not None and not held:
                    done, _ = await asyncio.wait({run}, timeout=hold_after_s)
                    if not done:
                        held = True
                        await on_hold()
                outcome: Outcome = await run
            finally:
                run.cancel()  # the budget ran out mid-tool: leave nothing running
            if outcome.invalid:
                invalid += 1
                if invalid >= MAX_INVALID_CALLS:
                    raise LlmError("garbage", f"a second malformed call to {call.name}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.content()})
    raise AssertionError("unreachable: the last round offers no tools")  # pragma: no cover


__all__ = ["MAX_INVALID_CALLS", "LoopResult", "run_loop"]
