"""Tools only the LLM brain offers, defined like the shared ones (agent/tools.py):
a pydantic args model (the JSON schema the model sees), a result model, and a
function run through the same `Toolbox`, so they get the same audit events and
the same binding to the conversation's own account.

- `refund_order`: refund an order. Sensitive: `guard.LlmTools` never runs it on
  the model's word; the customer confirms first, and above the configured limit
  it waits for a rep's approval (agent/llm/approvals.py).
- `callback_schedule`: ask for a person to call the customer back.
- `escalate`: hand over to a person. Its arguments are the structured brief;
  the loop stops there and the brain builds the `HandoffBrief` (agent/llm/brief.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agent.backend import Charge
from agent.tool_models import LookupOrderArgs
from agent.tools import ORDER_LOOKUP, TOOLS, Tool, Toolbox
from gateway.errors import GuardrailRefusal
from gateway.models import Frozen

Queue = Literal["billing", "technical", "general"]
NOT_REFUNDABLE = frozenset({"processing", "cancelled"})  # cancel it instead / already refunded


class RefundArgs(Frozen):
    order_id: str = Field(
        pattern=r"^[A-Za-z0-9-]{1,32}$", description="The order to refund, e.g. 1001."
    )
    reason: str = Field(
        min_length=1, max_length=300, description="Why, in a few words, from the customer."
    )


class RefundResult(Frozen):
    refund: Charge


class CallbackArgs(Frozen):
    when: str = Field(
        min_length=1,
        max_length=120,
        description="When the customer would like the call, in their words (e.g. 'tomorrow"
        " morning').",
    )
    topic: str = Field(min_length=1, max_length=300, description="What the call is about.")


class CallbackResult(Frozen):
    requested: bool
    when: str
    calls_number_on_file: bool = True


class EscalateArgs(Frozen):
    """The structured brief a rep reads (PII is masked again before it is stored)."""

    queue: Queue = Field(description="billing, technical or general.")
    need: str = Field(min_length=1, max_length=500, description="What the customer needs.")
    tried: list[str] = Field(
        default_factory=list, max_length=12, description="What was already tried or checked."
    )
    missing: list[str] = Field(
        default_factory=list, max_length=8, description="What is still unknown."
    )
    next_step: str = Field(
        min_length=1, max_length=500, description="What the person should do first."
    )
    reason: str = Field(min_length=1, max_length=200, description="Why a person is needed.")
    confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="How sure you are that you understood the need."
    )


async def _refund(box: Toolbox, args: RefundArgs) -> RefundResult:
    # The lookup refuses another account's order, exactly as for the order tool.
    found = await box.call(ORDER_LOOKUP, LookupOrderArgs(order_id=args.order_id))
    if found.order is None:
        raise GuardrailRefusal("no_such_order", f"There is no order {args.order_id} on file.")
    if found.order.status in NOT_REFUNDABLE:
        raise GuardrailRefusal(
            "not_refundable",
            f"Order {args.order_id} is {found.order.status}; it cannot be refunded.",
        )
    return RefundResult(refund=await box.backend.refund_order(args.order_id, args.reason))


async def _callback(box: Toolbox, args: CallbackArgs) -> CallbackResult:
    await box.account()  # only for a verified customer: we call the number on file
    return CallbackResult(requested=True, when=args.when)


async def _never_run(box: Toolbox, args: EscalateArgs) -> Frozen:
    raise AssertionError("escalate ends the loop; it is never run as a tool")


REFUND_ORDER = Tool(
    "refund_order",
    "Refund one of the customer's orders to the original payment method. Call it when the"
    " customer asks for a refund; the system asks the customer to confirm, and refunds above"
    " a limit wait for a person's approval.",
    RefundArgs,
    RefundResult,
    _refund,
    lambda r: {
        "order_id": r.refund.order_id,
        "amount_cents": r.refund.amount_cents,
        "charge_id": r.refund.id,
    },
)
CALLBACK_SCHEDULE = Tool(
    "callback_schedule",
    "Ask a member of the team to call the customer back on the number on their account.",
    CallbackArgs,
    CallbackResult,
    _callback,
    lambda r: {"when": r.when},
)
ESCALATE = Tool(
    "escalate",
    "Hand the conversation to a person, with a brief so they need not ask the customer"
    " again. Use it when the customer asks for a person, when you cannot help, or when"
    " you are unsure.",
    EscalateArgs,
    Frozen,
    _never_run,
)

LLM_TOOLS: dict[str, Tool[Any, Any]] = {
    **TOOLS,
    REFUND_ORDER.name: REFUND_ORDER,
    CALLBACK_SCHEDULE.name: CALLBACK_SCHEDULE,
    ESCALATE.name: ESCALATE,
}
# Tools that change something the customer cares about: run only after they confirm.
SENSITIVE = frozenset({"subscription_cancel", "refund_order"})

__all__ = [
    "CALLBACK_SCHEDULE",
    "ESCALATE",
    "LLM_TOOLS",
    "NOT_REFUNDABLE",
    "REFUND_ORDER",
    "SENSITIVE",
    "CallbackArgs",
    "EscalateArgs",
    "RefundArgs",
    "RefundResult",
]
