"""`CallRouting`: what the phone channel asks routing about a call's warm transfer,
on any node (routing/calls.py has the leader's side and the rules).

Questions (`open`, `next`, `take`) go to the leader through `RoutingFront` and
wait for its answer; `end` is news the leader gets in order without the call
waiting on it. The leader's news for a transfer (`OfferClosed`: the ringing rep's
offer ended in the console) comes to the node holding the call as `NEWS` and is
handed to `listeners` (that node's warm transfers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.bus import Bus, Data
from gateway.routing.front import RoutingFront
from gateway.routing.models import CallNext, CallTarget, OfferClosed

NEWS = "routing.call_news"  # served on every node: news for the transfers it holds

NewsListener = Callable[[OfferClosed], Awaitable[None]]


class CallRouting:
    """What the phone channel calls, on any node (through `RoutingFront`)."""

    def __init__(self, front: RoutingFront, bus: Bus) -> None:
        self.front = front
        self.node = bus.node_id
        self.listeners: list[NewsListener] = []  # the warm transfers of this node
        bus.serve(NEWS, self._news)

    def _data(self, conversation_id: int, transfer_id: str | None, **more: Any) -> Data:
        return {"conversation_id": conversation_id, "transfer_id": transfer_id,
                "node": self.node, **more}  # fmt: skip

    async def open(self, conversation_id: int, transfer_id: str | None) -> list[CallTarget]:
        """Claim the conversation for its call's transfer; who would ring now, in order."""
        got = await self.front.run("call_open", self._data(conversation_id, transfer_id))
        return [CallTarget.model_validate(r) for r in got["reps"]]

    async def next(
        self, conversation_id: int, transfer_id: str, *, offer_id: int | None, outcome: str | None
    ) -> CallNext:
        """The rep to ring next, after the one whose `offer_id` ended with `outcome`."""
        data = self._data(conversation_id, transfer_id, offer_id=offer_id, outcome=outcome)
        return CallNext.model_validate(await self.front.run("call_next", data))

    async def take(
        self, conversation_id: int, transfer_id: str, *, rep_id: int | None,
        offer_id: int | None, line: str = "",
    ) -> bool:  # fmt: skip
        """The rep (or, `rep_id` None, a configured `line`) pressed 1: may they have it?"""
        data = self._data(conversation_id, transfer_id, rep_id=rep_id, offer_id=offer_id,
                          line=line)  # fmt: skip
        return bool((await self.front.run("call_take", data))["taken"])

    async def end(self, conversation_id: int, transfer_id: str | None, *, state: str) -> None:
        """The transfer is over (`state`), or never started (`transfer_id` None)."""
        await self.front.tell("call_end", self._data(conversation_id, transfer_id, state=state))

    async def _news(self, d: Data) -> Data:
        news = OfferClosed.model_validate(d)
        for listener in list(self.listeners):
            await listener(news)
        return {}


__all__ = ["NEWS", "CallRouting", "NewsListener"]
