"""Who an outreach goes to and on which channels, in order.

The customer is found from the event (`account`, `phone` or `email`) and the
business backend's contact on record (agent/backend.py `get_account` /
`find_account`): every phone number and address known becomes one of the
customer's identities in the store (tied to the account, as an inbound message
from them would be), and their open conversation is reused, or one is opened.

The channel order: the channel the customer last wrote or called us on (their
preferred one), then the rule's order; a channel is left out when the customer cannot be
reached on it: no number or address, opted out (STOP) or unsubscribed, not
online (web chat), no call allowed or no caller here (calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.models import AuthorKind, ChannelKind, Conversation, Customer, Identity, IdentityKind
from gateway.outreach.models import CustomerRef, OutreachChannel
from gateway.outreach.rules import Rule
from gateway.protocols import Store

HISTORY = 50  # recent messages read for the customer's preferred channel
KIND: dict[OutreachChannel, ChannelKind] = {
    OutreachChannel.SMS: ChannelKind.SMS,
    OutreachChannel.EMAIL: ChannelKind.EMAIL,
    OutreachChannel.WEBCHAT: ChannelKind.WEBCHAT,
    OutreachChannel.CALL: ChannelKind.PHONE,
}
PREFERRED: dict[ChannelKind, OutreachChannel] = {
    ChannelKind.SMS: OutreachChannel.SMS,
    ChannelKind.EMAIL: OutreachChannel.EMAIL,
    ChannelKind.WEBCHAT: OutreachChannel.WEBCHAT,
    ChannelKind.PHONE: OutreachChannel.CALL,
}


class ContactBook(Protocol):
    """What outreach reads of the business backend (agent/backend.py `Backend`)."""

    async def get_account(self, account_id: str) -> Any: ...

    async def find_account(self, kind: Any, value: str) -> Any: ...


@dataclass
class Reached:
    """The customer, their conversation, and what they can be reached on."""

    customer: Customer
    conversation: Conversation
    name: str | None
    preferred: OutreachChannel | None = None
    order: list[OutreachChannel] = field(default_factory=list)
    left_out: dict[OutreachChannel, str] = field(default_factory=dict)  # channel -> why

    def phone(self) -> str | None:
        return first(self.customer, IdentityKind.PHONE)

    def email(self) -> str | None:
        return first(self.customer, IdentityKind.EMAIL)


def first(customer: Customer, kind: IdentityKind) -> str | None:
    for identity in customer.identities:
        if identity.kind is kind and (kind is not IdentityKind.PHONE or identity.value[:1] == "+"):
            return identity.value
    return None


async def find(store: Store, backend: ContactBook | None, ref: CustomerRef) -> Reached | None:
    """The customer, their open conversation (opened if none) and preferred channel;
    None when the event names an account the backend does not know and no identity."""
    account: Any = None
    if backend is not None:
        if ref.account is not None:
            account = await backend.get_account(ref.account)
        elif ref.phone is not None:
            account = await backend.find_account("phone", ref.phone)
        elif ref.email is not None:
            account = await backend.find_account("email", ref.email.lower())
    values: list[Identity] = []
    if ref.phone:
        values.append(Identity(kind=IdentityKind.PHONE, value=ref.phone))
    if ref.email:
        values.append(Identity(kind=IdentityKind.EMAIL, value=ref.email.lower()))
    ref_id = getattr(account, "id", None) if account is not None else None
    name = getattr(account, "name", None) if account is not None else None
    for attr, kind in (("phone", IdentityKind.PHONE), ("email", IdentityKind.EMAIL)):
        value = getattr(account, attr, None) if account is not None else None
        if isinstance(value, str) and value:
            identity = Identity(kind=kind, value=value.lower() if attr == "email" else value)
            if all(i.key != identity.key for i in values):
                values.append(identity)
    if not values:
        return None
    opened = None
    for identity in values:  # each joins the account's customer (as an inbound one would)
        channel = ChannelKind.SMS if identity.kind is IdentityKind.PHONE else ChannelKind.EMAIL
        known = await store.find_customer(identity)
        if known is not None and opened is not None and known.id == opened.customer.id:
            continue
        opened = await store.open_session(
            identity, channel, display_name=name, account_ref=ref_id if ref_id else None
        )
    assert opened is not None
    customer = await store.get_customer(opened.customer.id)
    return Reached(customer, opened.conversation, name or customer.display_name,
                   await preferred(store, customer.id))  # fmt: skip


async def preferred(store: Store, customer_id: int) -> OutreachChannel | None:
    """The channel the customer last wrote or called us on, if any."""
    for message in reversed(await store.history(customer_id, limit=HISTORY)):
        if message.author is AuthorKind.CUSTOMER and message.channel in PREFERRED:
            return PREFERRED[message.channel]
    return None


async def channels(
    store: Store,
    reached: Reached,
    rule: Rule,
    forced: OutreachChannel | None,
    *,
    can_call: bool,
    online: Callable[[Customer], bool],
) -> None:
    """Fill `reached.order` (and `left_out`) for `rule` (or only `forced`)."""
    preferred = reached.preferred
    wanted = [forced] if forced is not None else list(rule.channels)
    if forced is None and preferred is not None and preferred in wanted:
        wanted.remove(preferred)
        wanted.insert(0, preferred)
    for channel in wanted:
        why = await _why_not(store, reached, rule, channel, can_call=can_call, online=online)
        if why is None:
            reached.order.append(channel)
        else:
            reached.left_out[channel] = why


async def _why_not(
    store: Store,
    reached: Reached,
    rule: Rule,
    channel: OutreachChannel,
    *,
    can_call: bool,
    online: Callable[[Customer], bool],
) -> str | None:
    if channel in (OutreachChannel.SMS, OutreachChannel.CALL):
        phone = reached.phone()
        if phone is None:
            return "no_phone_number"
        if await store.is_opted_out(Identity(kind=IdentityKind.PHONE, value=phone)):
            return "opted_out"  # STOP: no text, and no call either
        if channel is OutreachChannel.CALL and not rule.call:
            return "call_not_allowed"
        if channel is OutreachChannel.CALL and not can_call:
            return "no_caller"
        return None
    if channel is OutreachChannel.EMAIL:
        email = reached.email()
        if email is None:
            return "no_email_address"
        if await store.is_opted_out(Identity(kind=IdentityKind.EMAIL, value=email)):
            return "unsubscribed"
        return None
    return None if online(reached.customer) else "offline"


__all__ = ["KIND", "ContactBook", "Reached", "channels", "find", "first"]
