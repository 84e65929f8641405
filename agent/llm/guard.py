"""`LlmTools`: the tools as the model reaches them, behind guardrails that do not
depend on the model behaving.

- Only allow-listed tools exist for the model; any other name is refused.
- Tools act on the conversation's own customer (the `Toolbox` binding). An
  argument naming an account or customer is refused outright, and another
  account's order is refused by the tool itself.
- Arguments are validated by the tool's pydantic model; an invalid call goes
  back to the model as a tool error (`Outcome.invalid`; the loop gives up on
  the second).
- Sensitive tools (`SENSITIVE`: cancelling, refunds) are never run on the
  model's word. The call becomes a `Pending` confirmation the brain stores in
  `agent_state`; only the customer's "yes" on their next turn runs it
  (`confirm`), and a refund above `refund_limit_cents` then waits for a rep's
  approval (an `approval.pending` event) instead.
- Rate limits (password resets per day) are the tools' own, as for the policy.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent import replies
from agent.backend import format_money
from agent.llm.tools import LLM_TOOLS, NOT_REFUNDABLE, REFUND_ORDER, SENSITIVE, RefundArgs
from agent.tool_models import CancelSubscriptionArgs, LookupOrderArgs, NoArgs
from agent.tools import ORDER_LOOKUP, SUBSCRIPTION_CANCEL, SUBSCRIPTION_GET, Toolbox
from gateway.errors import BackendError, GuardrailRefusal
from gateway.models import Frozen
from gateway.protocols import EventDraft

APPROVAL_PENDING = "approval.pending"
# Tools whose success changes something: after one ran, a failed turn is handed
# over rather than replayed by the embedded policy (which could act twice).
MUTATING = frozenset({"password_reset", "callback_schedule", *SENSITIVE})
_ACCOUNT_KEY = re.compile(r"(?i)(account|customer|user)[_ ]?(id|ref|number)?$|^email$|^phone$")


class Pending(Frozen):
    """A sensitive call waiting for the customer's yes (kept in agent_state)."""

    tool: str
    args: dict[str, Any]
    question: str  # what the customer was asked, e.g. "Shall I refund $129.99 ...?"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one tool call tells the model."""

    payload: dict[str, Any]
    invalid: bool = False  # the model's call itself was malformed

    def content(self) -> str:
        return json.dumps(self.payload, ensure_ascii=False)


class LlmTools:
    """The allow-listed tools for one turn, bound to `box`'s customer."""

    def __init__(self, box: Toolbox, *, allowed: frozenset[str], refund_limit_cents: int) -> None:
        self.box = box
        self.allowed = frozenset(n for n in allowed if n in LLM_TOOLS)
        self.refund_limit_cents = refund_limit_cents
        self.pending: Pending | None = None
        self.acted = False  # a mutating tool succeeded this turn

    @property
    def events(self) -> list[EventDraft]:
        return self.box.events

    def schemas(self) -> list[dict[str, Any]]:
        """The function definitions the model is shown: allow-listed tools only."""
        return [LLM_TOOLS[name].schema() for name in sorted(self.allowed)]

    async def run(self, name: str, arguments: str) -> Outcome:
        """Run one call from the model. Never raises for the model's mistakes,
        refusals or backend failures: the outcome says what happened."""
        if name not in self.allowed:
            return self._refuse(name, "unknown_tool", f"There is no tool named {name!r}.")
        try:
            raw = json.loads(arguments or "{}")
        except ValueError:
            return self._invalid(name, "arguments are not valid JSON")
        if not isinstance(raw, dict):
            return self._invalid(name, "arguments must be a JSON object")
        if any(_ACCOUNT_KEY.search(str(key)) for key in raw):
            return self._refuse(
                name,
                "other_customer",
                "Tools act only on the customer in this conversation; an account, customer,"
                " email or phone cannot be named. Share nothing about other accounts.",
            )
        tool = LLM_TOOLS[name]
        try:
            args = tool.args.model_validate(raw)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return self._invalid(name, detail)
        try:
            if name in SENSITIVE:
                return await self._ask_first(name, args.model_dump(mode="json"))
            result = await self.box.call(tool, args)
        except GuardrailRefusal as exc:
            return Outcome({"ok": False, "error": exc.rule, "message": exc.message})
        except BackendError:
            return Outcome(
                {"ok": False, "error": "backend_error", "message": "The system is unavailable."}
            )
        self.acted = self.acted or name in MUTATING
        return Outcome({"ok": True, "result": result.model_dump(mode="json")})

    async def confirm(self, pending: Pending) -> str:
        """Carry out a confirmed sensitive call; the text that tells the customer.
        Refusals become their message; BackendError propagates (hand over)."""
        try:
            if pending.tool == "subscription_cancel":
                done = await self.box.call(
                    SUBSCRIPTION_CANCEL, CancelSubscriptionArgs(confirmed=True)
                )
                self.acted = True
                if not done.cancelled or done.subscription is None:
                    return "You don't have an active subscription, so there was nothing to cancel."
                return replies.subscription_cancelled(done.subscription)
            args = RefundArgs.model_validate(pending.args)
            found = await self.box.call(ORDER_LOOKUP, LookupOrderArgs(order_id=args.order_id))
            if found.order is None:
                return (
                    f"I couldn't find order {args.order_id} on your account; nothing was refunded."
                )
            amount = found.order.total
            if found.order.total_cents > self.refund_limit_cents:
                approval = uuid.uuid4().hex[:12]
                self.box.events.append(
                    EventDraft(
                        kind=APPROVAL_PENDING,
                        data={
                            "approval_id": approval,
                            "tool": REFUND_ORDER.name,
                            "args": args.model_dump(mode="json"),
                            "amount_cents": found.order.total_cents,
                            "currency": found.order.currency,
                            "account": self.box.customer.account_ref,
                        },
                    )
                )
                self.acted = True
                return (
                    f"Thank you. A refund of {amount} for order {args.order_id} needs a quick"
                    " approval from our billing team, so I've sent it to them now. You'll hear"
                    " from us as soon as it's approved."
                )
            done_refund = (await self.box.call(REFUND_ORDER, args)).refund
            self.acted = True
            paid = format_money(done_refund.amount_cents, done_refund.currency)
            return (
                f"Done: I've refunded {paid}"
                f" for order {args.order_id} to your original payment method. It usually shows"
                " within 5 to 10 business days."
            )
        except GuardrailRefusal as exc:
            return exc.message

    async def _ask_first(self, name: str, args: dict[str, Any]) -> Outcome:
        if name == "subscription_cancel":
            found = await self.box.call(SUBSCRIPTION_GET, NoArgs())
            sub = found.subscription
            if sub is None or sub.status != "active":
                return Outcome({"ok": False, "error": "nothing_to_cancel",
                                "message": "The customer has no active subscription."})  # fmt: skip
            question = f"Just to confirm: shall I cancel your {sub.plan} subscription? (yes or no)"
            args = {"confirmed": False}
        else:
            refund = RefundArgs.model_validate(args)
            found_order = await self.box.call(
                ORDER_LOOKUP, LookupOrderArgs(order_id=refund.order_id)
            )
            if found_order.order is None:
                missing = f"There is no order {refund.order_id} on file."
                return Outcome({"ok": False, "error": "no_such_order", "message": missing})
            if found_order.order.status in NOT_REFUNDABLE:
                why = (
                    f"Order {refund.order_id} is {found_order.order.status}; it cannot be refunded."
                )
                return Outcome({"ok": False, "error": "not_refundable", "message": why})
            question = (
                f"Just to confirm: shall I refund {found_order.order.total} for order"
                f" {refund.order_id}? (yes or no)"
            )
        self.pending = Pending(tool=name, args=args, question=question)
        self.box.events.append(EventDraft(kind="confirmation.requested", data={"tool": name}))
        return Outcome(
            {
                "ok": False,
                "error": "needs_confirmation",
                "message": "Nothing was done yet. The system will ask the customer to confirm"
                f" with this question: {question!r}. Do not claim it is done.",
            }
        )

    def _refuse(self, name: str, rule: str, message: str) -> Outcome:
        self.box.events.append(EventDraft(kind="tool.refused", data={"tool": name, "rule": rule}))
        return Outcome({"ok": False, "error": rule, "message": message})

    def _invalid(self, name: str, detail: str) -> Outcome:
        self.box.events.append(
            EventDraft(kind="tool.refused", data={"tool": name, "rule": "invalid_arguments"})
        )
        return Outcome({"ok": False, "error": "invalid_arguments", "message": detail}, invalid=True)


__all__ = ["APPROVAL_PENDING", "MUTATING", "LlmTools", "Outcome", "Pending"]
