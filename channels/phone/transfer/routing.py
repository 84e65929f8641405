"""`RoutingTargets`: a call's warm transfer rings the reps routing offers it to.

Routing (gateway/routing/calls.py) picks each rep by its own rule (the queue's
skills, `available`, spare call capacity, least recently busy) among those with
a phone number in their profile; each ring is that rep's offer of the queue
entry, and a rep who presses 1 after the brief becomes its holder exactly as a
console accept makes them. Before every ring routing is asked first, so a rep
who became available meanwhile is rung before the configured lines
(GATEWAY_TRANSFER_NUMBERS, `ConfiguredTargets`), which are the fallback when no
rep is eligible. When a rep already holds the conversation (they accepted in
the console) nobody else is rung.

Routing unreachable (another node leads and the bus failed): the lines alone,
as if no rep were eligible, and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from channels.phone.transfer.state import ConfiguredTargets, RepContact, Transfer
from gateway.errors import GatewayError
from gateway.routing.models import CallNext, CallTarget, OfferClosed

log = logging.getLogger("gateway.phone.transfer")


class CallRouting(Protocol):
    """Routing's side of a call's transfer (`gateway.routing.call_routing.CallRouting`)."""

    listeners: list[Callable[[OfferClosed], Awaitable[None]]]

    async def open(self, conversation_id: int, transfer_id: str | None) -> list[CallTarget]: ...

    async def next(
        self, conversation_id: int, transfer_id: str, *, offer_id: int | None, outcome: str | None
    ) -> CallNext: ...

    async def take(
        self, conversation_id: int, transfer_id: str, *, rep_id: int | None,
        offer_id: int | None, line: str = "",
    ) -> bool: ...  # fmt: skip

    async def end(self, conversation_id: int, transfer_id: str | None, *, state: str) -> None: ...


def _contact(target: CallTarget) -> RepContact:
    return RepContact(rep_id=target.rep_id, name=target.name, phone=target.phone,
                      offer_id=target.offer_id)  # fmt: skip


class RoutingTargets:
    """`TransferTargets`: routing's reps first, then the configured lines."""

    def __init__(self, lines: ConfiguredTargets | None) -> None:
        self.lines = lines
        self.routing: CallRouting | None = None  # attached by routing at start-up

    async def reserve(self, conversation_id: int) -> None:
        if self.routing is not None:
            try:
                await self.routing.open(conversation_id, None)
            except GatewayError as exc:  # `open` at the start tries again
                log.warning("conversation %s: cannot reserve it for its call: %s",
                            conversation_id, exc)  # fmt: skip

    async def open(self, transfer: Transfer) -> Sequence[RepContact]:
        reps: list[RepContact] = []
        if self.routing is not None:
            try:
                targets = await self.routing.open(transfer.conversation_id, transfer.id)
                reps = [_contact(t) for t in targets]
            except GatewayError as exc:
                log.error("transfer %s: routing is unreachable: %s", transfer.id, exc)
        lines = await self.lines.open(transfer) if self.lines is not None else []
        return [*reps, *lines]

    async def next(self, transfer: Transfer, outcome: str | None) -> RepContact | None:
        if self.routing is not None:
            previous = transfer.rep.offer_id if transfer.rep is not None else None
            try:
                got = await self.routing.next(transfer.conversation_id, transfer.id,
                                              offer_id=previous, outcome=outcome)  # fmt: skip
            except GatewayError as exc:
                log.error("transfer %s: routing is unreachable: %s", transfer.id, exc)
                got = CallNext()
            if got.target is not None:
                return _contact(got.target)
            if got.held_by is not None:
                log.info("transfer %s: rep %s holds the conversation", transfer.id, got.held_by)
                return None
        return await self.lines.next(transfer, outcome) if self.lines is not None else None

    async def take(self, transfer: Transfer) -> bool:
        rep = transfer.rep
        if self.routing is None or rep is None:
            return rep is not None
        rep_id = rep.rep_id if isinstance(rep.rep_id, int) else None
        try:
            return await self.routing.take(
                transfer.conversation_id, transfer.id, rep_id=rep_id, offer_id=rep.offer_id,
                line=rep.phone,
            )  # fmt: skip
        except GatewayError as exc:
            # A rep only ever takes a call routing gives them (one holder); a line has no
            # holder to clash with, and the caller waits for someone.
            log.error("transfer %s: routing is unreachable: %s", transfer.id, exc)
            return rep_id is None

    async def done(self, conversation_id: int, transfer: Transfer | None) -> None:
        if self.routing is None:
            return
        transfer_id = transfer.id if transfer is not None else None
        state = transfer.state.value if transfer is not None else "abandoned"
        try:
            await self.routing.end(conversation_id, transfer_id, state=state)
        except GatewayError as exc:  # its claim lapses by itself
            log.warning("conversation %s: cannot tell routing the transfer ended: %s",
                        conversation_id, exc)  # fmt: skip


__all__ = ["CallRouting", "RoutingTargets"]
