"""One turn of the embedded policy: its state, and the ways a turn can end.

`Turn` bundles what a handler needs (the context, the remembered
`AgentState`, the toolbox bound to this customer, the parsed message and its
sentiment). A handler ends the turn with `say` (a reply), `handover` (a reply
plus a `Transfer` with a brief) or `not_understood` (a clarifying question, or
a handover when it is the second in a row). All three put the toolbox's
events and the new state into the `Decision`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent import replies
from agent.brief import build_brief, queue_for
from agent.codes import OtpState
from agent.intents import Intent, Parsed
from agent.kb import KbHit, terms
from agent.sentiment import SentimentReading
from agent.tool_models import SearchKbArgs
from agent.tools import KB_SEARCH, Toolbox
from gateway.models import Action, ChannelKind, Reply, Sentiment, Transfer
from gateway.protocols import Decision, TurnContext

if TYPE_CHECKING:
    from agent.understand import ArticleIndex
    from agent.verify import Verifier

MAX_FAILURES = 2  # consecutive not-understood turns before handing over
MAX_TRIED = 12  # the brief lists what was tried; old entries matter least

SIGN_IN = replies.SIGN_IN  # as the web chat says it; `replies.style` rewords it per channel
ANYTHING_ELSE = "Is there anything else I can help with?"


class OutreachNote(BaseModel):
    """Why we got in touch first (gateway/outreach sets it with its message): the
    customer's reply is most likely about it ("is it still coming friday?")."""

    model_config = ConfigDict(extra="ignore")

    type: str
    reason: str = ""
    order_id: str | None = None
    at: datetime | None = None


class AgentState(BaseModel):
    """What the policy remembers between turns (stored by the gateway as JSON)."""

    model_config = ConfigDict(extra="ignore")

    pending: Literal["order_number", "confirm_cancel"] | None = None
    topic: Intent | None = None
    order_id: str | None = None
    offered: str | None = None  # the subscription id the pending confirmation is about
    answered: str | None = None  # the need the last answer settled (agent/resolution.py)
    seen_on: ChannelKind | None = None  # the channel of the last message the agent answered
    failures: int = 0
    tried: list[str] = Field(default_factory=list)
    words: str | None = None  # the customer's first words on the current topic, PII masked
    sentiment: Sentiment = Sentiment.NEUTRAL  # the worst so far
    otp: OtpState = Field(default_factory=OtpState)  # one-time codes (agent/verify.py)
    outreach: OutreachNote | None = None  # the news we sent them last (gateway/outreach)

    def note(self, what: str) -> None:
        """Remember something the agent did, for the brief."""
        if what not in self.tried:
            self.tried = [*self.tried, what][-MAX_TRIED:]

    @classmethod
    def load(cls, raw: dict[str, Any]) -> AgentState:
        try:
            return cls.model_validate(raw)
        except ValidationError:
            return cls()  # written by another brain or an older version: start afresh


@dataclass
class Turn:
    """Everything a handler needs for one customer message."""

    ctx: TurnContext
    state: AgentState
    box: Toolbox
    parsed: Parsed
    mood: SentimentReading
    threshold: float
    resets_per_day: int
    recall: str | None = None  # the earlier contact to mention first (agent/recall.py), once
    verifier: Verifier | None = None  # one-time codes; None: none can be sent
    articles: ArticleIndex | None = None  # help articles by meaning; None: FTS5 only

    @property
    def text(self) -> str:
        return self.ctx.message.text

    @property
    def channel(self) -> ChannelKind:
        return self.ctx.conversation.channel

    @property
    def short(self) -> bool:
        return self.channel in replies.SHORT_CHANNELS

    @property
    def name(self) -> str | None:
        return replies.first_name(self.ctx.customer.display_name)


def opening(t: Turn, text: str) -> str:
    """`text` after the earlier contact's sentence, the first time a reply is made."""
    recall, t.recall = t.recall, None
    return f"{recall} {text}" if recall else text


def say(
    t: Turn,
    text: str,
    *,
    intent: str,
    confidence: float,
    detail: str | None = None,
    closing: str | None = None,
    extra: Sequence[Action] = (),
    keep_failures: bool = False,
) -> Decision:
    """Reply to the customer (styled for their channel) and end the turn."""
    if not keep_failures:
        t.state.failures = 0
    styled = replies.style(t.channel, opening(t, text), detail=detail, closing=closing, name=t.name)
    reply = Reply(text=styled)
    return _decision(t, (reply, *extra), intent=intent, confidence=confidence)


def handover(
    t: Turn,
    key: str,
    *,
    reason: str,
    confidence: float,
    message: str | None = None,
    missing: Sequence[str] = (),
    next_step: str | None = None,
) -> Decision:
    """Tell the customer a person takes over and transfer with a brief.
    `key` names the cause in `Decision.intent` (`handover.<key>`)."""
    state = t.state
    topic = t.parsed.topic or state.topic
    queue = queue_for(topic)
    brief = build_brief(
        topic=topic,
        customer_words=state.words or t.text,
        latest_words=t.text,
        tried=state.tried,
        missing=missing,
        next_step=next_step,
        confidence=_understanding(t, topic),
        sentiment=state.sentiment,
        reason=reason,
        order_id=t.parsed.order_id or state.order_id,
        verified=t.box.verified,
    )
    team = f"our {queue} team" if queue != "general" else "our team"
    text = message or (
        f"I'm passing you to a member of {team}. They'll see this"
        " conversation, so you won't need to repeat yourself."
    )
    state.pending, state.failures = None, 0
    actions: tuple[Action, ...] = (
        Reply(text=replies.style(t.channel, opening(t, text), name=t.name)),
        Transfer(queue=queue, brief=brief),
    )
    return _decision(t, actions, intent=f"handover.{key}", confidence=confidence)


NOT_UNDERSTOOD = "the agent did not understand the customer"  # a help-centre gap (reports)


def not_understood(
    t: Turn,
    ask: str,
    *,
    intent: str = "clarify",
    confidence: float | None = None,
    reason: str = NOT_UNDERSTOOD,
    missing: Sequence[str] = (),
) -> Decision:
    """Ask `ask` once; the second consecutive miss hands over to a person
    (`reason` and `missing` then go into the brief)."""
    t.state.failures += 1
    if t.state.failures >= MAX_FAILURES:
        t.state.note("no progress after asking again")
        return handover(
            t,
            "not_understood",
            reason=reason,
            confidence=min(t.parsed.confidence, 0.3),
            missing=missing,
        )
    t.state.note("asked a clarifying question")
    conf = t.parsed.confidence if confidence is None else confidence
    return say(t, ask, intent=intent, confidence=conf, keep_failures=True)


async def search(t: Turn) -> KbHit | None:
    """The best help article for the message at or above the threshold, or None."""
    if not terms(t.text):
        return None
    found = await t.box.call(KB_SEARCH, SearchKbArgs(query=t.text[:500]))
    best = found.hits[0] if found.hits else None
    return best if best is not None and best.score >= t.threshold else None


def kb_reply(t: Turn, hit: KbHit, *, intent: str, suffix: str = "") -> Decision:
    """Answer with a help article; its score is the decision's confidence."""
    t.state.note(f"answered from help article '{hit.title}'")
    text = replies.kb_answer(hit.body, short=t.short)
    if suffix:
        text = f"{text} {suffix}" if t.short else f"{text}\n\n{suffix}"
    return say(t, text, intent=intent, confidence=hit.score)


def _decision(t: Turn, actions: tuple[Action, ...], *, intent: str, confidence: float) -> Decision:
    return Decision(
        actions=actions,
        events=tuple(t.box.events),
        agent_state=t.state.model_dump(mode="json"),
        intent=intent,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
    )


def _understanding(t: Turn, topic: Intent | None) -> float:
    """How well the agent understood the need, for the brief."""
    if topic is None:
        return min(t.parsed.confidence, 0.3)
    return max(t.parsed.confidence if t.parsed.topic else 0.0, 0.6)


__all__ = [
    "ANYTHING_ELSE",
    "NOT_UNDERSTOOD",
    "SIGN_IN",
    "AgentState",
    "Turn",
    "handover",
    "kb_reply",
    "not_understood",
    "opening",
    "say",
    "search",
]
