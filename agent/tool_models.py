"""The agent's tools' argument and result models (agent/tools.py runs them).

An argument model's JSON schema is what a model is shown and fills in; its
constraints are the first check on what a model asks for. Tools that act on the
customer's account take no account id: they act on the conversation's own.
"""

from __future__ import annotations

from pydantic import Field

from agent.backend import Order, Subscription
from agent.kb import KbHit
from gateway.models import Frozen

# ------------------------------------------------------------------ arguments


class NoArgs(Frozen):
    """The tool takes no arguments: it acts on the conversation's own customer."""


class LookupOrderArgs(Frozen):
    order_id: str = Field(
        pattern=r"^[A-Za-z0-9-]{1,32}$",
        description="The order number the customer gave, e.g. 1001 (without '#').",
    )


class ListOrdersArgs(Frozen):
    limit: int = Field(5, ge=1, le=20, description="How many recent orders to return.")


class CancelSubscriptionArgs(Frozen):
    confirmed: bool = Field(
        description="True only after the customer explicitly said yes to cancelling.",
    )
    subscription_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]{1,32}$",
        description="The subscription the customer confirmed cancelling (its id, e.g."
        " SUB-1001); the cancellation is refused when it is not the customer's current one.",
    )


class SearchKbArgs(Frozen):
    query: str = Field(min_length=1, max_length=500, description="The customer's question.")
    limit: int = Field(3, ge=1, le=5)


# -------------------------------------------------------------------- results


class OrderResult(Frozen):
    order_id: str
    order: Order | None = None  # None: no such order on this customer's account


class OrderList(Frozen):
    orders: tuple[Order, ...] = ()


class ResetResult(Frozen):
    sent_to: str  # masked address on file
    expires_in_minutes: int
    remaining_today: int


class SubscriptionResult(Frozen):
    subscription: Subscription | None = None


class CancelResult(Frozen):
    cancelled: bool  # False: there was no active subscription
    subscription: Subscription | None = None


class KbResults(Frozen):
    hits: tuple[KbHit, ...] = ()


__all__ = [
    "CancelResult",
    "CancelSubscriptionArgs",
    "KbResults",
    "ListOrdersArgs",
    "LookupOrderArgs",
    "NoArgs",
    "OrderList",
    "OrderResult",
    "ResetResult",
    "SearchKbArgs",
    "SubscriptionResult",
]
