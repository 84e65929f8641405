"""The customer's earlier contact on another channel, in one sentence.

On the first message a customer sends on a channel after contacting us on
another one (a text after this morning's call, an email after yesterday's
chat), the agent says so: "I see you called us earlier today about order
1001." It is worked out from the stored history alone (`TurnContext.history`,
the customer's recent messages from every channel), so it is deterministic:

- the contact is the run of messages on the channel of the customer's previous
  message, when that channel differs from this message's and it is no older
  than `MAX_AGE`. The next message on the same channel no longer qualifies,
  so the sentence is said once per switch of channel, not every turn;
- what it was about: the newest order number in it (the customer's words
  first, then the agent's answers about an order, which only ever name the
  customer's own orders), else the newest business topic the customer raised;
- when: "earlier today", "yesterday" or "on <weekday>", by the UTC calendar
  (the gateway does not know the customer's time zone, so no "this morning").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.intents import BUSINESS, Intent, extract_order_id, parse
from gateway.models import AuthorKind, ChannelKind, Direction, Message

MAX_AGE = timedelta(days=7)
_ANSWERED = re.compile(r"\bOrder ([A-Za-z0-9-]{1,32}) (?:has|is|was)\b")  # replies.order_status

VERBS: dict[ChannelKind, str] = {
    ChannelKind.PHONE: "called us",
    ChannelKind.SMS: "texted us",
    ChannelKind.EMAIL: "emailed us",
    ChannelKind.WEBCHAT: "chatted with us",
}

TOPICS: dict[Intent, str] = {
    Intent.ORDER_STATUS: "about an order",
    Intent.ORDER_CANCEL: "about cancelling an order",
    Intent.PASSWORD_RESET: "about your password",
    Intent.REFUND: "about a refund",
    Intent.BILLING: "about billing",
    Intent.CANCEL_SUBSCRIPTION: "about your subscription",
}


@dataclass(frozen=True)
class Recall:
    """An earlier contact of the customer on another channel."""

    channel: ChannelKind
    when: str
    order_id: str | None = None
    topic: Intent | None = None

    def sentence(self) -> str:
        about = f" about order {self.order_id}" if self.order_id else ""
        if not about and self.topic is not None:
            about = f" {TOPICS[self.topic]}"
        return f"I see you {VERBS[self.channel]} {self.when}{about}."


def earlier_contact(history: Sequence[Message], current: Message, now: datetime) -> Recall | None:
    """The contact to mention before answering `current`, or None (see module doc)."""
    before = [m for m in history if m.seq < current.seq and m.direction is not Direction.INTERNAL]
    said = [m for m in before if m.author is AuthorKind.CUSTOMER]
    if not said or said[-1].channel is current.channel or said[-1].channel not in VERBS:
        return None
    channel = said[-1].channel
    if now - said[-1].created_at > MAX_AGE:
        return None
    # The run of messages on that channel around the customer's last one there.
    i = next(i for i, m in enumerate(before) if m.id == said[-1].id)
    start, stop = i, i + 1
    while start > 0 and before[start - 1].channel is channel:
        start -= 1
    while stop < len(before) and before[stop].channel is channel:
        stop += 1
    run = before[start:stop]
    return Recall(
        channel=channel,
        when=_when(said[-1].created_at, now),
        order_id=_order_id(run),
        topic=_topic(run),
    )


def _when(then: datetime, now: datetime) -> str:
    days = (now.date() - then.date()).days
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    return f"on {then:%A}"


def _order_id(run: Sequence[Message]) -> str | None:
    for message in reversed(run):
        if message.author is AuthorKind.CUSTOMER:
            found = extract_order_id(message.text)
            if found:
                return found
    # The agent's answers about an order (not its examples: "for example 1001").
    for message in reversed(run):
        if message.author is AuthorKind.AGENT:
            match = _ANSWERED.search(message.text)
            if match:
                return match.group(1)
    return None


def _topic(run: Sequence[Message]) -> Intent | None:
    for message in reversed(run):
        if message.author is AuthorKind.CUSTOMER:
            topic = parse(message.text).topic
            if topic in BUSINESS and topic in TOPICS:
                return topic
    return None


__all__ = ["MAX_AGE", "Recall", "earlier_contact"]
