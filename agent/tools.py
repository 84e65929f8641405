"""The agent's tools: one definition each, shared by the embedded policy and
(later) the LLM brain.

A `Tool` is a pydantic args model (its JSON schema is what a model sees), a
result model (both in agent/tool_models.py) and an async function. `TOOLS` is
the registry. A `Toolbox` binds the tools to one conversation's customer and
enforces the guardrails, so no caller (policy or model) can talk its way past
them:

- account tools act only on `Customer.account_ref`; there is no account id
  argument to fill in. Without one the customer is anonymous and they refuse
  (`GuardrailRefusal("unverified")`);
- an order of another account is refused (`"other_customer"`) with the same
  words as a missing one, so the reply cannot confirm that it exists;
- password resets are limited per customer per rolling 24 hours, counted in
  the `UsageLedger` (`"rate_limit"`);
- cancelling needs `confirmed=true`, set only after the customer said yes
  (`"not_confirmed"`);
- account-changing tools (password reset, cancellation) refuse a request whose
  sender can be forged (`sender_only`: email, where `From` proves nothing) with
  `"sender_only"`: a customer linked by their email address may read their
  account, whose answers go to that address, but changes are confirmed
  through the address or number on record, never made on `From` alone.

Every call, refused or not, is recorded as an `EventDraft` in
`Toolbox.events` (`tool.<name>`, `tool.refused`, `tool.failed`) for the
gateway's audit log.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agent.backend import Account, Backend, BillingSummary
from agent.kb import KnowledgeBase
from agent.pii import mask_pii
from agent.tool_models import (
    CancelResult,
    CancelSubscriptionArgs,
    KbResults,
    ListOrdersArgs,
    LookupOrderArgs,
    NoArgs,
    OrderList,
    OrderResult,
    ResetResult,
    SearchKbArgs,
    SubscriptionResult,
)
from gateway.errors import BackendError, GuardrailRefusal
from gateway.models import Customer
from gateway.protocols import EventDraft, UsageLedger

ArgsT = TypeVar("ArgsT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)

RESET_EVENT = "tool.password_reset"


# ---------------------------------------------------------------------- tools


@dataclass(frozen=True, slots=True)
class Tool(Generic[ArgsT, ResultT]):
    """One tool: name, description, argument and result models, and its function."""

    name: str
    description: str
    args: type[ArgsT]
    result: type[ResultT]
    run: Callable[[Toolbox, ArgsT], Awaitable[ResultT]]
    audit: Callable[[ResultT], dict[str, Any]] | None = None  # what the event log keeps

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function definition a model is shown."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.args.model_json_schema(),
            },
        }


class Toolbox:
    """The tools bound to one customer for one turn. Create one per turn and
    hand `events` to the gateway with the decision."""

    def __init__(
        self,
        backend: Backend,
        ledger: UsageLedger,
        kb: KnowledgeBase,
        customer: Customer,
        *,
        resets_per_day: int = 3,
        clock: Callable[[], datetime] | None = None,
        sender_only: bool = False,
    ) -> None:
        self.backend = backend
        self.sender_only = sender_only
        self.ledger = ledger
        self.kb = kb
        self.customer = customer
        self.resets_per_day = resets_per_day
        self.clock = clock or (lambda: datetime.now(UTC))
        self.events: list[EventDraft] = []
        self._account: Account | None = None

    @property
    def verified(self) -> bool:
        """Whether the customer is tied to a backend account at all."""
        return self.customer.account_ref is not None

    async def account(self) -> Account:
        """The conversation's own account; refuses for anonymous customers."""
        if self._account is not None:
            return self._account
        ref = self.customer.account_ref
        if ref is None:
            raise GuardrailRefusal(
                "unverified",
                "I can only do this for a verified account holder. Please sign in first.",
            )
        account = await self.backend.get_account(ref)
        if account is None:
            raise GuardrailRefusal("unknown_account", "I could not find your account.")
        self._account = account
        return account

    def require_trusted_sender(self) -> None:
        """Refuse an account change asked for where the sender can be forged."""
        if self.sender_only:
            raise GuardrailRefusal(
                "sender_only",
                "This change must be confirmed through the email address or phone number on"
                " the account; the sender of this message alone does not prove who asks.",
            )

    async def call(self, tool: Tool[ArgsT, ResultT], args: ArgsT) -> ResultT:
        """Run `tool`, recording the event. Raises GuardrailRefusal or BackendError."""
        logged = _loggable(args)
        try:
            result = await tool.run(self, args)
        except GuardrailRefusal as exc:
            self.events.append(
                EventDraft(
                    kind="tool.refused",
                    data={
                        "tool": tool.name,
                        "rule": exc.rule,
                        "args": logged,
                        "account": self.customer.account_ref,
                    },
                )
            )
            raise
        except BackendError as exc:
            self.events.append(
                EventDraft(kind="tool.failed", data={"tool": tool.name, "error": str(exc)})
            )
            raise
        data: dict[str, Any] = {"args": logged, "account": self.customer.account_ref}
        if tool.audit is not None:
            data.update(tool.audit(result))
        self.events.append(EventDraft(kind=f"tool.{tool.name}", data=data))
        return result

    async def call_json(self, name: str, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
        """Run a tool from a model's JSON arguments; never raises for bad input,
        refusals or backend errors, it answers `{"ok": false, "error": ...}`."""
        tool = TOOLS.get(name)
        if tool is None:
            self.events.append(
                EventDraft(kind="tool.refused", data={"tool": name, "rule": "unknown_tool"})
            )
            return {"ok": False, "error": "unknown_tool", "message": f"No tool named {name!r}."}
        try:
            raw = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
            args = tool.args.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            self.events.append(
                EventDraft(kind="tool.refused", data={"tool": name, "rule": "invalid_arguments"})
            )
            return {"ok": False, "error": "invalid_arguments", "message": _brief_error(exc)}
        try:
            result = await self.call(tool, args)
        except GuardrailRefusal as exc:
            return {"ok": False, "error": exc.rule, "message": exc.message}
        except BackendError:
            return {"ok": False, "error": "backend_error", "message": "The system is unavailable."}
        return {"ok": True, "result": result.model_dump(mode="json")}


def _loggable(args: BaseModel) -> dict[str, Any]:
    data = args.model_dump(mode="json")
    return {k: mask_pii(v) if isinstance(v, str) else v for k, v in data.items()}


def _brief_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
    return "arguments are not valid JSON"


# ------------------------------------------------------------ implementations


async def _lookup_order(box: Toolbox, args: LookupOrderArgs) -> OrderResult:
    account = await box.account()
    order = await box.backend.get_order(args.order_id)
    if order is None:
        return OrderResult(order_id=args.order_id)
    if order.account_id != account.id:
        raise GuardrailRefusal(
            "other_customer",
            f"Order {args.order_id} is not on this customer's account; share nothing about it.",
        )
    return OrderResult(order_id=args.order_id, order=order)


async def _list_orders(box: Toolbox, args: ListOrdersArgs) -> OrderList:
    account = await box.account()
    return OrderList(orders=tuple(await box.backend.list_orders(account.id, limit=args.limit)))


async def _send_password_reset(box: Toolbox, args: NoArgs) -> ResetResult:
    account = await box.account()
    box.require_trusted_sender()
    since = box.clock() - timedelta(hours=24)
    used = await box.ledger.count_events(box.customer.id, RESET_EVENT, since)
    # Resets sent earlier in this same turn are not in the ledger yet.
    used += sum(e.kind == RESET_EVENT for e in box.events)
    if used >= box.resets_per_day:
        raise GuardrailRefusal(
            "rate_limit",
            f"At most {box.resets_per_day} password reset emails can be sent per day.",
        )
    sent = await box.backend.send_password_reset(account.id)
    return ResetResult(
        sent_to=sent.sent_to,
        expires_in_minutes=sent.expires_in_minutes,
        remaining_today=max(0, box.resets_per_day - used - 1),
    )


async def _get_subscription(box: Toolbox, args: NoArgs) -> SubscriptionResult:
    account = await box.account()
    return SubscriptionResult(subscription=await box.backend.get_subscription(account.id))


async def _cancel_subscription(box: Toolbox, args: CancelSubscriptionArgs) -> CancelResult:
    if not args.confirmed:
        raise GuardrailRefusal(
            "not_confirmed", "Ask the customer to confirm the cancellation before cancelling."
        )
    account = await box.account()
    box.require_trusted_sender()
    current = await box.backend.get_subscription(account.id)
    if args.subscription_id is not None and (
        current is None or current.id.lower() != args.subscription_id.lower()
    ):
        raise GuardrailRefusal(
            "other_customer",
            f"Subscription {args.subscription_id} is not this customer's; cancel nothing.",
        )
    if current is None or current.status != "active":
        return CancelResult(cancelled=False, subscription=current)
    return CancelResult(
        cancelled=True, subscription=await box.backend.cancel_subscription(account.id)
    )


async def _billing_summary(box: Toolbox, args: NoArgs) -> BillingSummary:
    account = await box.account()
    return await box.backend.billing_summary(account.id)


async def _search_kb(box: Toolbox, args: SearchKbArgs) -> KbResults:
    return KbResults(hits=tuple(box.kb.search(args.query, limit=args.limit)))


ORDER_LOOKUP = Tool(
    "order_lookup",
    "Look up one of the customer's orders by its number: status, items, carrier, tracking"
    " number and expected delivery date.",
    LookupOrderArgs,
    OrderResult,
    _lookup_order,
    lambda r: {
        "order_id": r.order_id,
        "found": r.order is not None,
        "status": r.order.status if r.order else None,
    },
)
ORDER_LIST = Tool(
    "order_list",
    "List the customer's most recent orders, newest first.",
    ListOrdersArgs,
    OrderList,
    _list_orders,
    lambda r: {"order_ids": [o.id for o in r.orders]},
)
PASSWORD_RESET = Tool(
    "password_reset",
    "Email a password reset link to the address on the customer's account (never to an"
    " address given in the conversation). Limited to a few per day.",
    NoArgs,
    ResetResult,
    _send_password_reset,
    lambda r: {"sent_to": r.sent_to},
)
SUBSCRIPTION_GET = Tool(
    "subscription_get",
    "The customer's subscription: plan, price, status and renewal date.",
    NoArgs,
    SubscriptionResult,
    _get_subscription,
    lambda r: {"status": r.subscription.status if r.subscription else None},
)
SUBSCRIPTION_CANCEL = Tool(
    "subscription_cancel",
    "Cancel the customer's active subscription. Only call this after the customer has"
    " explicitly confirmed that they want to cancel, with confirmed=true.",
    CancelSubscriptionArgs,
    CancelResult,
    _cancel_subscription,
    lambda r: {
        "cancelled": r.cancelled,
        "subscription_id": r.subscription.id if r.subscription else None,
    },
)
BILLING_SUMMARY = Tool(
    "billing_summary",
    "The customer's payment method, next invoice date and recent charges and refunds.",
    NoArgs,
    BillingSummary,
    _billing_summary,
)
KB_SEARCH = Tool(
    "kb_search",
    "Search the help-centre articles; each hit has a score from 0 to 1.",
    SearchKbArgs,
    KbResults,
    _search_kb,
    lambda r: {"hits": [{"slug": h.slug, "score": h.score} for h in r.hits]},
)

TOOLS: dict[str, Tool[Any, Any]] = {
    tool.name: tool
    for tool in (
        ORDER_LOOKUP,
        ORDER_LIST,
        PASSWORD_RESET,
        SUBSCRIPTION_GET,
        SUBSCRIPTION_CANCEL,
        BILLING_SUMMARY,
        KB_SEARCH,
    )
}


def tool_schemas() -> list[dict[str, Any]]:
    """Every tool's function definition, for a model's `tools` parameter."""
    return [tool.schema() for tool in TOOLS.values()]


__all__ = [
    "BILLING_SUMMARY",
    "KB_SEARCH",
    "ORDER_LIST",
    "ORDER_LOOKUP",
    "PASSWORD_RESET",
    "SUBSCRIPTION_CANCEL",
    "SUBSCRIPTION_GET",
    "TOOLS",
    "Tool",
    "Toolbox",
    "tool_schemas",
]
