"""Proof by one-time code, in the embedded policy: linking another phone number or
address to the customer, and confirming account actions asked for on a channel
whose sender can be forged.

Linking ("text me a code at +1 555 123 4567", "email me a code at
jane@example.com"): the agent sends a code to that number or address (a `Notify`
action, which the dispatcher hands to the SMS or email channel) and links it
(`IdentityLinks.link_identity`, verification `otp`) only when the code comes back
in this conversation. Nothing is linked, and no other record or account is
revealed, before that: whether the target belongs to someone else is only told
to the person who proved they receive its messages.

Confirmation: a password reset or a cancellation asked for by email, SMS or phone
(`WEAK`: `From`, sender numbers and caller ID can be forged) is done only after a
code sent to the address or number *on record* for the account (the business
backend's, never one named in the message) has come back; that confirms the
conversation for `CONFIRM_FOR`, and the request is carried on. An anonymous
sender whose address or number is on record for an account is tied to it by the
same proof.

Codes go out at most `sends_per_hour` times per customer (counted in the store's
events, `verify.code_sent`), and per target at most `sends_per_hour` an hour and
`target_sends_per_day` a day (in memory, agent/codes.py). A requester over their
own cap is told so (it says nothing about anyone else); a request to a target
that is over its cap gets exactly the answer of a sent code while nothing is
sent (`verify.code_sent` with `withheld`), so that the answer never tells
whether others have asked for codes to that number or address.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from agent import replies
from agent.backend import Account, LookupKind
from agent.codes import Challenge, Check, CodeBook, Purpose, TargetLimiter, find_code
from agent.intents import Intent
from agent.turn import Turn, say
from gateway.models import ChannelKind, Identity, IdentityKind, Notify, Verification
from gateway.phone_numbers import to_e164
from gateway.protocols import Decision, EventDraft, IdentityLinks, LinkResult

Handler = Callable[[Turn], Awaitable[Decision]]

WEAK = frozenset({ChannelKind.EMAIL, ChannelKind.SMS, ChannelKind.PHONE})
CONFIRM_FOR = timedelta(minutes=30)
SENT_EVENT = "verify.code_sent"
_STRONG = frozenset({Verification.OTP, Verification.HMAC, Verification.BACKEND})

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,20}\d")
_BY_TEXT = re.compile(r"\b(text|sms|txt|phone|number|mobile|cell)\b", re.IGNORECASE)


class Verifier:
    """What the code flows need: the code book, the store's linking, the limits."""

    def __init__(
        self,
        codes: CodeBook,
        links: IdentityLinks,
        *,
        sends_per_hour: int = 3,
        target_sends_per_day: int = 10,
    ) -> None:
        self.codes = codes
        self.links = links
        self.sends_per_hour = sends_per_hour
        self.targets = TargetLimiter(sends_per_hour, target_sends_per_day)


# ------------------------------------------------------------------ linking


async def link_request(t: Turn) -> Decision:
    """Send a code to the number or address named ("text me a code at ...")."""
    conf = t.parsed.confidence
    v = t.verifier
    if v is None:
        return say(t, "Sorry, I can't send verification codes here.", intent="link_identity",
                   confidence=conf)  # fmt: skip
    target = find_target(t.text)
    if target is None:
        return say(
            t,
            "Sure. Which mobile number or email address should I send the code to? For"
            ' example: "text me a code at +1 555 123 4567".',
            intent="link_identity",
            confidence=conf,
        )
    known = next((i for i in t.ctx.customer.identities if i.key == target.key), None)
    if known is not None and known.verified in _STRONG:
        return say(t, f"You've already linked {show(target)}.", intent="link_identity",
                   confidence=conf)  # fmt: skip
    account = await t.box.backend.find_account(_lookup(target.kind), target.value)
    what = "link it to this conversation"
    return await _send(t, v, "link", target, what, account=account.id if account else None)


async def confirm_gate(t: Turn, intent: Intent) -> Decision | None:
    """Before an account action on a `WEAK` channel: None to go ahead (not weak,
    confirmed lately, or no account to act on, which the tools refuse anyway),
    else the decision that sends a code to the contact on record."""
    if t.channel not in WEAK:
        return None
    otp = t.state.otp
    if otp.confirmed_until is not None and t.box.clock() < otp.confirmed_until:
        return None
    account = await _account_of(t)
    if account is None:
        return None
    v = t.verifier
    if v is None:
        t.state.note(f"{intent.value} not done: the sender could not be confirmed")
        return say(
            t,
            f"For your security I can't do that over {t.channel.value} without confirming"
            ' it\'s you. Please sign in on our website, or say "agent" and a person will help.',
            intent=intent.value,
            confidence=t.parsed.confidence,
        )
    if t.channel is ChannelKind.EMAIL:
        target = Identity(kind=IdentityKind.EMAIL, value=account.email)
    else:
        target = Identity(kind=IdentityKind.PHONE, value=account.phone)
    what = "go ahead with " + _ACTIONS.get(intent, "your request")
    return await _send(t, v, "confirm", target, what, account=account.id, resume=intent)


_ACTIONS = {
    Intent.PASSWORD_RESET: "the password reset",
    Intent.CANCEL_SUBSCRIPTION: "your cancellation",
}


async def _account_of(t: Turn) -> Account | None:
    """The account the conversation acts on: the customer's, else the one that lists
    the sender's own address or number (a claim, until a code proves it)."""
    backend = t.box.backend
    if t.ctx.customer.account_ref is not None:
        return await backend.get_account(t.ctx.customer.account_ref)
    kind = IdentityKind.EMAIL if t.channel is ChannelKind.EMAIL else IdentityKind.PHONE
    found = {}
    for ident in t.ctx.customer.identities:
        if ident.kind is kind:
            account = await backend.find_account(_lookup(kind), ident.value)
            if account is not None:
                found[account.id] = account
    return next(iter(found.values())) if len(found) == 1 else None


async def _send(
    t: Turn,
    v: Verifier,
    purpose: Purpose,
    target: Identity,
    what: str,
    *,
    account: str | None,
    resume: Intent | None = None,
) -> Decision:
    intent = resume.value if resume else "link_identity"
    conf = t.parsed.confidence
    now = t.box.clock()
    since = now - timedelta(hours=1)
    sent = await t.box.ledger.count_events(t.ctx.customer.id, SENT_EVENT, since)
    sent += sum(e.kind == SENT_EVENT for e in t.box.events)
    if sent >= v.sends_per_hour:
        t.box.events.append(
            EventDraft(kind="verify.refused", data={"rule": "rate_limit", "to": target.key})
        )
        t.state.note("could not send a verification code: too many sent in the last hour")
        return say(
            t,
            "I've already sent the most codes I can for now. Please use the latest code"
            ' you received, or try again in an hour. If you need help now, say "agent".',
            intent=intent,
            confidence=conf,
        )
    code, challenge = v.codes.issue(
        purpose, target, conversation_id=t.ctx.conversation.id, now=now,
        resume=resume.value if resume else None, account=account,
    )  # fmt: skip
    t.state.otp.challenge = challenge
    # Over the target's own cap (anyone's requests count): answered as if sent, so the
    # answer is no oracle of others' requests; the requester's count goes up the same.
    withheld = not v.targets.allow(target, now)
    data = {"to": target.key, "purpose": purpose, "resume": intent}
    if withheld:
        data["withheld"] = "target_limit"
    t.box.events.append(EventDraft(kind=SENT_EVENT, data=data))
    if withheld:
        t.state.note(f"withheld a verification code to {show(target)}: its daily/hourly cap")
    else:
        t.state.note(f"sent a verification code to {show(target)} to {what}")
    minutes = int(v.codes.ttl.total_seconds() // 60)
    notice = Notify(
        to=target,
        text=f"Your support verification code is {code}. It expires in {minutes} minutes."
        " Never share it with anyone. If you didn't ask for it, ignore this message.",
        failed_text=say_text(
            t,
            f"Sorry, I couldn't send a code to {show(target)} just now."
            ' Please try again later, or say "agent".',
        ),
    )
    protect = "To keep your account safe, " if purpose == "confirm" else ""
    text = (
        f"{protect}I've sent a {len(code)}-digit code to {show(target)}. Reply with the code"
        f" here to {what}; it's valid for {minutes} minutes."
    )
    return say(t, text, intent=intent, confidence=conf, extra=() if withheld else (notice,))


# ------------------------------------------------------------------ codes back


async def on_code(t: Turn, handlers: Mapping[Intent, Handler]) -> Decision | None:
    """A code typed back while one is outstanding; None when the message has none."""
    challenge = t.state.otp.challenge
    code = find_code(t.text)
    v = t.verifier
    if challenge is None or code is None or v is None:
        return None
    now = t.box.clock()
    if now >= challenge.expires_at + v.codes.ttl:
        # Long done with: six digits now are something else (an order number, say).
        t.state.otp.challenge = None
        return None
    result, after = v.codes.check(challenge, code, conversation_id=t.ctx.conversation.id, now=now)
    t.state.otp.challenge = after
    t.box.events.append(
        EventDraft(kind=f"verify.{result.value}", data={"to": after.to, "purpose": after.purpose})
    )
    if result is not Check.OK:
        t.state.note(f"a verification code was not accepted: {result.value}")
        return say(t, _REFUSED[result](v.codes.left(after)), intent="verify_code",
                   confidence=0.9, keep_failures=True)  # fmt: skip
    return await _passed(t, v, after, handlers)


_REFUSED: dict[Check, Callable[[int], str]] = {
    Check.WRONG: lambda left: (
        f"That code doesn't match. Please check it and try again"
        f" ({left} {'try' if left == 1 else 'tries'} left)."
    ),
    Check.LOCKED: lambda _: (
        "That code can't be used any more: there were too many wrong"
        " tries. Ask me for a new code if you still need one."
    ),
    Check.EXPIRED: lambda _: "That code has expired. Ask me for a new code if you still need one.",
    Check.USED: lambda _: (
        "That code has already been used. Ask me for a new code if you need another one."
    ),
}


async def _passed(
    t: Turn, v: Verifier, challenge: Challenge, handlers: Mapping[Intent, Handler]
) -> Decision:
    target = challenge.target.model_copy(update={"verified": Verification.OTP})
    linked = await v.links.link_identity(t.ctx.customer.id, target, account_ref=challenge.account)
    t.box.events.append(
        EventDraft(kind="identity.link", data={"to": target.key, "result": linked.result.value,
                                               "account": challenge.account})
    )  # fmt: skip
    if linked.result is not LinkResult.OTHER_ACCOUNT:
        # The tools act for the customer as they are now (an account may have been tied).
        t.box.customer = linked.customer
    if challenge.purpose == "confirm":
        t.state.otp.confirmed_until = t.box.clock() + CONFIRM_FOR
        t.box.sender_only = False  # confirmed through the contact on record
        t.state.note(f"the customer confirmed with a code sent to {show(target)}")
        handler = handlers.get(Intent(challenge.resume)) if challenge.resume else None
        if handler is not None:
            return await handler(t)
        return say(t, "Thanks, that's confirmed. What can I do for you?", intent="verify_code",
                   confidence=0.9)  # fmt: skip
    if linked.result is LinkResult.MERGED:
        t.state.note(f"linked {show(target)} after a verification code; its earlier record"
                     " was merged into this customer")  # fmt: skip
        text = (
            f"Thanks, that's confirmed: {show(target)} is now linked to you, and your earlier"
            " messages from it are now part of your history here, so I'll know it's you"
            " when you contact us that way."
        )
    elif linked.result is LinkResult.OTHER_ACCOUNT:
        t.state.note(f"{show(target)} is on record for a different account: not linked")
        text = (
            f"Thanks, but {show(target)} is on record for a different account than yours, so I"
            " haven't linked it. If you'd like a person to look at it, say \"agent\"."
        )
    else:
        t.state.note(f"linked {show(target)} after a verification code")
        text = (
            f"Thanks, that's confirmed: {show(target)} is now linked to you, so I'll know it's"
            " you when you contact us that way."
        )
    return say(t, text, intent="verify_code", confidence=0.95)


# ------------------------------------------------------------------ helpers


def _lookup(kind: IdentityKind) -> LookupKind:
    return "email" if kind is IdentityKind.EMAIL else "phone"


def find_target(text: str) -> Identity | None:
    """The phone number or email address to send a code to, named in `text`."""
    email = _EMAIL.search(text)
    phone = None
    for match in _PHONE.finditer(_EMAIL.sub(" ", text)):
        number = to_e164(match.group(0))
        if number is not None:
            phone = Identity(kind=IdentityKind.PHONE, value=number)
            break
    mail = Identity(kind=IdentityKind.EMAIL, value=email.group(0).lower()) if email else None
    if mail is not None and phone is not None:
        return phone if _BY_TEXT.search(text) else mail
    return mail or phone


def show(identity: Identity) -> str:
    """How a target is named to the customer: "the number ending 4567", "j***@example.com"."""
    if identity.kind is IdentityKind.PHONE:
        return f"the number ending {identity.value[-4:]}"
    local, _, domain = identity.value.partition("@")
    return f"{local[:1]}***@{domain}"


def say_text(t: Turn, text: str) -> str:
    """`text` styled for the customer's channel (for a reply the dispatcher may swap in)."""
    return replies.style(t.channel, text, name=t.name)


__all__ = [
    "CONFIRM_FOR",
    "SENT_EVENT",
    "WEAK",
    "Verifier",
    "confirm_gate",
    "find_target",
    "link_request",
    "on_code",
    "show",
]
