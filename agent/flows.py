"""The embedded policy's business flows: orders, password resets, subscriptions,
billing and refunds. Each is `async (Turn) -> Decision`; they act only through
the toolbox, whose guardrails decide what is allowed, and word the outcome.
"""

from __future__ import annotations

from agent import replies, verify
from agent.backend import Order
from agent.intents import Intent, has
from agent.targets import targets
from agent.tool_models import CancelSubscriptionArgs, ListOrdersArgs, LookupOrderArgs, NoArgs
from agent.tools import (
    BILLING_SUMMARY,
    ORDER_LIST,
    ORDER_LOOKUP,
    PASSWORD_RESET,
    SUBSCRIPTION_CANCEL,
    SUBSCRIPTION_GET,
)
from agent.turn import (
    ANYTHING_ELSE,
    SIGN_IN,
    Turn,
    handover,
    kb_reply,
    not_understood,
    say,
    search,
)
from gateway.errors import GuardrailRefusal
from gateway.protocols import Decision

_ORDER_TOPICS = (Intent.ORDER_STATUS, Intent.ORDER_CANCEL)

# ------------------------------------------------------------------ pending questions


async def on_confirm_cancel(t: Turn) -> Decision | None:
    """The answer to "shall I cancel your subscription?"; None: a new subject."""
    p, state = t.parsed, t.state
    if has(Intent.DENY, t.text):
        state.pending = None
        state.note("offered cancellation; the customer chose to keep the subscription")
        return say(
            t,
            f"No problem, I haven't changed anything: your subscription stays active."
            f" {ANYTHING_ELSE}",
            intent="cancel_subscription",
            confidence=p.confidence,
        )
    if has(Intent.AFFIRM, t.text) and p.intent in (Intent.AFFIRM, Intent.CANCEL_SUBSCRIPTION):
        state.pending = None
        # The only place confirmed=True is ever set: the customer just said yes, to the
        # subscription named in the question (the tool refuses any other).
        args = CancelSubscriptionArgs(confirmed=True, subscription_id=state.offered)
        state.offered = None
        try:
            done = await t.box.call(SUBSCRIPTION_CANCEL, args)
        except GuardrailRefusal as exc:  # e.g. asked by email: a person confirms it
            t.state.note(f"cancellation refused: {exc.rule}")
            return handover(t, "refused", reason=f"cancellation refused: {exc.rule}",
                            confidence=p.confidence)  # fmt: skip
        if not done.cancelled or done.subscription is None:
            return say(
                t,
                "You don't have an active subscription, so there is nothing to cancel.",
                intent="cancel_subscription",
                confidence=0.9,
            )
        state.note(f"cancelled subscription {done.subscription.id} after confirmation")
        return say(
            t,
            replies.subscription_cancelled(done.subscription),
            intent="cancel_subscription",
            confidence=0.95,
        )
    if p.intent in (Intent.UNKNOWN, Intent.CANCEL_SUBSCRIPTION, Intent.DONT_KNOW):
        return not_understood(
            t,
            "Sorry, I need a clear answer before I cancel anything: shall I cancel"
            " your subscription? Please answer yes or no.",
        )
    return None  # a new subject: the cancellation is dropped, nothing was changed


async def on_order_number(t: Turn) -> Decision | None:
    """The answer to "what's your order number?"; None: a new subject."""
    p, state = t.parsed, t.state
    topic = state.topic if state.topic in _ORDER_TOPICS else Intent.ORDER_STATUS
    answers = (*_ORDER_TOPICS, Intent.UNKNOWN, Intent.AFFIRM, Intent.DONT_KNOW)
    if p.order_id and p.intent in answers:
        state.pending = None
        return await with_order(t, topic, p.order_id)
    if p.intent is Intent.DONT_KNOW:
        listed = await t.box.call(ORDER_LIST, ListOrdersArgs(limit=5))
        if not listed.orders:
            state.pending = None
            return say(
                t,
                "I can't see any orders on your account. If you ordered with another"
                " email address, please sign in with that one.",
                intent=topic.value,
                confidence=0.8,
            )
        state.note("listed the customer's recent orders")
        lines = "; ".join(replies.order_line(o) for o in listed.orders)
        return say(
            t,
            f"No problem. Your recent orders are: {lines}. Which one is it?",
            intent=topic.value,
            confidence=0.85,
        )
    if p.intent is Intent.DENY:
        state.pending = None
        return say(t, f"Alright. {ANYTHING_ELSE}", intent="deny", confidence=0.8)
    if p.intent is Intent.UNKNOWN:
        return not_understood(
            t,
            "Sorry, I didn't catch an order number. It's in your order confirmation"
            " email, for example 1001. If you don't have it, just say so.",
        )
    return None


# ------------------------------------------------------------------ orders


async def order(t: Turn) -> Decision:
    """Order status or cancellation: ask for the number when it is missing."""
    p, state = t.parsed, t.state
    if p.order_id:
        return await with_order(t, p.intent, p.order_id)
    if not t.box.verified:
        # No point asking for a number the tools will not look up.
        state.note("could not look up orders: customer not signed in")
        return say(t, SIGN_IN, intent=p.intent.value, confidence=p.confidence)
    state.pending = "order_number"
    state.note("asked for the order number")
    return say(
        t,
        "Sure, I can check that. What's your order number? It's in your"
        " order confirmation email, for example 1001.",
        intent=p.intent.value,
        confidence=p.confidence,
    )


async def with_order(t: Turn, topic: Intent, order_id: str) -> Decision:
    """Look `order_id` up and answer for `topic` (status or cancellation)."""
    state = t.state
    state.topic = topic
    found = await find_order(t, order_id)
    if isinstance(found, Decision):
        return found
    if found is None:
        state.order_id, state.pending = None, "order_number"  # "could you check the number?"
        return not_understood(
            t,
            f"I couldn't find order {order_id} on your account. Could you check the"
            " number? It's in your order confirmation email.",
            intent=topic.value,
            confidence=0.7,
            reason="the order numbers given are not on the customer's account",
            missing=("an order number on the customer's account",),
        )
    state.order_id, state.failures = found.id, 0
    state.note(f"looked up order {found.id}: {found.status}")
    status = replies.order_status(found)
    if topic is Intent.ORDER_CANCEL:
        if found.status == "processing":
            state.note(f"order {found.id} has not shipped: a person can still cancel it")
            return handover(
                t,
                "order_cancel",
                reason="cancelling an order needs a person",
                confidence=0.9,
                next_step=f"Cancel order {found.id} (still processing) and confirm the"
                " refund to the customer.",
            )
        if found.status == "shipped":
            status += (
                " It can no longer be cancelled, but once it has arrived you can return"
                " it within 30 days for a full refund."
            )
    return say(
        t,
        status,
        detail=replies.order_detail(found),
        closing=ANYTHING_ELSE,
        intent=topic.value,
        confidence=0.9,
    )


async def find_order(t: Turn, order_id: str) -> Order | Decision | None:
    """The customer's own order, or None when it is missing *or someone else's*:
    both are worded the same, so a reply never confirms another customer's order."""
    try:
        return (await t.box.call(ORDER_LOOKUP, LookupOrderArgs(order_id=order_id))).order
    except GuardrailRefusal as exc:
        if exc.rule == "other_customer":
            t.state.note(f"order {order_id} is not on the customer's account")
            return None
        t.state.note(f"could not look up order {order_id}: {exc.rule}")
        t.state.pending = None
        if exc.rule == "unverified":
            return say(t, SIGN_IN, intent=t.parsed.intent.value, confidence=0.8)
        return handover(t, "refused", reason=f"order lookup refused: {exc.rule}", confidence=0.5)


# ------------------------------------------------------------------ account actions


NOT_YOURS = "I can't find {what} on your account, so I haven't changed anything."


async def password_reset(t: Turn) -> Decision:
    """Send a reset link to the address on file, within the daily limit (asked for on a
    channel whose sender can be forged: once a code to the contact on record is back).
    A reset for an address that is not the account's sends nothing."""
    conf = t.parsed.confidence
    named = targets(t.text).email
    if named is not None and t.box.verified:
        try:
            mine = (await t.box.account()).email.lower()
        except GuardrailRefusal:
            mine = None
        if named != mine:
            t.state.note("asked to reset the password of an address not on the account")
            return say(
                t,
                f"{NOT_YOURS.format(what='that email address')} I can only send a reset"
                " link to the address on your own account.",
                intent="password_reset",
                confidence=conf,
            )
    gate = await verify.confirm_gate(t, Intent.PASSWORD_RESET)
    if gate is not None:
        return gate
    try:
        sent = await t.box.call(PASSWORD_RESET, NoArgs())
    except GuardrailRefusal as exc:
        t.state.note(f"password reset refused: {exc.rule}")
        if exc.rule == "unverified":
            text = (
                "I can't send a reset link from an unverified chat. On the sign-in page,"
                ' choose "Forgot password" and enter the email address on your'
                " account; the link arrives within a few minutes."
            )
        elif exc.rule == "rate_limit":
            text = (
                f"I've already sent the maximum of {t.resets_per_day} reset emails"
                " to your account today, so I can't send another one. Please use the"
                ' most recent email (check your spam folder too), or say "agent" if'
                " you still can't get in."
            )
        else:
            return handover(
                t, "refused", reason=f"password reset refused: {exc.rule}", confidence=conf
            )
        return say(t, text, intent="password_reset", confidence=conf)
    t.state.note(f"sent a password reset link to {sent.sent_to}")
    return say(
        t,
        f"I've sent a password reset link to {sent.sent_to}. It's valid for"
        f" {sent.expires_in_minutes} minutes; check your spam folder if it"
        " hasn't arrived in a few minutes.",
        intent="password_reset",
        confidence=conf,
    )


async def cancel_subscription(t: Turn) -> Decision:
    """Offer the cancellation and wait for a yes (see `on_confirm_cancel`); on a channel
    whose sender can be forged, only once a code to the contact on record is back."""
    conf = t.parsed.confidence
    named = targets(t.text)
    if named.not_plan is not None and named.subscription_id is None:
        t.state.note(f"asked to stop the {named.not_plan}, not the paid plan")
        return say(
            t,
            f"To stop the {named.not_plan}, use the unsubscribe link at the bottom of any"
            " of those messages, or turn it off under Account > Notifications. That"
            f" doesn't touch your paid plan. {ANYTHING_ELSE}",
            intent="cancel_subscription",
            confidence=conf,
        )
    try:
        sub = (await t.box.call(SUBSCRIPTION_GET, NoArgs())).subscription
    except GuardrailRefusal:
        t.state.note("could not check the subscription: customer not signed in")
        return say(t, SIGN_IN, intent="cancel_subscription", confidence=conf)
    if named.subscription_id is not None and (
        sub is None or sub.id.lower() != named.subscription_id.lower()
    ):
        t.state.note(f"subscription {named.subscription_id} is not on the customer's account")
        return say(
            t,
            f"{NOT_YOURS.format(what=f'subscription {named.subscription_id}')} {ANYTHING_ELSE}",
            intent="cancel_subscription",
            confidence=conf,
        )
    # Reading is allowed where the sender can be forged; the change waits for the code.
    gate = await verify.confirm_gate(t, Intent.CANCEL_SUBSCRIPTION)
    if gate is not None:
        return gate
    if sub is None or sub.status != "active":
        t.state.note("checked the subscription: none active")
        return say(
            t,
            f"You don't have an active subscription, so there is nothing to cancel."
            f" {ANYTHING_ELSE}",
            intent="cancel_subscription",
            confidence=conf,
        )
    t.state.pending, t.state.offered = "confirm_cancel", sub.id
    t.state.note(f"asked the customer to confirm cancelling {sub.plan}")
    return say(t, replies.subscription_offer(sub), intent="cancel_subscription", confidence=conf)


# ------------------------------------------------------------------ billing


async def refund(t: Turn) -> Decision:
    """Refunds always go to a person; a policy question gets the article first."""
    p = t.parsed
    if p.info_question and not p.order_id:
        hit = await search(t)
        if hit is not None:
            return kb_reply(
                t,
                hit,
                intent="refund",
                suffix="If you'd like a refund for a specific order, tell me and I'll pass"
                " you to our billing team.",
            )
    missing = []
    if p.order_id and t.box.verified:
        found = await find_order(t, p.order_id)
        if isinstance(found, Order):
            t.state.note(f"checked order {found.id}: {found.status}, total {found.total}")
    elif not p.order_id:
        missing.append("which order the refund is for")
    return handover(
        t,
        "refund",
        reason="refunds are always handled by a person",
        confidence=p.confidence,
        missing=missing,
        message="Refunds are handled by our billing team, so I'm passing you to a person."
        " They'll see this conversation, so you won't need to repeat yourself.",
    )


async def billing(t: Turn) -> Decision:
    """Account billing facts; disputed charges go to the billing team."""
    p = t.parsed
    summary = None
    if t.box.verified:
        try:
            summary = await t.box.call(BILLING_SUMMARY, NoArgs())
            t.state.note("checked the billing summary")
        except GuardrailRefusal as exc:  # e.g. an account the backend does not know
            t.state.note(f"could not read the billing summary: {exc.rule}")
    if p.dispute:
        if summary is not None:
            t.state.note(f"recent charges: {replies.charges_for_rep(summary)}")
        return handover(
            t, "dispute", reason="a disputed charge needs the billing team", confidence=p.confidence
        )
    if p.info_question or summary is None:
        hit = await search(t)
        if hit is not None:
            return kb_reply(t, hit, intent="billing")
    if summary is None:
        t.state.note("could not show billing details: customer not signed in")
        return say(t, SIGN_IN, intent="billing", confidence=p.confidence)
    text = replies.billing_overview(summary, lines=2 if t.short else 3)
    return say(
        t,
        f"{text} If anything looks wrong, tell me and I'll pass you to our billing team.",
        intent="billing",
        confidence=p.confidence,
    )


__all__ = [
    "billing",
    "cancel_subscription",
    "find_order",
    "on_confirm_cancel",
    "on_order_number",
    "order",
    "password_reset",
    "refund",
    "with_order",
]
