"""What is stored for a turn: the `TurnRecord` built from the agent's decision
(`turn_record`), its commit with one retry when another writer moved the
conversation on (`record_turn`), and the decision that stands in when the agent
fails or times out (`fallback_decision`: an apology and a handover).
"""

from __future__ import annotations

from gateway.errors import ConflictError
from gateway.models import (
    Conversation,
    ConversationState,
    HandoffBrief,
    Message,
    Reply,
    Sentiment,
    Transfer,
)
from gateway.protocols import Decision, EventDraft, OutboundDraft, Store, TurnRecord, TurnStored

FALLBACK_TEXT = (
    "Sorry, something went wrong on our side. I'm passing you to a member of our team,"
    " who will pick this up shortly."
)


def turn_record(conversation: Conversation, message: Message, decision: Decision) -> TurnRecord:
    """The record of the agent's answer to `message`: its replies on the
    conversation's channel, its events plus `agent.turn` (and `handover` for a
    transfer, which queues the conversation)."""
    outbound = tuple(
        OutboundDraft(text=a.text, channel=conversation.channel)
        for a in decision.actions
        if isinstance(a, Reply) and a.text.strip()
    )
    events = list(decision.events)
    events.append(
        EventDraft(
            kind="agent.turn",
            data={"intent": decision.intent, "confidence": round(decision.confidence, 3),
                  "message_id": message.id},
        )
    )  # fmt: skip
    state = queue = brief = None
    for action in decision.actions:
        if isinstance(action, Transfer):
            state, queue, brief = ConversationState.QUEUED, action.queue, action.brief
            events.append(EventDraft(kind="handover", data=action.brief.model_dump(mode="json")))
    return TurnRecord(
        conversation_id=conversation.id,
        expected_version=conversation.version,
        handled_message_id=message.id,
        outbound=outbound,
        events=tuple(events),
        agent_state=decision.agent_state,
        state=state,
        queue=queue,
        brief=brief,
    )


async def record_turn(store: Store, record: TurnRecord, conversation: Conversation) -> TurnStored:
    """Commit `record`; on a version conflict, once more on the conversation as it is now."""
    try:
        return await store.record_turn(record)
    except ConflictError:
        # Another writer moved the conversation on (a rep, another node): reload once.
        fresh = await store.get_conversation(conversation.id)
        return await store.record_turn(
            record.model_copy(update={"expected_version": fresh.version})
        )


def fallback_decision(reason: str) -> Decision:
    """The answer when the agent failed (`reason`): an apology and a handover to `general`."""
    brief = HandoffBrief(
        need="Unknown: the automated agent could not process the last message.",
        tried=("automated agent",),
        missing=("the customer's request, as the agent failed",),
        next_step="Read the conversation history and reply to the customer.",
        confidence=0.0,
        sentiment=Sentiment.NEUTRAL,
        queue="general",
        reason=reason,
    )
    return Decision(
        actions=(Reply(text=FALLBACK_TEXT), Transfer(queue="general", brief=brief)),
        events=(EventDraft(kind="agent.fallback", data={"reason": reason}),),
        intent="fallback",
        confidence=0.0,
    )


__all__ = ["FALLBACK_TEXT", "fallback_decision", "record_turn", "turn_record"]
