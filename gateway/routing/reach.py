"""Where a customer waiting for a person can be reached besides the conversation:
the phone and email the gateway holds for them, or, for a signed-in customer, the
contact the business backend has on record for their account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.models import ChannelKind, Customer, Frozen, IdentityKind, Verification


class AccountFacts(Frozen):
    """What the business backend has on record for a customer's account."""

    tier: str | None = None
    phone: str | None = None  # E.164
    email: str | None = None


AccountLookup = Callable[[Customer], Awaitable[AccountFacts | None]]
"""The backend's record of `customer.account_ref` (None: no account, or not found)."""

# A customer is signed in when the embedding site signed their account id (or they
# proved it with a one-time code): only then may the account's own phone and email
# be offered as ways to continue (a spoofed SMS sender must not get them).
_SIGNED_IN = frozenset({Verification.HMAC, Verification.OTP})


class Reach(Frozen):
    """Where a waiting customer can be called back or written to, and whether each
    came from the business backend's record rather than an identity the gateway holds."""

    phone: str | None = None
    email: str | None = None
    phone_on_record: bool = False
    email_on_record: bool = False

    @classmethod
    def of(cls, customer: Customer, facts: AccountFacts | None) -> Reach:
        phone = next((i.value for i in customer.identities if i.kind is IdentityKind.PHONE), None)
        email = next((i.value for i in customer.identities if i.kind is IdentityKind.EMAIL), None)
        signed_in = any(
            i.kind is IdentityKind.ACCOUNT and i.verified in _SIGNED_IN for i in customer.identities
        )
        if facts is None or not signed_in:
            return cls(phone=phone, email=email)
        return cls(
            phone=phone or facts.phone or None,
            email=email or facts.email or None,
            phone_on_record=phone is None and bool(facts.phone),
            email_on_record=email is None and bool(facts.email),
        )


def masked_phone(number: str) -> str:
    return f"the number ending {number[-4:]}"


def masked_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"  # ASCII: SMS stays GSM-7


def confirmation(choice: str, reach: Reach, channel: ChannelKind) -> tuple[str, str] | None:
    """What a waiting customer is told after choosing how to continue, and where to
    (the number or address the rep will use); None when the gateway has none."""
    if choice == "email":
        if reach.email is None:
            return None
        where = (
            f" at {masked_email(reach.email)}"
            if reach.email_on_record or channel is not ChannelKind.EMAIL
            else ""
        )
        return f"Thanks: we'll continue by email{where}; we'll write to you shortly.", reach.email
    if reach.phone is None:
        return None
    here = channel in (ChannelKind.SMS, ChannelKind.PHONE) and not reach.phone_on_record
    number = "this number" if here else masked_phone(reach.phone)
    if choice == "callback":
        text = f"Thanks: we'll call you back on {number} as soon as someone is free."
    elif here:
        text = "Thanks: we'll continue by text message. Reply here any time."
    else:
        text = f"Thanks: we'll continue by text message to {number}."
    return text, reach.phone
