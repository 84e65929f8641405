"""The resolution signal: when the agent's answer settled what the customer asked.

After the agent answers a need itself (an order's status, a reset link sent, a
cancellation done, billing facts, a help article), it remembers what it answered
(`AgentState.answered`). The customer's next message then says how it ended:

- thanks, "all good", goodbye, or "no" to "is there anything else?": the
  conversation is `resolved`, confirmed by the customer: the event
  `conversation.resolved` with data {"how": "confirmed", "intent": ...};
- the customer leaves without asking for more: `assumed_resolved`, the same
  event with {"how": "assumed", ...}, made by `assumed_event` for a conversation
  that ends (is closed, or goes quiet) while the agent's answer still stands.
  (The definitions Intercom Fin and Zendesk publish for their AI agents.)

A new question, a handover or a clarifying question clears it: nothing is
counted twice, and a conversation a person took over is never the agent's.
"""

from __future__ import annotations

from typing import Any

from gateway.protocols import EventDraft

RESOLVED = "conversation.resolved"
# Decisions whose answer settles the need (not questions back, not handovers).
ANSWERS = frozenset(
    {
        "order_status", "order_cancel", "password_reset", "cancel_subscription", "billing",
        "refund", "knowledge_base",
    }
)  # fmt: skip
CLOSERS = frozenset({"thanks", "goodbye", "deny"})


def answered(intent: str, *, asked_back: bool) -> str | None:
    """What to remember after a decision: its intent when it answered a need."""
    return intent if intent in ANSWERS and not asked_back else None


def confirmed_event(previous: str | None, reply_intent: str) -> EventDraft | None:
    """The event when this message confirms the previous answer, else None."""
    if previous is None or reply_intent not in CLOSERS:
        return None
    return EventDraft(kind=RESOLVED, data={"how": "confirmed", "intent": previous})


def assumed_event(agent_state: dict[str, Any]) -> EventDraft | None:
    """For a conversation that ends without the customer asking for more: the
    `assumed` event when the agent's last answer still stands, else None."""
    previous = agent_state.get("answered")
    if not isinstance(previous, str) or previous not in ANSWERS:
        return None
    return EventDraft(kind=RESOLVED, data={"how": "assumed", "intent": previous})


__all__ = ["ANSWERS", "RESOLVED", "answered", "assumed_event", "confirmed_event"]
