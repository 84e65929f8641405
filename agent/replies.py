"""What the embedded policy says, and the one `style` hook that fits it to a channel.

Every reply has a short core (`text`) and optional `detail`. `style` decides
how much of it a channel gets: SMS and phone get the core only, as one plain
paragraph (short, no lists or markup: a phone shows text as it is, and audio
cannot be skimmed), email is a letter (a salutation with the customer's name
when known, the detail, a sign-off), web chat and the console get core plus
detail. All plain text, no Markdown: not every channel renders it.

Words fit the channel too (`WORDING`, a table per channel): only the web chat
is a "chat"; a caller is asked to *say* "agent", a texter or emailer to
*reply* it, and each is pointed at the contact details on their account that
fit their channel. Speaking numbers well on the phone is a later concern and
belongs in `style` too.
"""

from __future__ import annotations

import re
from datetime import date

from agent.backend import BillingSummary, Order, Subscription
from gateway.models import ChannelKind

SHORT_CHANNELS = frozenset({ChannelKind.SMS, ChannelKind.PHONE})

SIGN_IN = (
    "For your security I can only do that for the account holder. Please sign in to your"
    " account and chat with us from there, or contact us from the phone number or email"
    ' address on your account. If you\'d rather, say "agent" and a person will help.'
)
_HOLDER_ONLY = "For your security I can only do that for the account holder."

# Phrases of the replies (as written for the web chat) and what each channel says instead.
WORDING: dict[ChannelKind, tuple[tuple[str, str], ...]] = {
    ChannelKind.PHONE: (
        (SIGN_IN, f"{_HOLDER_ONLY} Please call us from the phone number on your account, or"
                  ' sign in on our website. If you\'d rather, say "agent" and a person will'
                  " help."),
        ("from an unverified chat", "on an unverified call"),
    ),
    ChannelKind.SMS: (
        (SIGN_IN, f"{_HOLDER_ONLY} Please text us from the phone number on your account, or"
                  ' reply "agent" and a person will help.'),
        ("from an unverified chat", "from an unverified number"),
        ('say "agent"', 'reply "agent"'),
    ),
    ChannelKind.EMAIL: (
        (SIGN_IN, f"{_HOLDER_ONLY} Please write to us from the email address on your"
                  ' account, or sign in on our website. If you\'d rather, reply "agent" and'
                  " a person will help."),
        ("from an unverified chat", "from an unverified address"),
        ('say "agent"', 'reply "agent"'),
    ),
}  # fmt: skip

CAPABILITIES = (
    "I can check an order, reset your password, answer billing questions, manage your"
    " subscription, or answer questions about shipping, returns, warranty and more."
)


def style(
    channel: ChannelKind,
    text: str,
    *,
    detail: str | None = None,
    closing: str | None = None,
    name: str | None = None,
) -> str:
    """Fit a reply to `channel`: `text`, then `detail` where there is room, then
    `closing` (a follow-up question). `name`: the customer's first name, for email."""
    text = reword(channel, text.strip())
    closing = reword(channel, closing) if closing else closing
    if channel in SHORT_CHANNELS:
        return one_paragraph(f"{text} {closing}" if closing else text)
    body = f"{text}\n\n{detail.strip()}" if detail else text
    if closing:
        body = f"{body}\n\n{closing}"
    if channel is ChannelKind.EMAIL:
        hello = f"Hello {name}," if name else "Hello,"
        return f"{hello}\n\n{body}\n\nBest regards,\nCustomer Support"
    return body


def reword(channel: ChannelKind, text: str) -> str:
    """`text` in the words of `channel` (see `WORDING`)."""
    for phrase, instead in WORDING.get(channel, ()):
        text = text.replace(phrase, instead)
    return text


def one_paragraph(text: str) -> str:
    """Plain running text: no Markdown emphasis, links, headings or list markers, and
    no line breaks (SMS and speech)."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    # Emphasis and code marks around words; a masked "j***@example.com" keeps its stars.
    text = re.sub(r"(?<![\w*])(\*\*|__|`)(?=[^\s*])(.+?)(?<=[^\s*])\1(?![\w*])", r"\2", text)
    text = re.sub(r"(?m)^\s*(#{1,6}|[-*+•]|\d+[.)])\s+", "", text)
    return " ".join(text.split())


def first_name(display_name: str | None) -> str | None:
    return display_name.split()[0] if display_name and display_name.strip() else None


def day(d: date) -> str:
    """`Monday 23 November`: unambiguous in every locale, unlike 11/23."""
    return f"{d:%A} {d.day} {d:%B}"


def order_status(order: Order) -> str:
    """One or two sentences with the facts a customer asks for first."""
    o = order
    if o.status == "shipped":
        parts = [f"Order {o.id} has shipped"]
        if o.carrier:
            parts.append(f" with {o.carrier}")
        text = "".join(parts) + "."
        if o.tracking_number:
            text += f" Tracking number: {o.tracking_number}."
        if o.eta:
            text += f" Expected delivery: {day(o.eta)}."
        return text
    if o.status == "processing":
        text = f"Order {o.id} is being prepared and has not shipped yet."
        if o.eta:
            text += f" Estimated delivery: {day(o.eta)}."
        return text
    if o.status == "delivered":
        when = o.delivered_on or o.eta
        if when is None:
            return f"Order {o.id} has been delivered."
        return f"Order {o.id} was delivered on {day(when)}."
    if o.status == "cancelled":
        on = f" on {day(o.cancelled_on)}" if o.cancelled_on else ""
        return f"Order {o.id} was cancelled{on}; any payment for it is refunded."
    return (
        f"Order {o.id} has been returned. The refund is issued once our warehouse has"
        " inspected the item, and then takes 5 to 10 working days to reach your account."
    )


def order_detail(order: Order) -> str:
    items = ", ".join(f"{i.name} x{i.quantity}" for i in order.items)
    return f"Items: {items}. Total: {order.total}. Ordered on {day(order.placed_on)}."


def order_line(order: Order) -> str:
    return f"{order.id} ({order.status}, ordered {day(order.placed_on)})"


def subscription_offer(sub: Subscription) -> str:
    """The confirmation question: exactly what will be cancelled, at what price, from when."""
    when = f", from {day(sub.renews_on)}" if sub.renews_on else ""
    keep = f" You keep access until {day(sub.renews_on)}" if sub.renews_on else " You"
    keep += " and won't be charged again." if sub.renews_on else " won't be charged again."
    return (
        f"Cancel your {sub.plan} plan, {sub.price} a {sub.interval}{when}?{keep}"
        " Please answer yes or no."
    )


def subscription_cancelled(sub: Subscription) -> str:
    until = f" You keep access until {day(sub.access_until)}." if sub.access_until else ""
    return f"Done: your {sub.plan} subscription is cancelled and you won't be charged again.{until}"


def billing_overview(summary: BillingSummary, *, lines: int) -> str:
    text = f"Your payment method is {summary.payment_method}."
    if summary.next_invoice_on:
        text += f" Your next invoice is on {day(summary.next_invoice_on)}."
    recent = summary.recent[:lines]
    if recent:
        listed = "; ".join(f"{day(c.created_on)}: {c.amount} {c.description}" for c in recent)
        text += f" Recent charges and refunds: {listed}."
    return text


def charges_for_rep(summary: BillingSummary) -> str:
    """Recent charges in one line for a rep's brief."""
    if not summary.recent:
        return "none"
    return "; ".join(
        f"{c.created_on.isoformat()} {c.amount} {c.description}" for c in summary.recent
    )


def kb_answer(body: str, *, short: bool) -> str:
    """The article's first paragraph on short channels, all of it elsewhere."""
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    if not paragraphs:
        return ""
    return paragraphs[0] if short else "\n\n".join(paragraphs)


__all__ = [
    "CAPABILITIES",
    "SHORT_CHANNELS",
    "SIGN_IN",
    "WORDING",
    "billing_overview",
    "charges_for_rep",
    "day",
    "first_name",
    "kb_answer",
    "one_paragraph",
    "order_detail",
    "order_line",
    "order_status",
    "reword",
    "style",
    "subscription_cancelled",
    "subscription_offer",
]
