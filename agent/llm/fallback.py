"""What the customer gets when the LLM cannot answer: never silence, never a trace.

`fall_back` answers the turn with the embedded policy (the default), or hands
over with an apology when the policy is not wanted, fails itself, or would be
unsafe: after a tool already changed something this turn (a reset sent, a
callback booked), replaying the turn through the policy could do it twice, so a
person takes over instead. Either way an `llm.fallback` event records why.
"""

from __future__ import annotations

import logging

from agent.llm.brief import template_brief
from gateway.models import Reply, Sentiment, Transfer
from gateway.protocols import Brain, Decision, EventDraft, TurnContext

log = logging.getLogger(__name__)

APOLOGY = (
    "I'm sorry, I'm having trouble answering that right now. I'm passing you to a member"
    " of our team; they'll see this conversation, so you won't need to repeat yourself."
)


async def fall_back(
    policy: Brain | None,
    turn: TurnContext,
    *,
    kind: str,
    detail: str,
    acted: bool,
    events: tuple[EventDraft, ...],
    sentiment: Sentiment,
) -> Decision:
    """The decision for a turn the LLM could not finish (`kind`: why, e.g. "timeout")."""
    if policy is not None and not acted:
        try:
            decided = await policy.respond(turn)
        except Exception:  # the last line of defence: the customer still gets an answer
            log.exception("embedded policy failed after the LLM failed (%s)", kind)
        else:
            note = EventDraft(kind="llm.fallback", data={"reason": kind, "to": "policy"})
            return decided.model_copy(update={"events": (*events, note, *decided.events)})
    return apology(turn, kind=kind, detail=detail, events=events, sentiment=sentiment)


def apology(
    turn: TurnContext,
    *,
    kind: str,
    detail: str,
    events: tuple[EventDraft, ...],
    sentiment: Sentiment,
) -> Decision:
    """Apologise and hand over to a person with a template brief."""
    brief = template_brief(
        turn.message.text,
        reason=f"the AI assistant failed: {detail}",
        sentiment=sentiment,
        tried=("the AI assistant could not complete its answer",),
        confidence=0.2,
        verified=turn.customer.account_ref is not None,
    )
    note = EventDraft(kind="llm.fallback", data={"reason": kind, "to": "handover"})
    return Decision(
        actions=(Reply(text=APOLOGY), Transfer(queue=brief.queue, brief=brief)),
        events=(*events, note),
        intent="handover.llm_failure",
        confidence=0.2,
    )


__all__ = ["APOLOGY", "apology", "fall_back"]
