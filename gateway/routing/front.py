"""`RoutingFront`: routing as every node sees it.

One node at a time routes (the leader: its `Router` holds the queues, offers
and timers, rebuilt from the store when it takes over). The console API, the
console websocket and the dispatcher's hooks on any node go through this
front: on the leader (or a gateway running alone) it calls the routing service
in-process; elsewhere it calls the leader over the bus. Both paths run the same
`serve` below, with the same JSON arguments, so they cannot drift apart.

The console page's reads (`/me`, a conversation, the directory) and approvals
(the listing, who may decide, the decision itself) read the router's picture,
so they run on the leader too; decisions are thereby made one at a time for
the whole cluster. So do the hooks whose console events depend on that
picture: a warm transfer's steps (`call.transfer`, told by the node holding
the call) and an agent turn's `approval.pending`.

Which node holds a rep's consoles is counted on the bus (`hold`/`held`): a rep
whose last console anywhere closed is set away after GATEWAY_CONSOLE_AWAY_AFTER_S.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agent.llm.guard import APPROVAL_PENDING
from gateway.bus import LEADER, Bus, Data
from gateway.errors import NotFoundError
from gateway.models import Conversation, Customer, Identity, Message
from gateway.protocols import EventDraft
from gateway.routing.approvals import ConsoleApprovals
from gateway.routing.hub import ConsoleHub
from gateway.routing.intake import Intake
from gateway.routing.models import Presence, QueueEntry, Rep
from gateway.routing.service import RoutingService
from gateway.routing.views import ConsoleViews

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 15.0


def _console_key(rep_id: int) -> str:
    return f"console:{rep_id}"


class RoutingFront:
    """See the module docstring."""

    def __init__(
        self, bus: Bus, service: RoutingService, intake: Intake, hub: ConsoleHub,
        views: ConsoleViews, approvals: ConsoleApprovals, *, away_after_s: float,
    ) -> None:  # fmt: skip
        self.bus = bus
        self.service = service
        self.intake = intake
        self.hub = hub
        self.views = views
        self.approvals = approvals
        self.away_after_s = away_after_s
        self.leading = False
        self._away: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._told: asyncio.Task[None] | None = None  # the latest news sent to the leader
        self._methods: dict[str, Callable[[Data], Awaitable[Data]]] = {
            "overview": self._overview, "presence": self._presence, "rep": self._rep,
            "conversation": self._conversation, "accept": self._accept,
            "decline": self._decline, "reply": self._reply, "note": self._note,
            "transfer": self._transfer, "hand_back": self._hand_back, "close": self._close,
            "queues_of": self._queues_of, "typing": self._typing, "away": self._go_away_now,
            "handover": self._handover, "held_message": self._held_message,
            "customer_typing": self._customer_typing, "directory": self._directory,
            "approvals": self._approvals, "decide": self._decide, "call_step": self._call_step,
            "approval_pending": self._approval_pending,
        }  # fmt: skip
        for name in self._methods:
            bus.serve(f"routing.{name}", self._serving(name))

    def _serving(self, name: str) -> Callable[[Data], Awaitable[Data]]:
        async def serve(data: Data) -> Data:
            if not self.leading:  # leadership moved on: the caller tries the new leader
                raise NotFoundError("this node does not route conversations now")
            return await self._methods[name](data)

        return serve

    async def _run(self, name: str, data: Data) -> Data:
        if self.leading:
            return await self._methods[name](data)
        return await self.bus.call(LEADER, f"routing.{name}", data, timeout_s=CALL_TIMEOUT_S)

    def register(self, name: str, method: Callable[[Data], Awaitable[Data]]) -> None:
        """Serve `method` as `routing.<name>` on the leader (routing/calls.py adds the
        methods of a call's transfer); `run` and `tell` reach it from any node."""
        self._methods[name] = method
        self.bus.serve(f"routing.{name}", self._serving(name))

    async def run(self, name: str, data: Data) -> Data:
        """Run a registered method on the leader (here while leading) and return its answer."""
        return await self._run(name, data)

    async def tell(self, name: str, data: Data) -> None:
        """Send news to a registered method on the leader without waiting on it (`_tell`)."""
        await self._tell(name, data)

    # ------------------------------------------------------- the public API

    async def overview(self, rep_id: int) -> dict[str, Any]:
        """`/me`: the rep, offers, held and waiting work, `seq`, and `approver`."""
        return await self._run("overview", {"rep_id": rep_id})

    async def directory(self, rep_id: int) -> dict[str, Any]:
        return await self._run("directory", {"rep_id": rep_id})

    async def approvals_for(self, rep_id: int, conversation_id: int | None = None) -> list[Data]:
        """What this rep may decide (everywhere, or what waits on one conversation)."""
        data = {"rep_id": rep_id, "conversation_id": conversation_id}
        return list((await self._run("approvals", data))["approvals"])

    async def decide(
        self, rep_id: int, conversation_id: int, approval_id: str, *, approve: bool
    ) -> dict[str, Any]:
        data = {"rep_id": rep_id, "conversation_id": conversation_id,
                "approval_id": approval_id, "approve": approve}  # fmt: skip
        return await self._run("decide", data)

    async def rep(self, rep_id: int) -> Rep:
        return Rep.model_validate(await self._run("rep", {"rep_id": rep_id}))

    async def set_presence(self, rep_id: int, presence: Presence) -> Rep:
        data = await self._run("presence", {"rep_id": rep_id, "status": presence.value})
        return Rep.model_validate(data)

    async def conversation(self, rep_id: int, conversation_id: int) -> dict[str, Any]:
        return await self._run(
            "conversation", {"rep_id": rep_id, "conversation_id": conversation_id}
        )

    async def accept(self, rep_id: int, offer_id: int) -> Conversation:
        data = await self._run("accept", {"rep_id": rep_id, "offer_id": offer_id})
        return Conversation.model_validate(data)

    async def decline(self, rep_id: int, offer_id: int) -> None:
        await self._run("decline", {"rep_id": rep_id, "offer_id": offer_id})

    async def reply(self, rep_id: int, conversation_id: int, text: str) -> Message:
        data = {"rep_id": rep_id, "conversation_id": conversation_id, "text": text}
        return Message.model_validate(await self._run("reply", data))

    async def note(self, rep_id: int, conversation_id: int, text: str) -> Message:
        data = {"rep_id": rep_id, "conversation_id": conversation_id, "text": text}
        return Message.model_validate(await self._run("note", data))

    async def transfer(
        self, rep_id: int, conversation_id: int, *, queue: str | None = None,
        to_rep: int | None = None, note: str = "",
    ) -> QueueEntry:  # fmt: skip
        data = {"rep_id": rep_id, "conversation_id": conversation_id, "queue": queue,
                "to_rep": to_rep, "note": note}  # fmt: skip
        return QueueEntry.model_validate(await self._run("transfer", data))

    async def hand_back(self, rep_id: int, conversation_id: int) -> Conversation:
        data = {"rep_id": rep_id, "conversation_id": conversation_id}
        return Conversation.model_validate(await self._run("hand_back", data))

    async def close(
        self, rep_id: int, conversation_id: int, disposition: str, note: str | None = None
    ) -> Conversation:
        data = {"rep_id": rep_id, "conversation_id": conversation_id,
                "disposition": disposition, "note": note}  # fmt: skip
        return Conversation.model_validate(await self._run("close", data))

    async def queues_of(self, rep_id: int) -> tuple[str, ...]:
        return tuple((await self._run("queues_of", {"rep_id": rep_id}))["queues"])

    async def typing(self, rep_id: int, conversation_id: int, active: bool) -> None:
        data = {"rep_id": rep_id, "conversation_id": conversation_id, "active": active}
        await self._run("typing", data)

    # -------------------------------------------------- the dispatcher's hooks

    async def handover(self, customer: Customer, conversation: Conversation) -> None:
        await self._run("handover", {"customer": _json(customer),
                                     "conversation": _json(conversation)})  # fmt: skip

    async def held_message(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        await self._run("held_message", {"customer": _json(customer),
                                         "conversation": _json(conversation),
                                         "message": _json(message)})  # fmt: skip

    async def customer_typing(self, identity: Identity, active: bool) -> None:
        await self._run("customer_typing", {"identity": identity.key,
                                            "verified": identity.verified.value,
                                            "active": active})  # fmt: skip

    async def turn(
        self, customer: Customer, conversation: Conversation, events: tuple[EventDraft, ...]
    ) -> None:
        """A dispatcher turn hook: an approval the agent asked for reaches its deciders
        (only such turns cross the bus). A leader that misses it (the bus failed) still
        has it in the audit log, read back by the next node to lead."""
        pending = [e.model_dump(mode="json") for e in events if e.kind == APPROVAL_PENDING]
        if pending:
            await self._tell("approval_pending", {"customer": _json(customer),
                                                  "conversation": _json(conversation),
                                                  "events": pending})  # fmt: skip

    async def call_step(self, conversation_id: int, kind: str, data: dict[str, Any]) -> None:
        """A phone channel transfer listener: the step, told on the node holding the call."""
        step = EventDraft(kind=kind, data=data).model_dump(mode="json")  # JSON-safe
        await self._tell("call_step", {"conversation_id": conversation_id, **step})

    async def _tell(self, name: str, data: Data) -> None:
        """News for the leader that the teller must not wait on (a call's transfer is
        answering Twilio; the conversation's next turn waits): handled at once on the
        leader, from elsewhere sent in the background, in the order told. A failure is
        logged: what it announces is in the store already."""
        if not self.leading:
            previous = self._told

            async def send() -> None:
                if previous is not None:
                    await asyncio.wait([previous])
                await self._run(name, data)

            self._told = self._spawn(send(), name)
            return
        try:
            await self._methods[name](data)
        except Exception as exc:
            log.warning("routing: %s failed: %s", name, exc)

    # ---------------------------------------------------------------- consoles

    def console_connected(self, rep_id: int) -> None:
        timer = self._away.pop(rep_id, None)
        if timer is not None:
            timer.cancel()
        self._spawn(self.bus.hold(_console_key(rep_id), +1))

    def console_disconnected(self, rep_id: int) -> None:
        """The rep's console on this node closed: away after the grace period, unless
        a console of theirs is open (here or on another node) by then."""
        self._spawn(self.bus.hold(_console_key(rep_id), -1))
        if self.hub.connected(rep_id) or rep_id in self._away:
            return
        self._away[rep_id] = asyncio.get_running_loop().call_later(
            self.away_after_s, self._away_due, rep_id
        )

    def _away_due(self, rep_id: int) -> None:
        self._away.pop(rep_id, None)
        if not self.hub.connected(rep_id):
            self._spawn(self._run("away", {"rep_id": rep_id}))

    def _spawn(self, coro: Awaitable[Any], what: str = "console bookkeeping") -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await coro
            except Exception as exc:  # a console's bookkeeping or news; logged, not fatal
                log.warning("routing: %s failed: %s", what, exc)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for timer in self._away.values():
            timer.cancel()
        self._away.clear()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------ served on the leader

    async def _overview(self, d: Data) -> Data:
        rep_id = int(d["rep_id"])
        overview = await self.views.overview(rep_id)
        return {**overview, "approver": self.approvals.is_approver(rep_id)}

    async def _directory(self, d: Data) -> Data:
        return self.views.directory(int(d["rep_id"]))

    async def _approvals(self, d: Data) -> Data:
        rep_id, cid = int(d["rep_id"]), d.get("conversation_id")
        if cid is None:
            return {"approvals": await self.approvals.listing(rep_id)}
        return {"approvals": await self.approvals.of_conversation(rep_id, int(cid))}

    async def _decide(self, d: Data) -> Data:
        rep_id, cid = int(d["rep_id"]), int(d["conversation_id"])
        return await self.approvals.decide(
            rep_id, cid, str(d["approval_id"]), approve=bool(d["approve"])
        )

    async def _rep(self, d: Data) -> Data:
        return _json(self.service.rep(int(d["rep_id"])))

    async def _presence(self, d: Data) -> Data:
        rep = await self.service.set_presence(int(d["rep_id"]), Presence(d["status"]))
        return _json(rep)

    async def _conversation(self, d: Data) -> Data:
        return await self.views.conversation(int(d["rep_id"]), int(d["conversation_id"]))

    async def _accept(self, d: Data) -> Data:
        return _json(await self.service.accept(int(d["rep_id"]), int(d["offer_id"])))

    async def _decline(self, d: Data) -> Data:
        await self.service.decline(int(d["rep_id"]), int(d["offer_id"]))
        return {}

    async def _reply(self, d: Data) -> Data:
        msg = await self.service.reply(int(d["rep_id"]), int(d["conversation_id"]), d["text"])
        return _json(msg)

    async def _note(self, d: Data) -> Data:
        msg = await self.service.note(int(d["rep_id"]), int(d["conversation_id"]), d["text"])
        return _json(msg)

    async def _transfer(self, d: Data) -> Data:
        entry = await self.service.transfer(
            int(d["rep_id"]), int(d["conversation_id"]), queue=d.get("queue"),
            to_rep=d.get("to_rep"), note=d.get("note") or "",
        )  # fmt: skip
        return _json(entry)

    async def _hand_back(self, d: Data) -> Data:
        return _json(await self.service.hand_back(int(d["rep_id"]), int(d["conversation_id"])))

    async def _close(self, d: Data) -> Data:
        conv = await self.service.close(int(d["rep_id"]), int(d["conversation_id"]),
                                        d["disposition"], d.get("note"))  # fmt: skip
        return _json(conv)

    async def _queues_of(self, d: Data) -> Data:
        return {"queues": list(self.service.queues_of(int(d["rep_id"])))}

    async def _typing(self, d: Data) -> Data:
        await self.service.typing(int(d["rep_id"]), int(d["conversation_id"]), bool(d["active"]))
        return {}

    async def _go_away_now(self, d: Data) -> Data:
        rep_id = int(d["rep_id"])
        if await self.bus.held(_console_key(rep_id)) > 0:
            return {}  # a console of theirs is open on some node
        if self.service.rep(rep_id).presence is Presence.AVAILABLE:
            await self.service.set_presence(rep_id, Presence.AWAY)
        return {}

    async def _handover(self, d: Data) -> Data:
        customer = Customer.model_validate(d["customer"])
        await self.intake.handover(customer, Conversation.model_validate(d["conversation"]))
        return {}

    async def _held_message(self, d: Data) -> Data:
        await self.intake.held_message(
            Customer.model_validate(d["customer"]),
            Conversation.model_validate(d["conversation"]),
            Message.model_validate(d["message"]),
        )
        return {}

    async def _customer_typing(self, d: Data) -> Data:
        identity = Identity.parse(d["identity"])
        await self.intake.typing(identity, bool(d["active"]))
        return {}

    async def _approval_pending(self, d: Data) -> Data:
        customer = Customer.model_validate(d["customer"])
        conversation = Conversation.model_validate(d["conversation"])
        events = tuple(EventDraft.model_validate(e) for e in d["events"])
        await self.approvals.on_turn(customer, conversation, events)
        return {}

    async def _call_step(self, d: Data) -> Data:
        await self.intake.call_step(int(d["conversation_id"]), str(d["kind"]), dict(d["data"]))
        return {}


def _json(model: Any) -> Data:
    data: Data = model.model_dump(mode="json")
    return data


__all__ = ["RoutingFront"]
