"""The conversation an answered outbound call joins: the outreach's own.

The person who answers is heard under the `phone:` identity of the number we
called (as an inbound caller is under theirs), so what they say lands in the
customer's open conversation, which the outreach opened. A number not yet in
the store becomes the outreach customer's (we dialed it for them); a number
another customer record holds is left alone (logged): merging records is for a
proof of control, not for a call we placed.
"""

from __future__ import annotations

import logging

from channels.phone.services import CallInfo
from gateway.models import ChannelKind
from gateway.protocols import OpenedSession, Store

log = logging.getLogger("gateway.phone.outbound")


async def outreach_session(store: Store, info: CallInfo) -> OpenedSession:
    """The customer and the open conversation of the outbound call `info`, moved to the
    phone (the outreach's conversation, unless it was closed meanwhile)."""
    leg = info.outreach
    assert leg is not None, "an outbound call of outreach"
    owner = await store.find_customer(info.identity)
    if owner is None:
        await store.link_identity(leg.customer_id, info.identity)
    elif owner.id != leg.customer_id:
        log.warning(
            "outreach %s: %s belongs to customer %s, not %s; the call goes on as theirs",
            leg.outreach_id, info.caller, owner.id, leg.customer_id,
        )  # fmt: skip
    opened = await store.open_session(info.identity, ChannelKind.PHONE)
    if opened.conversation.id != leg.conversation_id:
        log.warning(
            "outreach %s: conversation %s is not open any more; the call goes on in %s",
            leg.outreach_id, leg.conversation_id, opened.conversation.id,
        )  # fmt: skip
    return opened


__all__ = ["outreach_session"]
