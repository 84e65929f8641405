"""`EmbeddedPolicy`: the offline agent that answers when no LLM is configured.

One turn: read the message's sentiment and intent (agent/sentiment.py,
agent/intents.py), then, in this order:

1. strong anger, or a request for a person, hands over at once;
2. an open question from the last turn (`pending`: "order_number" or
   "confirm_cancel") is answered, unless the customer changed the subject;
3. the intent's handler runs, acting through the tools (agent/tools.py),
   which enforce every guardrail; the policy only words the outcome;
4. anything else goes to the knowledge base.

Confidence. Every decision carries the confidence of the action it takes:
the intent's pattern score, or the knowledge-base hit's score. An intent below
the handover threshold is not acted on (it is treated as not understood), and
a knowledge-base hit below it is not used. A handover's brief carries how well
the agent understood the need.

Not understood. The first message the agent cannot place (no intent, no
knowledge-base hit at the threshold) gets one clarifying question that lists
what it can do, rather than an immediate handover: most such messages are
typos or very short, and a rep's time is the scarcer resource. Its decision
has intent "clarify" and the (low) confidence it had, and it guesses nothing.
The second consecutive one hands over to the general queue. Unanswered
repeats of a pending question count the same way.

After an outreach. When we wrote to the customer first about an order
(gateway/outreach keeps `AgentState.outreach`), for 7 days an order question
without a number, or a message about "it" or a delivery that names no other
subject ("is it still coming friday?"), means that order.

State. `Decision.agent_state` is `AgentState` (agent/turn.py) as JSON; the
gateway stores it and passes it back next turn. Unknown or malformed state
starts afresh. The flows themselves live in agent/flows.py.

Every channel. The gateway hands the policy the customer's last
`HISTORY_WINDOW` messages from every channel. On the first message after a
switch of channel the reply starts by mentioning the earlier contact ("I see
you called us earlier today about order 1001."; agent/recall.py), and an order
question without a number means the order of that contact. The history is
read only where it can matter (`wants_history`): not on the later turns of a
conversation that has stayed on one channel, which saves the gateway a store
read on most turns. Requests arriving
by email may read the account but change it only once a code sent to the
contact on record confirmed it (agent/verify.py; until then
`Toolbox(sender_only=True)`: `From` can be forged).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from agent import flows, replies, resolution, verify
from agent.backend import Backend
from agent.brief import quote
from agent.intents import Intent, Parsed, parse
from agent.kb import KbHit, KnowledgeBase, terms
from agent.recall import earlier_contact
from agent.sentiment import SentimentAnalyzer, worse
from agent.tools import Toolbox
from agent.turn import (
    ANYTHING_ELSE,
    AgentState,
    Turn,
    handover,
    kb_reply,
    not_understood,
    say,
    search,
)
from agent.understand import ArticleIndex, Matcher
from gateway.errors import BackendError, GuardrailRefusal
from gateway.models import ChannelKind, Conversation, Hangup, Sentiment
from gateway.protocols import Decision, TurnContext, UsageLedger

Handler = Callable[[Turn], Awaitable[Decision]]

HISTORY_WINDOW = 10  # recent messages, every channel: the last contact (each read costs)
_ORDER_TOPICS = (Intent.ORDER_STATUS, Intent.ORDER_CANCEL)
# How long a reply is taken to be about the order we wrote to the customer about.
OUTREACH_CONTEXT = timedelta(days=7)
OUTREACH_CONFIDENCE = 0.8
# What a bare "is it still coming friday?" reads as without the order in mind.
_UNPLACED = (Intent.UNKNOWN, Intent.OUT_OF_SCOPE, Intent.HELP)
_DELIVERY_WORDS = frozenset(
    [
        "arrive",
        "arriving",
        "coming",
        "delivery",
        "deliver",
        "delivered",
        "late",
        "delay",
        "delayed",
        "when",
        "where",
        "still",
        "it",
    ]
)


class EmbeddedPolicy:
    """The `Brain` used without an LLM: patterns, tools and a knowledge base.

    `ledger` counts past tool events (the gateway's store); `handover_threshold`
    is the confidence below which it hands over rather than act or answer.
    """

    def __init__(
        self,
        backend: Backend,
        ledger: UsageLedger,
        kb: KnowledgeBase,
        handover_threshold: float = 0.45,
        *,
        resets_per_day: int = 3,
        sentiment: SentimentAnalyzer | None = None,
        clock: Callable[[], datetime] | None = None,
        verifier: verify.Verifier | None = None,
        matcher: Matcher | None = None,
    ) -> None:
        self.backend = backend
        # Slots and what was tried live in agent_state; the history is read for the
        # customer's earlier contacts on other channels.
        self.history_window = HISTORY_WINDOW
        self.ledger = ledger
        self.kb = kb
        self.threshold = handover_threshold
        self.resets_per_day = resets_per_day
        self.sentiment = sentiment or SentimentAnalyzer()
        self.clock = clock
        self.verifier = verifier  # one-time codes (agent/verify.py); None: none sent
        self.matcher = matcher  # nearest-exemplar understanding; None: patterns only
        self.articles = ArticleIndex(matcher, kb.articles.values()) if matcher else None
        self._handlers: dict[Intent, Handler] = {
            Intent.ORDER_STATUS: flows.order,
            Intent.ORDER_CANCEL: flows.order,
            Intent.PASSWORD_RESET: flows.password_reset,
            Intent.REFUND: flows.refund,
            Intent.BILLING: flows.billing,
            Intent.CANCEL_SUBSCRIPTION: flows.cancel_subscription,
            Intent.LINK_IDENTITY: verify.link_request,
            Intent.GREETING: _small_talk,
            Intent.THANKS: _small_talk,
            Intent.GOODBYE: _small_talk,
            Intent.AFFIRM: _small_talk,
            Intent.DENY: _small_talk,
            Intent.COMPLAINT: _complaint,
            Intent.SECURITY: _security,
            Intent.HELP: _help_centre,
            Intent.OUT_OF_SCOPE: _out_of_scope,
        }

    def wants_history(self, conversation: Conversation) -> bool:
        """Whether this turn needs the customer's history (read by the gateway before
        `respond`). It is used only to mention an earlier contact on another channel; a
        conversation that has only ever been on one channel, whose last message the agent
        already answered here, has none to mention (a customer has one open conversation),
        so the read is skipped."""
        seen = conversation.agent_state.get("seen_on")
        return not (seen == conversation.channel and set(conversation.channels) <= {seen})

    async def respond(self, turn: TurnContext) -> Decision:
        """Decide the reply (and any handover) for one customer message."""
        state = AgentState.load(turn.conversation.agent_state)
        state.seen_on = turn.message.channel
        text = turn.message.text
        mood = self.sentiment.analyze(text)
        state.sentiment = worse(state.sentiment, mood.label)
        match = self.matcher.match(text) if self.matcher is not None else None
        parsed = parse(text, expecting_order=state.pending == "order_number", match=match)
        now = self.clock() if self.clock is not None else datetime.now(UTC)
        box = Toolbox(
            self.backend,
            self.ledger,
            self.kb,
            turn.customer,
            resets_per_day=self.resets_per_day,
            clock=self.clock,
            sender_only=turn.message.channel is ChannelKind.EMAIL and not _confirmed(state, now),
        )
        recall = earlier_contact(turn.history, turn.message, now)
        if (
            recall is not None
            and recall.order_id
            and parsed.intent in _ORDER_TOPICS
            and not parsed.order_id
            and box.verified
        ):
            parsed = parsed.model_copy(update={"order_id": recall.order_id})
        parsed = _about_outreach(state, parsed, text, now, verified=box.verified)
        t = Turn(
            turn, state, box, parsed, mood, self.threshold, self.resets_per_day,
            recall=recall.sentence() if recall is not None else None, verifier=self.verifier,
        )  # fmt: skip
        if parsed.topic is not None and parsed.topic != state.topic:
            state.topic, state.words = parsed.topic, quote(text)
        if state.words is None:
            state.words = quote(text)
        t.articles = self.articles
        previous, state.answered = state.answered, None
        try:
            decision = await self._route(t)
        except GuardrailRefusal as exc:
            # A refusal is an answer, not a failure: say what the rule allows.
            state.note(f"a tool refused: {exc.rule}")
            return say(t, f"{exc.message} {ANYTHING_ELSE}", intent="refused", confidence=0.5)
        except BackendError:
            # The backend is down or refused: a person can still help; never guess.
            state.note("a system error stopped the agent")
            return handover(t, "backend", reason="the business backend failed", confidence=0.2)
        return _with_resolution(decision, previous)

    async def _route(self, t: Turn) -> Decision:
        p, state = t.parsed, t.state
        if t.mood.label is Sentiment.ANGRY:
            return handover(
                t,
                "angry",
                reason="the customer is angry",
                confidence=0.9,
                message="I'm sorry about this. I'm bringing in a member of our team;"
                " they will see everything you've told me.",
            )
        if p.intent is Intent.HUMAN:
            return handover(
                t, "requested", reason="the customer asked for a person", confidence=p.confidence
            )
        coded = await verify.on_code(t, self._handlers)  # a one-time code typed back
        if coded is not None:
            return coded
        if state.pending is not None:
            pending = {
                "confirm_cancel": flows.on_confirm_cancel,
                "order_number": flows.on_order_number,
            }
            decided = await pending[state.pending](t)
            if decided is not None:
                return decided
        state.pending = None
        if p.confidence < self.threshold:
            return await _unknown(t)  # too unsure to act on: treat as not understood
        handler = self._handlers.get(p.intent, _unknown)
        return await handler(t)


async def _small_talk(t: Turn) -> Decision:
    p = t.parsed
    if p.intent is Intent.GREETING and terms(t.text):
        hit = await search(t)  # "hi, do you ship to Canada?"
        if hit is not None:
            return kb_reply(t, hit, intent="knowledge_base")
    if p.intent is Intent.GREETING:
        # A letter has its own salutation (replies.style); the earlier contact follows hello.
        hello = "" if t.channel is ChannelKind.EMAIL else f"Hi {t.name}!" if t.name else "Hi!"
        recall, t.recall = t.recall, None
        text = " ".join(
            part
            for part in (hello, recall, "I'm the virtual assistant.", replies.CAPABILITIES,
                         "What can I do for you?")
            if part
        )  # fmt: skip
    elif p.intent is Intent.THANKS:
        text = f"You're welcome! {ANYTHING_ELSE}"
    elif p.intent is Intent.AFFIRM:
        text = "Sure, what can I help you with?"
    else:  # goodbye, or "no" to "anything else?"
        text = "Thanks for contacting us. Have a good day!"
        if t.channel is ChannelKind.PHONE:
            bye = Hangup(reason="customer said goodbye")
            return say(t, text, intent=p.intent.value, confidence=p.confidence, extra=(bye,))
    return say(t, text, intent=p.intent.value, confidence=p.confidence)


async def _complaint(t: Turn) -> Decision:
    """Complaints, legal threats and compensation demands are a person's to handle."""
    t.state.note("the customer complained or asked for compensation")
    return handover(
        t,
        "complaint",
        reason="a complaint, legal threat or compensation demand needs a person",
        confidence=t.parsed.confidence,
        message="I'm sorry about this. I'm passing you to a member of our team, who can"
        " look into it properly; they'll see this conversation, so you won't need to"
        " repeat yourself.",
    )


async def _security(t: Turn) -> Decision:
    """A hacked account goes to a person at once; no reset link is sent (it would go to
    whatever address the intruder may have put on the account)."""
    t.state.note("the customer reported that their account was taken over")
    return handover(
        t,
        "security",
        reason="the customer reports their account was compromised",
        confidence=t.parsed.confidence,
        next_step="Secure the account (sessions, contact details, recent orders), then"
        " help the customer regain access.",
        message="That needs our security team: I'm passing you to a person now, who will"
        " secure your account with you. Please don't share your password with anyone.",
    )


ARTICLE_MIN = 0.5  # cosine similarity at which the nearest article answers (hybrid search)


async def _help_centre(t: Turn) -> Decision:
    """A question the help centre answers, for anyone, signed in or not: the FTS5
    ranking first, then the article nearest in meaning (agent/understand.py)."""
    hit = await search(t)
    if hit is None and t.articles is not None:
        near = t.articles.nearest(t.text)
        if near is not None and near[1] >= ARTICLE_MIN:
            article, sim = near
            hit = KbHit(slug=article.slug, title=article.title, body=article.body, score=sim)
    if hit is not None:
        return kb_reply(t, hit, intent="knowledge_base")
    return await _unknown(t)


async def _out_of_scope(t: Turn) -> Decision:
    """Understood, and not ours: say so. It is not a failure to understand, so it
    neither counts towards nor clears the misses that hand over."""
    t.state.note("the customer asked for something we don't do")
    return say(
        t,
        f"Sorry, that's not something I can help with. {replies.CAPABILITIES}",
        intent="out_of_scope",
        confidence=t.parsed.confidence,
        keep_failures=True,
    )


async def _unknown(t: Turn) -> Decision:
    hit = await search(t)
    if hit is not None:
        return kb_reply(t, hit, intent="knowledge_base")
    return not_understood(
        t, f"Sorry, I'm not sure I understood. Could you put it another way? {replies.CAPABILITIES}"
    )


__all__ = ["AgentState", "EmbeddedPolicy"]


def _with_resolution(decision: Decision, previous: str | None) -> Decision:
    """Record the resolution signal (agent/resolution.py): the customer confirming the
    last answer is an event; an answer that settles a need is remembered for the next."""
    asked_back = decision.agent_state.get("pending") is not None
    state = {**decision.agent_state, "answered": resolution.answered(
        decision.intent, asked_back=asked_back)}  # fmt: skip
    event = resolution.confirmed_event(previous, decision.intent)
    events = (*decision.events, event) if event is not None else decision.events
    return decision.model_copy(update={"agent_state": state, "events": events})


def _about_outreach(
    state: AgentState, parsed: Parsed, text: str, now: datetime, *, verified: bool
) -> Parsed:
    """After we told the customer about an order (gateway/outreach), a question that
    names no order and no other subject ("is it still coming friday?", "where is it
    now?") is about that order."""
    note = state.outreach
    if note is None or not note.order_id or parsed.order_id or not verified:
        return parsed
    if note.at is not None and now - note.at > OUTREACH_CONTEXT:
        return parsed
    if parsed.intent in (Intent.ORDER_STATUS, Intent.ORDER_CANCEL):
        return parsed.model_copy(update={"order_id": note.order_id})
    if parsed.intent in _UNPLACED and parsed.topic is None and _about_it(text):
        return parsed.model_copy(update={
            "intent": Intent.ORDER_STATUS, "topic": Intent.ORDER_STATUS,
            "order_id": note.order_id, "confidence": OUTREACH_CONFIDENCE,
        })  # fmt: skip
    return parsed


def _about_it(text: str) -> bool:
    """Words about "it" or a delivery (with no business subject of its own named)."""
    return bool(set(re.findall(r"[a-z']+", text.lower())) & _DELIVERY_WORDS)


def _confirmed(state: AgentState, now: datetime) -> bool:
    """Whether a code sent to the contact on record confirmed this conversation lately
    (agent/verify.py): then an email sender may change the account."""
    until = state.otp.confirmed_until
    return until is not None and now < until
