"""Build the `HandoffBrief` a rep reads when the agent hands a conversation over.

The brief answers the rep's first four questions without them scrolling:
what does the customer need, what has been tried, what is still missing, and
what to do next, plus the agent's confidence and the customer's mood. The
customer is quoted through `mask_pii`, so card numbers, passwords and codes
they typed never reach the queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.intents import Intent
from agent.pii import mask_pii
from gateway.models import HandoffBrief, Sentiment

QUEUES = ("billing", "technical", "general")

_QUEUE = {
    Intent.REFUND: "billing",
    Intent.BILLING: "billing",
    Intent.CANCEL_SUBSCRIPTION: "billing",
    Intent.PASSWORD_RESET: "technical",
    Intent.SECURITY: "technical",
}

_NEED = {
    Intent.ORDER_STATUS: "Wants to know the status of an order",
    Intent.ORDER_CANCEL: "Wants to cancel an order",
    Intent.PASSWORD_RESET: "Cannot sign in / needs a password reset",
    Intent.REFUND: "Wants a refund",
    Intent.BILLING: "Has a billing question",
    Intent.CANCEL_SUBSCRIPTION: "Wants to cancel their subscription",
    Intent.SECURITY: "Reports their account was compromised",
}

_NEXT = {
    Intent.ORDER_STATUS: "Check the order with the carrier and update the customer.",
    Intent.ORDER_CANCEL: "Cancel the order if it has not shipped; otherwise explain returns.",
    Intent.PASSWORD_RESET: "Verify the customer's identity and help them regain access.",
    Intent.REFUND: "Review refund eligibility under the 30-day returns policy and process"
    " or decline the refund.",
    Intent.BILLING: "Review the account's recent charges with the customer and correct any error.",
    Intent.CANCEL_SUBSCRIPTION: "Confirm with the customer, then cancel the subscription.",
}

_QUOTE_CHARS = 300


def queue_for(topic: Intent | None) -> str:
    """The human queue for a topic: billing, technical, or general."""
    return _QUEUE.get(topic, "general") if topic is not None else "general"


def quote(text: str) -> str:
    """The customer's words, PII masked, shortened for a brief."""
    masked = " ".join(mask_pii(text).split())
    if len(masked) > _QUOTE_CHARS:
        masked = masked[: _QUOTE_CHARS - 1].rstrip() + "…"
    return masked


def build_brief(
    *,
    topic: Intent | None,
    customer_words: str,
    latest_words: str | None = None,
    tried: Sequence[str],
    missing: Sequence[str] = (),
    next_step: str | None = None,
    confidence: float,
    sentiment: Sentiment,
    reason: str,
    order_id: str | None = None,
    verified: bool = True,
) -> HandoffBrief:
    """A brief for `topic` (None: not understood) quoting the customer's first
    words on it and, when different, their latest message (both PII masked)."""
    need = _NEED.get(topic, "Not clear yet") if topic is not None else "Not clear yet"
    if order_id:
        need += f" (order {order_id})"
    words = quote(customer_words)
    if words:
        need += f'. In their words: "{words}"'
    latest = quote(latest_words or "")
    if latest and latest != words:
        need += f'. Latest message: "{latest}"'
    gaps = list(missing)
    if not verified:
        gaps.append("identity: the customer is not linked to an account")
    if topic is None and not gaps:
        gaps.append("what the customer needs: the agent could not tell")
    step = next_step or (_NEXT.get(topic, "") if topic is not None else "")
    step = step or "Read the conversation and ask the customer what they need."
    if sentiment in (Sentiment.ANGRY, Sentiment.NEGATIVE):
        step = f"The customer is {sentiment.value}: acknowledge that first. {step}"
    return HandoffBrief(
        need=need,
        tried=tuple(tried) or ("nothing yet: handed over on the first request",),
        missing=tuple(dict.fromkeys(gaps)),
        next_step=step,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        sentiment=sentiment,
        queue=queue_for(topic),
        reason=reason,
    )


__all__ = ["QUEUES", "build_brief", "queue_for", "quote"]
