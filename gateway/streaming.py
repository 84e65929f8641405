"""Streamed answers: the dispatcher's side of a channel that speaks while the agent writes.

A channel registers a `LiveOpener` in `Dispatcher.live_replies` (the phone: the
caller's live call). When the brain is a `StreamingBrain` and the opener gives a
`LiveReply` for the turn, a `Relay` asks the brain with `respond_stream`,
forwards each finished sentence to the live reply at once, and keeps what was
said. The turn is then stored exactly as before, in one transaction, with the
reply made to start with what was already said (`cover`), so the stored message
is what the customer heard; the live reply is handed that message (`deliver`)
instead of the channel's `publish`, so nothing is said twice.

When the agent fails mid-answer (an exception, the dispatcher's timeout) the
sentences already said stay said: the dispatcher's fallback reply follows
them, and the stored reply holds both. A half-written sentence never reaches
the channel (the brain only yields finished ones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.errors import LlmError
from gateway.models import Conversation, Customer, Message, Reply
from gateway.protocols import Brain, Decision, LiveReply, StreamingBrain, TurnContext

LiveOpener = Callable[[Customer, Conversation, Message], LiveReply | None]
"""A channel's live view for the answer to `message`, or None (no live session)."""


class Relay:
    """One streamed turn: sentences to the live reply, then the stored reply to it."""

    def __init__(self, brain: StreamingBrain, live: LiveReply) -> None:
        self.brain = brain
        self.live = live
        self.said: list[str] = []
        self._finished = False

    @classmethod
    def open(
        cls,
        brain: Brain,
        opener: LiveOpener | None,
        customer: Customer,
        conversation: Conversation,
        message: Message,
    ) -> Relay | None:
        """A relay when the brain streams and the channel has a live view; else None."""
        if opener is None or not callable(getattr(brain, "respond_stream", None)):
            return None
        live = opener(customer, conversation, message)
        return None if live is None else cls(brain, live)  # type: ignore[arg-type]

    async def ask(self, turn: TurnContext) -> Decision:
        """The brain's decision, each sentence relayed as soon as it is written."""
        items = self.brain.respond_stream(turn)
        try:
            async for item in items:
                if isinstance(item, Decision):
                    return item
                self.said.append(item)
                self.live.sentence(item)
        finally:  # a timeout or a cancellation stops the model too
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
        raise LlmError("garbage", "the agent's stream ended without a decision")

    def cover(self, decision: Decision) -> Decision:
        """`decision` with its first reply starting with what was already said (a
        fallback decided after some sentences went out keeps them in front)."""
        said = " ".join(" ".join(self.said).split())
        if not said:
            return decision
        actions = list(decision.actions)
        for index, action in enumerate(actions):
            if isinstance(action, Reply):
                text = " ".join(action.text.split())
                if not text.startswith(said):
                    actions[index] = Reply(text=f"{said} {text}".strip())
                break
        else:
            actions.insert(0, Reply(text=said))
        return decision.model_copy(update={"actions": tuple(actions)})

    def deliver(self, messages: Sequence[Message]) -> tuple[Message, ...]:
        """Hand the stored reply (the first message) to the live view; returns the
        messages still to publish as usual."""
        first = messages[0] if messages else None
        self.close(first)
        return tuple(messages[1:])

    def close(self, message: Message | None = None) -> None:
        """Finish the live view once (`message`: the stored reply, or None)."""
        if not self._finished:
            self._finished = True
            self.live.finish(message)


__all__ = ["LiveOpener", "Relay"]
