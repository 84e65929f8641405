"""Who is calling: what the store and the business backend know of a caller's number.

A call is linked to a business account when it starts (not per utterance, so no
lookup ever delays a spoken turn): when the store has no customer for the
number, or one not linked to an account yet, the backend (`AccountLookup`) is
asked for the number's account, whose name and id then go on the customer the
call's conversation is opened for. A backend that fails only costs the
greeting its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from channels.phone.services import AccountLookup
from gateway.models import Identity
from gateway.protocols import Store

log = logging.getLogger("gateway.phone.call")


@dataclass(frozen=True, slots=True)
class Caller:
    """What is known of a caller before their conversation is opened."""

    known: bool  # the store has a customer for the number, or the backend an account
    name: str | None  # the account's name (None when the backend was not asked or failed)
    ref: str | None  # the account's id


async def identify(store: Store, accounts: AccountLookup | None, identity: Identity) -> Caller:
    """Look the caller up in the store, and in the backend when the store has no
    account for them (and a backend is configured)."""
    known = await store.find_customer(identity)
    name = ref = None
    if accounts is not None and (known is None or known.account_ref is None):
        account = await _lookup_account(accounts, identity.value)
        name, ref = _field(account, "name"), _field(account, "id")
    return Caller(known=known is not None or ref is not None, name=name, ref=ref)


def first_name(display_name: str | None) -> str | None:
    """The first word of a display name, to greet the caller with (None: no name)."""
    return display_name.split()[0] if display_name and display_name.strip() else None


async def _lookup_account(accounts: AccountLookup, value: str) -> Any:
    if not value.startswith("+"):
        return None  # no usable caller id
    try:
        return await accounts.find_account("phone", value)
    except Exception as exc:  # the backend is down: greet them without a name
        log.warning("account lookup for a caller failed: %s", exc)
        return None


def _field(item: Any, name: str) -> str | None:
    value = getattr(item, name, None) if item is not None else None
    return str(value) if value else None


__all__ = ["Caller", "first_name", "identify"]
