"""Rep approval of actions above the agent's limits (refunds over
GATEWAY_REFUND_APPROVAL_LIMIT_CENTS), for the console to call.

When a customer confirms such a refund, the brain records an `approval.pending`
event on the conversation and tells the customer it is waiting. A rep then:

- lists what waits with `pending_approvals(store, conversation_id)`;
- decides with `decide_approval(store, backend, conversation_id, approval_id,
  approve=..., rep=...)`: on approval the refund is made on the backend, then
  one transaction records `approval.decided`, the `tool.refund_order` audit
  event and a message telling the customer. The caller publishes
  `TurnStored.messages` to the conversation's channel (as the dispatcher does).

A decision is final: an approval already decided, or unknown, is NotFoundError.
The refund is made on the account recorded with the request, which must still
be the conversation's customer's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.backend import Backend, format_money
from agent.llm.guard import APPROVAL_PENDING
from gateway.errors import ConflictError, GuardrailRefusal, NotFoundError
from gateway.models import AuthorKind, Frozen
from gateway.protocols import EventDraft, OutboundDraft, Store, TurnRecord, TurnStored

APPROVAL_DECIDED = "approval.decided"


class PendingApproval(Frozen):
    """One action waiting for a rep."""

    approval_id: str
    conversation_id: int
    tool: str
    args: dict[str, Any]
    amount_cents: int
    currency: str
    account: str | None
    requested_at: datetime


async def pending_approvals(store: Store, conversation_id: int) -> list[PendingApproval]:
    """What waits for a rep on this conversation, oldest first."""
    events = await store.events(conversation_id)
    decided = {e.data.get("approval_id") for e in events if e.kind == APPROVAL_DECIDED}
    return [
        PendingApproval(
            approval_id=e.data["approval_id"],
            conversation_id=conversation_id,
            tool=e.data["tool"],
            args=e.data["args"],
            amount_cents=e.data["amount_cents"],
            currency=e.data["currency"],
            account=e.data.get("account"),
            requested_at=e.created_at,
        )
        for e in events
        if e.kind == APPROVAL_PENDING and e.data.get("approval_id") not in decided
    ]


async def decide_approval(
    store: Store,
    backend: Backend,
    conversation_id: int,
    approval_id: str,
    *,
    approve: bool,
    rep: str,
) -> TurnStored:
    """Approve (and carry out) or decline one pending action; the stored turn.
    Raises NotFoundError, GuardrailRefusal, BackendError (nothing recorded then)."""
    waiting = {p.approval_id: p for p in await pending_approvals(store, conversation_id)}
    pending = waiting.get(approval_id)
    if pending is None:
        raise NotFoundError(f"no pending approval {approval_id} on conversation {conversation_id}")
    conversation = await store.get_conversation(conversation_id)
    customer = await store.get_customer(conversation.customer_id)
    if pending.account is None or customer.account_ref != pending.account:
        raise GuardrailRefusal("other_customer", "the approval is for another account")
    order_id = str(pending.args.get("order_id"))
    amount = format_money(pending.amount_cents, pending.currency)
    events = [
        EventDraft(
            kind=APPROVAL_DECIDED,
            data={"approval_id": approval_id, "approved": approve, "rep": rep},
        )
    ]
    if approve:
        refund = await backend.refund_order(order_id, str(pending.args.get("reason", "")))
        events.append(
            EventDraft(
                kind="tool.refund_order",
                data={
                    "order_id": order_id,
                    "amount_cents": refund.amount_cents,
                    "charge_id": refund.id,
                    "account": pending.account,
                    "approved_by": rep,
                },
            )
        )
        text = (
            f"Good news: your refund of {amount} for order {order_id} was approved and"
            " sent to your original payment method. It usually shows within 5 to 10"
            " business days."
        )
    else:
        text = (
            f"Our billing team reviewed the refund of {amount} for order {order_id} and"
            " could not approve it as it stands. A member of the team will be in touch"
            " to explain and help."
        )
    record = TurnRecord(
        conversation_id=conversation_id,
        expected_version=conversation.version,
        outbound=(OutboundDraft(text=text, author=AuthorKind.REP, channel=conversation.channel),),
        events=tuple(events),
    )
    for attempt in range(3):
        try:
            return await store.record_turn(record)
        except ConflictError:
            # The customer wrote (or a rep acted) meanwhile. The refund is made already:
            # it must be recorded, or the approval would stay pending and could run twice.
            if attempt == 2:
                raise
            fresh = await store.get_conversation(conversation_id)
            record = record.model_copy(update={"expected_version": fresh.version})
    raise AssertionError("unreachable")


__all__ = ["APPROVAL_DECIDED", "PendingApproval", "decide_approval", "pending_approvals"]
