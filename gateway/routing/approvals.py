"""`ConsoleApprovals`: actions over the agent's limits (refunds above
GATEWAY_REFUND_APPROVAL_LIMIT_CENTS), decided by a rep from the console.

The LLM agent records an `approval.pending` event and tells the customer it
waits (agent/llm/guard.py); the conversation usually stays with the agent.
The dispatcher's turn hook (`on_turn`) announces it: an `approval.pending`
console event for the approvers (reps who serve GATEWAY_APPROVALS_QUEUE) and
for the rep holding the conversation, if any. Either may open the conversation
and decide. `decide` runs the agent's `decide_approval` (the refund is made on
the backend, then the decision, the audit event and the message telling the
customer are stored in one transaction), sends that message on the customer's
current channel as the dispatcher would, and announces `approval.decided`.

Decisions run on the routing leader (the console API of every node reaches it
through `RoutingFront`), one at a time, so two reps approving at once refund
once: the second finds nothing pending (404). With PostgreSQL a decision also
holds the conversation's turn lock (`gate`): neither an agent turn of it on
another node nor a former leader still finishing a decision interleaves.
What waits is kept in memory on the leader and read back from the audit log
whenever a node starts leading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

from agent.backend import Backend, format_money
from agent.llm.approvals import APPROVAL_DECIDED, PendingApproval, decide_approval
from agent.llm.approvals import pending_approvals as stored_approvals
from agent.llm.guard import APPROVAL_PENDING
from gateway.errors import GuardrailRefusal, NotFoundError
from gateway.models import Conversation, Customer
from gateway.protocols import ChannelRegistry, EventDraft, TurnGate
from gateway.routing.intake import deliver, message_json
from gateway.routing.models import ConsoleEventDraft
from gateway.routing.router import RoutingError
from gateway.routing.service import RoutingService
from gateway.routing.store import RoutingChange, RoutingStore
from gateway.routing.views import ConsoleViews

log = logging.getLogger(__name__)


class ConsoleApprovals:
    """What waits for a rep's approval, and the decisions."""

    def __init__(
        self,
        service: RoutingService,
        views: ConsoleViews,
        routing: RoutingStore,
        channels: ChannelRegistry,
        backend: Backend | None,
        queue: str | None,
    ) -> None:
        self.service = service
        self.views = views
        self.store = service.store
        self.routing = routing
        self.channels = channels
        self.backend = backend
        self.queue = queue  # approvers serve it; None: only the holding rep decides
        self.waiting: dict[int, set[str]] = {}  # conversation id -> pending approval ids
        self.gate: TurnGate | None = None  # several nodes: the dispatcher's turn locks
        self._deciding = asyncio.Lock()

    async def start(self) -> None:
        """Read back what still waits (a restart or a new leader loses no approval)."""
        self.waiting.clear()
        for conversation_id in await self.routing.conversations_awaiting(
            APPROVAL_PENDING, APPROVAL_DECIDED
        ):
            pending = await stored_approvals(self.store, conversation_id)
            if pending:
                self.waiting[conversation_id] = {p.approval_id for p in pending}

    def stop(self) -> None:
        """Another node leads from now on: what waits is its to track."""
        self.waiting.clear()

    # ----------------------------------------------------------------- who

    def is_approver(self, rep_id: int) -> bool:
        return self.queue is not None and self.queue in self.service.queues_of(rep_id)

    def _holds(self, rep_id: int, conversation_id: int) -> bool:
        held = self.service.router.held.get(conversation_id)
        return held is not None and held.rep_id == rep_id

    async def approver_sees(self, rep_id: int, conversation_id: int) -> bool:
        """A `ConsoleViews` viewer: approvers may read a conversation while it waits."""
        return conversation_id in self.waiting and self.is_approver(rep_id)

    # --------------------------------------------------------------- reads

    async def listing(self, rep_id: int) -> list[dict[str, Any]]:
        """Every approval this rep may decide, oldest first."""
        approver = self.is_approver(rep_id)
        items: list[dict[str, Any]] = []
        for conversation_id in list(self.waiting):
            if approver or self._holds(rep_id, conversation_id):
                items += await self.of_conversation(rep_id, conversation_id)
        return sorted(items, key=lambda i: str(i["requested_at"]))

    async def of_conversation(self, rep_id: int, conversation_id: int) -> list[dict[str, Any]]:
        """What waits on one conversation the rep may see (NotFoundError otherwise)."""
        if not await self.views.may_see(rep_id, conversation_id):
            raise NotFoundError(f"no conversation {conversation_id} for you")
        pending = await stored_approvals(self.store, conversation_id)
        if not pending:
            return []
        conv = await self.store.get_conversation(conversation_id)
        customer = await self.store.get_customer(conv.customer_id)
        may_decide = self.is_approver(rep_id) or self._holds(rep_id, conversation_id)
        return [_approval_json(p, customer, may_decide) for p in pending]

    # ------------------------------------------------------------- decide

    async def decide(
        self, rep_id: int, conversation_id: int, approval_id: str, *, approve: bool
    ) -> dict[str, Any]:
        """Approve (the refund is made) or decline; the customer is told either way.
        NotFoundError: not visible or nothing such pending; RoutingError: not this
        rep's to decide, or the backend refused."""
        if not await self.views.may_see(rep_id, conversation_id):
            raise NotFoundError(f"no conversation {conversation_id} for you")
        if not (self.is_approver(rep_id) or self._holds(rep_id, conversation_id)):
            who = f"reps of the {self.queue} queue" if self.queue else "nobody else"
            raise RoutingError(f"only the rep holding the conversation or {who} may decide")
        if self.backend is None:
            raise RoutingError("no business backend to carry out the approval")
        rep = self.service.rep(rep_id)
        async with self._turn_lock(conversation_id), self._deciding:
            try:
                stored = await decide_approval(
                    self.store, self.backend, conversation_id, approval_id,
                    approve=approve, rep=rep.username,
                )  # fmt: skip
            except GuardrailRefusal as exc:
                raise RoutingError(exc.message) from exc
            self._forget(conversation_id, approval_id)
        customer = await self.store.get_customer(stored.conversation.customer_id)
        if self.service.router.metrics is not None:
            self.service.router.metrics.count_stored(stored.messages)
        await deliver(self.service.intake.outbox, customer, stored.conversation,
                      stored.messages)  # fmt: skip
        data = {
            "conversation_id": conversation_id,
            "approval_id": approval_id,
            "approved": approve,
            "rep_id": rep_id,
            "rep": rep.display_name,
            "message": message_json(stored.messages[0]) if stored.messages else None,
        }
        # A separate commit from the decision: a console that misses it (a crash right
        # here) reads the approvals again when it loads.
        await self._announce(stored.conversation, "approval.decided", data)
        return data

    def _turn_lock(self, conversation_id: int) -> AbstractAsyncContextManager[None]:
        if self.gate is None:
            return contextlib.nullcontext()
        return self.gate.hold(conversation_id)

    def _forget(self, conversation_id: int, approval_id: str) -> None:
        ids = self.waiting.get(conversation_id)
        if ids is not None:
            ids.discard(approval_id)
            if not ids:
                del self.waiting[conversation_id]

    # ------------------------------------------------------------ announce

    async def on_turn(
        self, customer: Customer, conversation: Conversation, events: tuple[EventDraft, ...]
    ) -> None:
        """A dispatcher turn hook: an `approval.pending` the agent recorded reaches the
        consoles of those who may decide it."""
        for event in events:
            if event.kind != APPROVAL_PENDING or "approval_id" not in event.data:
                continue
            approval_id = str(event.data["approval_id"])
            self.waiting.setdefault(conversation.id, set()).add(approval_id)
            data = {
                "conversation_id": conversation.id,
                "approval_id": approval_id,
                "tool": event.data.get("tool"),
                "amount_cents": event.data.get("amount_cents"),
                "currency": event.data.get("currency"),
                "customer": customer.display_name,
            }
            try:
                await self._announce(conversation, "approval.pending", data)
            except Exception:  # it waits all the same: consoles list it when they load
                log.exception("announcing approval %s failed", approval_id)

    async def _announce(self, conversation: Conversation, kind: str, data: dict[str, Any]) -> None:
        drafts: list[ConsoleEventDraft] = []
        if self.queue is not None:
            drafts.append(ConsoleEventDraft(kind=kind, queue=self.queue, data=data))
        held = self.service.router.held.get(conversation.id)
        if held is not None and held.rep_id is not None:
            drafts.append(ConsoleEventDraft(kind=kind, rep_id=held.rep_id, data=data))
        if drafts:
            await self.service.router.apply(RoutingChange(console=tuple(drafts)))


def _approval_json(p: PendingApproval, customer: Customer, may_decide: bool) -> dict[str, Any]:
    return {
        "approval_id": p.approval_id,
        "conversation_id": p.conversation_id,
        "tool": p.tool,
        "args": p.args,
        "amount_cents": p.amount_cents,
        "currency": p.currency,
        "amount": format_money(p.amount_cents, p.currency),
        "requested_at": p.requested_at.isoformat(),
        "customer": customer.display_name,
        "may_decide": may_decide,
    }


__all__ = ["ConsoleApprovals"]
