"""What an action is aimed at: the subscription, email address or thing a message names.

Patterns are what patterns are good at: ids and addresses. The flows act only
when the named target is the customer's own and is the thing asked about
("cancel subscription SUB-1005" when the customer's plan is SUB-1001 changes
nothing; "reset the password for bob@example.com" on Alice's chat sends nothing;
"unsubscribe me from the newsletter" is not the paid plan).
"""

from __future__ import annotations

import re

from gateway.models import Frozen

_SUBSCRIPTION = re.compile(r"\bSUB[- ]?(\d{1,10})\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Things called a "subscription" that are not the paid plan.
_NOT_PLAN = re.compile(
    r"\b(news ?letters?|mailing list|marketing|promotional|promo|offers? emails?|"
    r"e-?mails? from you|sms alerts?|text alerts?|notifications?)\b",
    re.IGNORECASE,
)


class Targets(Frozen):
    """The targets one message names; None: it names none of that kind."""

    subscription_id: str | None = None  # normalised "SUB-1005"
    email: str | None = None  # lower case
    not_plan: str | None = None  # "newsletter": a mailing, not the paid plan


def targets(text: str) -> Targets:
    """The subscription id, email address and non-plan mailing named in `text`."""
    sub = _SUBSCRIPTION.search(text)
    email = _EMAIL.search(text)
    other = _NOT_PLAN.search(text)
    return Targets(
        subscription_id=f"SUB-{sub.group(1)}" if sub else None,
        email=email.group(0).lower() if email else None,
        not_plan=other.group(0).lower() if other else None,
    )


__all__ = ["Targets", "targets"]
