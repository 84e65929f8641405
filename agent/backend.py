"""The business backend the agent's tools act on, as a narrow protocol.

The embedded `DemoBackend` (agent/demo_backend.py) implements it on its own
SQLite file; a real deployment plugs in a client for its own HTTP API. Every
record is a frozen pydantic model, so tool results serialize to JSON as they
are (what an LLM sees later). Amounts are integer minor units (cents) with an
ISO currency code: no float rounding on money.

The backend knows nothing about conversations or guardrails; deciding *who*
may see *what* is the tool layer's job (agent/tools.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Protocol

from gateway.models import Frozen

Tier = Literal["standard", "silver", "gold"]
OrderStatus = Literal["processing", "shipped", "delivered", "cancelled", "returned"]
SubscriptionStatus = Literal["active", "cancelled"]
ChargeKind = Literal["charge", "refund"]
LookupKind = Literal["phone", "email"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_money(cents: int, currency: str) -> str:
    """`12999, "USD"` -> `$129.99`; unknown currencies keep their code."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    symbol = _SYMBOLS.get(currency)
    amount = f"{whole:,}.{frac:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


class Account(Frozen):
    """A customer account of the business (not the gateway's `Customer`)."""

    id: str
    name: str
    email: str
    phone: str  # E.164, e.g. +15551234567
    tier: Tier = "standard"


class OrderItem(Frozen):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int


class Order(Frozen):
    id: str
    account_id: str
    status: OrderStatus
    items: tuple[OrderItem, ...] = ()
    total_cents: int
    currency: str = "USD"
    placed_on: date
    carrier: str | None = None
    tracking_number: str | None = None
    eta: date | None = None  # expected delivery; the delivery date once delivered
    delivered_on: date | None = None
    cancelled_on: date | None = None

    @property
    def total(self) -> str:
        return format_money(self.total_cents, self.currency)


class Subscription(Frozen):
    id: str
    account_id: str
    plan: str
    status: SubscriptionStatus
    price_cents: int
    currency: str = "USD"
    interval: Literal["month", "year"] = "month"
    started_on: date
    renews_on: date | None = None  # next charge while active
    cancelled_on: date | None = None
    access_until: date | None = None  # paid-up period still usable after cancelling

    @property
    def price(self) -> str:
        return format_money(self.price_cents, self.currency)


class Charge(Frozen):
    """One line of an account's billing history: a charge or a refund."""

    id: str
    account_id: str
    kind: ChargeKind
    amount_cents: int
    currency: str = "USD"
    description: str
    created_on: date
    order_id: str | None = None

    @property
    def amount(self) -> str:
        return format_money(self.amount_cents, self.currency)


class BillingSummary(Frozen):
    account_id: str
    payment_method: str  # already masked by the backend, e.g. "Visa ending 4242"
    balance_cents: int = 0  # owed now; negative is a credit
    currency: str = "USD"
    next_invoice_on: date | None = None
    recent: tuple[Charge, ...] = ()  # newest first


class PasswordResetSent(Frozen):
    account_id: str
    sent_to: str  # masked address, e.g. j***@example.com
    sent_at: datetime
    expires_in_minutes: int = 60


class Backend(Protocol):
    """What the agent's tools need from the business. Lookups of unknown ids
    return None; actions on unknown ids raise `gateway.errors.BackendError`,
    as do transport failures of a remote backend."""

    async def get_account(self, account_id: str) -> Account | None: ...

    async def find_account(self, kind: LookupKind, value: str) -> Account | None:
        """The account listing this phone number (E.164) or email address."""
        ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def list_orders(self, account_id: str, *, limit: int = 10) -> list[Order]:
        """The account's orders, newest first."""
        ...

    async def send_password_reset(self, account_id: str) -> PasswordResetSent:
        """Email a reset link to the address on file (never to one given in chat)."""
        ...

    async def get_subscription(self, account_id: str) -> Subscription | None:
        """The account's current subscription (active, else the latest), if any."""
        ...

    async def cancel_subscription(self, account_id: str) -> Subscription:
        """Cancel the active subscription; BackendError when there is none."""
        ...

    async def billing_summary(self, account_id: str) -> BillingSummary: ...

    async def refund_order(self, order_id: str, reason: str) -> Charge:
        """Refund an order's total to the original payment method; BackendError when
        the order is unknown, has no charge, or was already refunded."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "Account",
    "Backend",
    "BillingSummary",
    "Charge",
    "LookupKind",
    "Order",
    "OrderItem",
    "OrderStatus",
    "PasswordResetSent",
    "Subscription",
    "format_money",
]
