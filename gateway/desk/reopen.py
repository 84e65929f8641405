"""Reopening a closed conversation: it waits in its queue again (state `queued`),
offered to that queue's reps like any handover, so the usual accept (on the routing
leader, crash-safe: one transaction) gives it to a rep. Refused while the customer
has another open conversation (their new messages go there: continue in it)."""

from __future__ import annotations

from gateway.desk.store import DeskStore
from gateway.errors import ConflictError
from gateway.models import Conversation, ConversationState
from gateway.protocols import EventDraft
from gateway.routing.models import Rep, WorkKind
from gateway.routing.policy import base_priority
from gateway.routing.service import RoutingService
from gateway.routing.store import EntryDraft, RoutingChange


async def reopen(service: RoutingService, desk: DeskStore, rep: Rep, cid: int) -> Conversation:
    """Reopen conversation `cid` for `rep` (who worked it, or a supervisor: the caller
    checks). ConflictError when it is not closed or the customer has an open one."""
    router = service.router
    async with router.lock:
        conv = await service.store.get_conversation(cid)
        if conv.state is not ConversationState.CLOSED:
            raise ConflictError(f"conversation {cid} is not closed")
        other = await desk.open_conversation_of(conv.customer_id)
        if other is not None:
            raise ConflictError(f"the customer has an open conversation (#{other}): continue there")
        queue = conv.queue if conv.queue in router.queues else next(iter(router.queues))
        applied = await router.apply(
            RoutingChange(
                conversation_id=cid,
                state=ConversationState.QUEUED,
                queue=queue,
                events=(EventDraft(kind="rep.reopened", data={"rep_id": rep.id,
                                                              "queue": queue}),),
                new_entry=EntryDraft(conversation_id=cid, queue=queue,
                                     kind=WorkKind.of(conv.channel),
                                     priority=base_priority(conv.brief, None)),
                console=(router.size_event(queue, +1),),
            )
        )  # fmt: skip
        assert applied.entry is not None and applied.conversation is not None
        router.add_waiting(applied.entry)
        router.customer_of[cid] = conv.customer_id
    await router.pump()
    return applied.conversation


__all__ = ["reopen"]
