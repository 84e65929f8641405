"""Linking senders to business accounts: one customer, every channel.

The business backend knows which phone number and email address belong to an
account (agent/backend.py `find_account`). Before an inbound message from a
`phone:` or `email:` identity is stored, `AccountLinker.link` asks it, once per
unlinked identity, and puts the account id (and name) on the message; the
store then files the message under that account's customer (gateway/store:
a new identity joins the account's customer, an identity that already had a
customer of its own is merged into it). So a call from +15551234567, a text
from the same number and a mail from jane@example.com are one customer with
one history.

Linking never loses a message: a backend that fails or does not answer within
`timeout_s` leaves the message unlinked (logged), and the sender's next
message tries again. A sender the backend does not know is not asked about
again for `miss_ttl_s` (a stranger texting ten times costs one lookup). Calls
are linked when they start (channels/phone/call/caller.py), not per utterance, so no
lookup ever delays a spoken turn. It does not make the sender more trusted either: the
identity keeps the verification its channel gave it (`sender` for SMS and
email, `caller_id` for calls), and the agent's tools decide what a weakly
verified sender may do (agent/tools.py).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Protocol

from gateway.models import ChannelKind, IdentityKind, InboundMessage
from gateway.protocols import Store

log = logging.getLogger(__name__)

_LOOKUP_KINDS = {IdentityKind.PHONE: "phone", IdentityKind.EMAIL: "email"}
MAX_MISSES = 10_000


class AccountFinder(Protocol):
    """What linking needs from the business backend (agent/backend.py `Backend`)."""

    async def find_account(self, kind: Any, value: str) -> Any: ...


class AccountLinker:
    """Puts the backend account of a message's sender on the message (see module doc)."""

    def __init__(
        self,
        store: Store,
        finder: AccountFinder,
        channels: frozenset[ChannelKind],
        *,
        timeout_s: float = 3.0,
        miss_ttl_s: float = 600.0,
    ) -> None:
        self.store = store
        self.finder = finder
        self.channels = channels
        self.timeout_s = timeout_s
        self.miss_ttl_s = miss_ttl_s
        self.failures = 0
        self._misses: collections.OrderedDict[str, float] = collections.OrderedDict()

    async def link(self, event: InboundMessage) -> InboundMessage:
        """`event` with `account_ref` (and a missing `display_name`) from the backend,
        or unchanged: another channel, already linked, not on any account, or the
        backend failed."""
        kind = _LOOKUP_KINDS.get(event.identity.kind)
        if kind is None or event.channel not in self.channels or event.account_ref is not None:
            return event
        known = await self.store.find_customer(event.identity)
        if known is not None and known.account_ref is not None:
            return event  # linked before: the store files it there anyway
        key = event.identity.key
        missed = self._misses.get(key)
        if missed is not None and time.monotonic() - missed < self.miss_ttl_s:
            return event
        try:
            async with asyncio.timeout(self.timeout_s):
                account = await self.finder.find_account(kind, event.identity.value)
        except Exception as exc:  # the backend is down or slow: store it unlinked
            self.failures += 1
            log.warning("account lookup for %s failed (%s): stored unlinked, linked later",
                        event.channel.value, type(exc).__name__)  # fmt: skip
            return event
        ref, name = getattr(account, "id", None), getattr(account, "name", None)
        if not isinstance(ref, str) or not ref:
            self._misses.pop(key, None)
            self._misses[key] = time.monotonic()
            if len(self._misses) > MAX_MISSES:
                self._misses.popitem(last=False)
            return event
        self._misses.pop(key, None)
        update: dict[str, Any] = {"account_ref": ref}
        if not event.display_name and isinstance(name, str) and name:
            update["display_name"] = name[:200]
        return event.model_copy(update=update)


def link_channels(*, sms: bool, email: bool) -> frozenset[ChannelKind]:
    """The channels whose messages are linked here, from GATEWAY_SMS_LINK_ACCOUNTS and
    GATEWAY_EMAIL_LINK_ACCOUNTS (calls: GATEWAY_PHONE_LINK_ACCOUNTS, at call start)."""
    chosen = {ChannelKind.SMS: sms, ChannelKind.EMAIL: email}
    return frozenset(kind for kind, on in chosen.items() if on)


__all__ = ["AccountFinder", "AccountLinker", "link_channels"]
