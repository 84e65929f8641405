"""`LlmBrain`: the `Brain` that reasons with a language model, acts through the
shared tools, and never leaves a customer without an answer.

One turn, in order:

1. The gateway's own signals, before and regardless of the model: strong anger
   or a request for a person hands over at once (template brief); after two
   failed LLM turns in a row, the next turn hands over too. A message the
   speech recogniser was unsure of (`Message.confidence` below
   `min_confidence`) is not acted on: the caller is asked to repeat it, and the
   second such message in a row hands over.
2. A sensitive action waiting for confirmation (`Pending`, in agent_state) is
   carried out if the customer said yes, and the outcome is worded by us, not
   the model; anything else drops it, and the model is told nothing was done.
3. The bounded tool loop (agent/llm/loop.py) within the channel's time budget.
   An `escalate` call hands over with the model's structured brief.
4. On any LLM failure (HTTP error, timeout, broken stream, garbage, too many
   steps, budget spent): `fall_back` (embedded policy, or an apology and a handover).

`respond_stream` is the same turn, yielding each sentence as soon as it is
complete (for text-to-speech) and the `Decision` last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.backend import Backend
from agent.intents import Intent, has, parse
from agent.kb import KnowledgeBase
from agent.llm.brief import brief_from_args, structured_brief, template_brief
from agent.llm.client import LlmClient, LlmUsage
from agent.llm.context import build_messages
from agent.llm.fallback import apology, fall_back
from agent.llm.guard import LlmTools, Pending
from agent.llm.loop import run_loop
from agent.llm.output_check import OutputCheck
from agent.llm.prompts import Prompts
from agent.llm.speaker import Speaker
from agent.llm.tools import LLM_TOOLS
from agent.sentiment import SentimentAnalyzer, worse
from agent.tools import Toolbox
from gateway.errors import BackendError, LlmError
from gateway.models import Action, ChannelKind, Hangup, Reply, Sentiment, Transfer
from gateway.protocols import (
    Brain,
    Decision,
    EventDraft,
    StreamingBrain,
    TurnContext,
    UsageLedger,
)
from gateway.usage import Usage

log = logging.getLogger(__name__)

STATE_KEY = "llm"  # our part of agent_state; the embedded policy ignores it
MAX_FAILURES = 2  # consecutive failed LLM turns before the next one hands over
MAX_UNCLEAR = 2  # consecutive low-confidence transcripts that hand over
NOT_HEARD = "Sorry, I didn't quite catch that. Could you say it again?"


@dataclass(frozen=True)
class LlmConfig:
    """The brain's limits (from `gateway.settings.Settings`)."""

    max_tool_steps: int = 4
    budgets_s: Mapping[ChannelKind, float] = field(default_factory=dict)
    default_budget_s: float = 8.0
    refund_limit_cents: int = 5000
    resets_per_day: int = 3
    allowed_tools: frozenset[str] = frozenset(LLM_TOOLS)
    use_policy_fallback: bool = True
    history_window: int = 20
    hold_after_s: float = 1.0
    min_confidence: float = 0.35  # transcripts below it are not acted on (see the module doc)

    def budget(self, channel: ChannelKind) -> float:
        return self.budgets_s.get(channel, self.default_budget_s)


class LlmState(BaseModel):
    """What the brain remembers between turns, under agent_state["llm"]."""

    model_config = ConfigDict(extra="ignore")

    pending: Pending | None = None
    failures: int = 0
    unclear: int = 0  # consecutive messages the recogniser was unsure of
    sentiment: Sentiment = Sentiment.NEUTRAL

    @classmethod
    def load(cls, raw: Any) -> LlmState:
        try:
            return cls.model_validate(raw or {})
        except ValidationError:
            return cls()


class LlmBrain:
    """The LLM `Brain`; `policy` (the embedded one) answers when the LLM cannot."""

    def __init__(
        self,
        client: LlmClient,
        policy: Brain | None,
        backend: Backend,
        ledger: UsageLedger,
        kb: KnowledgeBase,
        *,
        prompts: Prompts | None = None,
        config: LlmConfig | None = None,
        sentiment: SentimentAnalyzer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.backend, self.ledger, self.kb = backend, ledger, kb
        self.prompts = prompts or Prompts()
        self.check = OutputCheck(self.prompts.all_system())
        self.config = config or LlmConfig()
        self.history_window = self.config.history_window
        self.sentiment = sentiment or SentimentAnalyzer()
        self.clock = clock

    async def respond(self, turn: TurnContext) -> Decision:
        """Decide the reply (and any actions or handover) for one customer message."""
        return await self._turn(turn, Speaker(check=self.check.answering(turn.message.text)))

    async def respond_stream(self, turn: TurnContext) -> AsyncIterator[str | Decision]:
        """The same turn, yielding each finished sentence as it is written, then the
        `Decision` (whose reply is the whole text, sentences included)."""
        queue: asyncio.Queue[str | Decision | BaseException] = asyncio.Queue()
        task = asyncio.create_task(
            self._turn(
                turn,
                Speaker(
                    queue.put_nowait, stream=True, check=self.check.answering(turn.message.text)
                ),
            )
        )

        def done(t: asyncio.Task[Decision]) -> None:
            if not t.cancelled():
                queue.put_nowait(t.exception() or t.result())

        task.add_done_callback(done)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Decision):
                    return
        finally:
            task.cancel()  # the consumer stopped early (a hang-up): stop the model too

    # ---------------------------------------------------------------- one turn

    async def _turn(self, turn: TurnContext, speaker: Speaker) -> Decision:
        saved = dict(turn.conversation.agent_state)
        state = LlmState.load(saved.get(STATE_KEY))
        text = turn.message.text
        mood = self.sentiment.analyze(text)
        state.sentiment = worse(state.sentiment, mood.label)
        box = Toolbox(
            self.backend, self.ledger, self.kb, turn.customer,
            resets_per_day=self.config.resets_per_day, clock=self.clock,
        )  # fmt: skip
        tools = LlmTools(
            box,
            allowed=self.config.allowed_tools,
            refund_limit_cents=self.config.refund_limit_cents,
        )
        angry = mood.label is Sentiment.ANGRY
        usage = LlmUsage()
        decision = await self._decide(turn, state, tools, speaker, usage, angry=angry)
        if usage.prompt_tokens or usage.completion_tokens:  # stored with the turn (reports)
            spent = Usage(llm_prompt_tokens=usage.prompt_tokens,
                          llm_completion_tokens=usage.completion_tokens)  # fmt: skip
            decision = decision.model_copy(update={"events": (*decision.events, spent.event())})
        if decision.intent.startswith("handover"):
            state.pending, state.failures = None, 0
        if not any(e.kind == "llm.fallback" for e in decision.events) and "pending" in saved:
            # The embedded policy's open question (from a fallback turn) is stale once the
            # LLM has answered: a later "yes" must not confirm it.
            saved["pending"] = None
        if not any(e.kind == "llm.fallback" for e in decision.events) and "answered" in saved:
            # Nor does the policy's earlier answer still stand: the conversation is not
            # closed as assumed resolved on it (gateway/idle_close.py).
            saved["answered"] = None
        agent_state = {**saved, **decision.agent_state, STATE_KEY: state.model_dump(mode="json")}
        return decision.model_copy(update={"agent_state": agent_state})

    async def _decide(
        self,
        turn: TurnContext,
        state: LlmState,
        tools: LlmTools,
        speaker: Speaker,
        usage: LlmUsage,
        *,
        angry: bool,
    ) -> Decision:
        text = turn.message.text

        def events() -> tuple[EventDraft, ...]:  # read late: the tools keep adding to it
            return tuple(tools.events)

        pending, state.pending = state.pending, None
        if angry:  # this very message; an angry turn long ago does not hand over now
            return self._handover(turn, state, speaker, tools, "angry", "the customer is angry")
        if parse(text).intent is Intent.HUMAN:
            return self._handover(
                turn, state, speaker, tools, "requested", "the customer asked for a person"
            )
        heard = turn.message.confidence
        if heard is not None and heard < self.config.min_confidence:
            state.pending = pending  # a misheard "yes" confirms nothing; the question stays
            return self._unclear(turn, state, speaker, tools, heard)
        state.unclear = 0
        if state.failures >= MAX_FAILURES:
            state.failures = 0
            return speaker.finish_decision(
                apology(
                    turn,
                    kind="repeated",
                    detail="it failed on several turns in a row",
                    events=events(),
                    sentiment=state.sentiment,
                )
            )
        notes: list[str] = []
        if pending is not None:
            if has(Intent.AFFIRM, text) and not has(Intent.DENY, text):
                try:
                    outcome = await tools.confirm(pending)
                except BackendError:
                    return speaker.finish_decision(
                        apology(
                            turn,
                            kind="backend",
                            detail="the business backend failed",
                            events=events(),
                            sentiment=state.sentiment,
                        )
                    )
                speaker.say_all(outcome)
                return Decision(
                    actions=(Reply(text=outcome),), events=events(),
                    intent=pending.tool, confidence=0.95,
                )  # fmt: skip
            notes.append(
                f"The customer was asked {pending.question!r} and did not say yes: nothing was"
                " done. Do not do it unless they ask again."
            )
        messages = build_messages(self.prompts, turn, notes=notes)
        budget = self.config.budget(turn.conversation.channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        check = speaker.check or self.check.answering(turn.message.text)
        try:
            async with asyncio.timeout(budget):
                result = await run_loop(
                    self.client, messages, tools,
                    max_steps=self.config.max_tool_steps,
                    on_text=speaker.text,
                    on_hold=speaker.hold if speaker.stream else None,
                    hold_after_s=self.config.hold_after_s, usage=usage,
                )  # fmt: skip
            problem = None if result.escalation is not None else check.problem(result.text)
            if problem is not None:  # a finished answer must pass the output check too
                raise LlmError("unsafe_output", f"the model wrote {problem.replace('_', ' ')}")
        except (LlmError, TimeoutError) as exc:
            kind = exc.kind if isinstance(exc, LlmError) else "budget"
            log.warning("LLM turn failed on conversation %s: %s", turn.conversation.id, kind)
            state.failures += 1
            speaker.abandon()
            decided = await fall_back(
                self.policy if self.config.use_policy_fallback else None, turn,
                kind=kind, detail=str(exc) or "the time budget ran out", acted=tools.acted,
                events=events(), sentiment=state.sentiment,
            )  # fmt: skip
            return speaker.finish_decision(decided)
        state.failures = 0
        speaker.finish()
        if result.escalation is not None:
            brief = brief_from_args(result.escalation, sentiment=state.sentiment)
            left = deadline - loop.time()
            if brief is None and left > 0.5:
                async with asyncio.timeout(left):
                    brief = await structured_brief(
                        self.client, messages, sentiment=state.sentiment, usage=usage
                    )
            said = result.text if check.problem(result.text) is None else ""
            return self._handover(
                turn, state, speaker, tools, "model", "the assistant escalated",
                brief=brief, said=said,
            )  # fmt: skip
        reply = speaker.reply_text(result.text)
        if tools.pending is not None:
            state.pending = tools.pending
            if tools.pending.question not in reply:
                speaker.say_all(tools.pending.question)
                reply = f"{reply} {tools.pending.question}".strip()
        actions: tuple[Action, ...] = (Reply(text=reply),)
        on_call = turn.conversation.channel is ChannelKind.PHONE and state.pending is None
        if on_call and parse(text).intent is Intent.GOODBYE:  # as the policy does: end the call
            actions = (*actions, Hangup(reason="customer said goodbye"))
        return Decision(
            actions=actions,
            events=(*events(), EventDraft(kind="llm.turn", data={
                "steps": result.steps, "tools": result.tools_called})),
            intent="llm.answer",
            confidence=0.8,
        )  # fmt: skip

    def _unclear(
        self, turn: TurnContext, state: LlmState, speaker: Speaker, tools: LlmTools, heard: float
    ) -> Decision:
        """A transcript too unsure to act on: ask again; the second in a row hands over."""
        state.unclear += 1
        if state.unclear >= MAX_UNCLEAR:
            state.unclear = 0
            return self._handover(
                turn, state, speaker, tools, "unclear",
                "the customer could not be understood (speech recognition unsure twice)",
            )  # fmt: skip
        speaker.say_all(NOT_HEARD)
        note = EventDraft(kind="llm.unclear", data={"confidence": round(heard, 3)})
        return Decision(
            actions=(Reply(text=NOT_HEARD),), events=(*tools.events, note),
            intent="clarify", confidence=heard,
        )  # fmt: skip

    def _handover(
        self, turn: TurnContext, state: LlmState, speaker: Speaker, tools: LlmTools,
        key: str, reason: str, *, brief: Any = None, said: str = "",
    ) -> Decision:  # fmt: skip
        brief = brief or template_brief(
            turn.message.text, reason=reason, sentiment=state.sentiment,
            confidence=0.9 if key in ("angry", "requested") else 0.5,
            verified=turn.customer.account_ref is not None,
        )  # fmt: skip
        team = f"our {brief.queue} team" if brief.queue != "general" else "our team"
        text = (
            f"I'm passing you to a member of {team}. They'll see this conversation,"
            " so you won't need to repeat yourself."
        )
        if key == "angry":
            text = f"I'm sorry about this. {text}"
        speaker.say_all(text)
        return Decision(
            actions=(
                Reply(text=f"{said} {text}".strip()),
                Transfer(queue=brief.queue, brief=brief),
            ),
            events=tuple(tools.events),
            intent=f"handover.{key}",
            confidence=brief.confidence,
        )


if TYPE_CHECKING:
    _seam: type[StreamingBrain] = LlmBrain  # mypy checks LlmBrain fits the streaming seam

__all__ = ["STATE_KEY", "LlmBrain", "LlmConfig", "LlmState"]
