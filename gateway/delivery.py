"""Sending a turn's output on the channels: its messages (`publish`), its other
actions (`signal`: typing, transfer), and its `Notify` actions (`send_notices`).

`Notify` actions (a one-time code for another phone number or address) go to
the channel registered for the target's identity kind, before the turn is
stored: the secret they carry is never stored as a message, only a
`notify.sent` / `notify.failed` event; when one cannot be sent, its
`failed_text` replaces the turn's replies, so the customer is never told a
code is on its way when it is not.

A failed delivery is logged, never raised: the turn is stored either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.errors import ChannelError, GatewayError
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    Customer,
    IdentityKind,
    Message,
    Notify,
    Reply,
)
from gateway.protocols import ChannelRegistry, Decision, EventDraft, Notifier

log = logging.getLogger(__name__)


async def publish(
    channels: ChannelRegistry,
    kind: ChannelKind,
    customer: Customer,
    conversation: Conversation,
    message: Message,
) -> None:
    """Send `message` on the channel of `kind`, if one is registered."""
    channel = channels.get(kind)
    if channel is None:
        return
    try:
        await channel.publish(customer, conversation, message)
    except GatewayError as exc:
        log.warning("delivery on %s failed: %s", kind.value, exc)


async def signal(
    channels: ChannelRegistry,
    kind: ChannelKind,
    customer: Customer,
    conversation: Conversation,
    action: Action,
) -> None:
    """Pass a non-reply `action` to the channel of `kind`, if one is registered."""
    channel = channels.get(kind)
    if channel is None:
        return
    try:
        await channel.signal(customer, conversation, action)
    except GatewayError as exc:
        log.warning("signal on %s failed: %s", kind.value, exc)


async def send_notices(notifiers: Mapping[IdentityKind, Notifier], decision: Decision) -> Decision:
    """Send the decision's `Notify` actions; returns it without them, with their
    events (and a failed notice's `failed_text` in place of its replies)."""
    notices = [a for a in decision.actions if isinstance(a, Notify)]
    if not notices:
        return decision
    actions = [a for a in decision.actions if not isinstance(a, Notify)]
    events = list(decision.events)
    for notice in notices:
        data = {"to": notice.to.key, "kind": notice.to.kind.value}
        notifier = notifiers.get(notice.to.kind)
        try:
            if notifier is None:
                raise ChannelError(f"no channel sends to {notice.to.kind.value} identities")
            data["ref"] = await notifier.notify(notice.to, notice.text, subject=notice.subject)
        except GatewayError as exc:
            log.warning("notice to %s not sent: %s", notice.to.key, exc)
            events.append(EventDraft(kind="notify.failed", data={**data, "error": str(exc)}))
            actions = [a for a in actions if not isinstance(a, Reply)]
            actions.insert(0, Reply(text=notice.failed_text))
            continue
        events.append(EventDraft(kind="notify.sent", data=data))
    return decision.model_copy(update={"actions": tuple(actions), "events": tuple(events)})


__all__ = ["publish", "send_notices", "signal"]
