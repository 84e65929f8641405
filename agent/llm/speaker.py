"""`Speaker`: collects what the model writes in one turn and, when streaming,
emits each sentence the moment it is complete (the phone speaks it at once).

A half-written sentence is never emitted: when the turn fails mid-answer the
partial sentence is dropped (`abandon`) and the fallback's sentences follow.
Every sentence the model writes passes the output check (agent/llm/output_check.py)
before it is emitted; the first that fails ends the model's turn (`LlmError`
"unsafe_output"), so the brain falls back. A fallback decision carries only the
fallback's words, except on a live call, where checked sentences were already
spoken: they stay in front, so the stored message is what the caller heard.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.llm.output_check import OutputCheck
from agent.llm.sentences import SentenceSplitter
from gateway.errors import LlmError
from gateway.models import Reply
from gateway.protocols import Decision

HOLD = "One moment while I check that."


class Speaker:
    """`emit` receives each sentence; `stream` says a consumer is listening live."""

    def __init__(
        self,
        emit: Callable[[str], None] | None = None,
        *,
        stream: bool = False,
        check: OutputCheck | None = None,
    ) -> None:
        self._emit = emit
        self.stream = stream
        self.check = check  # the output check, bound to the customer's message
        self._splitter = SentenceSplitter()
        self.spoken: list[str] = []
        self.held = False

    async def text(self, piece: str) -> None:
        """A piece of the model's answer as it streams in."""
        for sentence in self._splitter.feed(piece):
            self._say_model(sentence)

    async def hold(self) -> None:
        """A slow tool is running: tell the caller so they don't sit in silence."""
        self.held = True
        self._say(HOLD)

    def finish(self) -> None:
        """The answer is complete: the last sentence needs no full stop to be said."""
        for sentence in self._splitter.flush():
            self._say_model(sentence)

    def abandon(self) -> None:
        """The answer broke off: drop the unfinished sentence."""
        self._splitter = SentenceSplitter()

    def say_all(self, text: str) -> None:
        """Emit a complete text we wrote ourselves, sentence by sentence."""
        splitter = SentenceSplitter()
        for sentence in [*splitter.feed(text), *splitter.flush()]:
            self._say(sentence)

    def reply_text(self, model_text: str) -> str:
        """The reply to store: the model's text, after the holding phrase if one was said."""
        return f"{HOLD} {model_text}" if self.held else model_text

    def finish_decision(self, decision: Decision) -> Decision:
        """Emit a fallback decision's replies. On a live call what was already said stays
        in front (it was heard); elsewhere the customer gets the fallback's words only."""
        before = " ".join(self.spoken) if self.stream else ""
        actions = list(decision.actions)
        for i, action in enumerate(actions):
            if isinstance(action, Reply):
                self.say_all(action.text)
                if before:
                    actions[i] = Reply(text=f"{before} {action.text}")
                    before = ""
        return decision.model_copy(update={"actions": tuple(actions)})

    def _say_model(self, sentence: str) -> None:
        problem = self.check.problem(sentence, finished=False) if self.check else None
        if problem is not None:
            raise LlmError("unsafe_output", f"the model wrote {problem.replace('_', ' ')}")
        self._say(sentence)

    def _say(self, sentence: str) -> None:
        self.spoken.append(sentence)
        if self._emit is not None:
            self._emit(sentence)


__all__ = ["HOLD", "Speaker"]
