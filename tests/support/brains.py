"""Deterministic `Brain` test doubles (the agent core is a seam; tests may swap it)."""

from __future__ import annotations

import asyncio

from gateway.models import HandoffBrief, Reply, Transfer
from gateway.protocols import Decision, TurnContext

__all__ = ["EchoBrain"]


class EchoBrain:
    """Replies `echo: <text>`. The text `human` also transfers to the `general` queue.

    `gate`, when set, is awaited before every answer, so a test can hold replies back.
    """

    history_window = 0

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.seen: list[str] = []

    async def respond(self, turn: TurnContext) -> Decision:
        if self.gate is not None:
            await self.gate.wait()
        text = turn.message.text
        self.seen.append(text)
        if text == "human":
            brief = HandoffBrief(need="a person", next_step="take over", confidence=0.9)
            return Decision(
                actions=(Reply(text="connecting you"), Transfer(queue="general", brief=brief)),
                intent="handover",
                confidence=0.9,
            )
        return Decision(actions=(Reply(text=f"echo: {text}"),), intent="echo", confidence=1.0)
