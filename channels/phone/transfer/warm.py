"""`WarmTransfers`: hands a live call to a rep through a Twilio conference.

When the agent transfers a call, the conversation is reserved for it in routing
(`TransferTargets.reserve`) and the caller hears the hold prompt; once it has
played, the transfer starts (`start`):

1. The spoken brief for the rep is rendered (`transfer_audio.spoken_brief`) and
   the caller's call is moved by a REST update into a conference where they
   hear wait music (this ends the call's Media Stream).
2. The first rep (`TransferTargets.next`: routing's best eligible rep with a
   phone, whose ringing phone is their offer; else a configured line) is rung by
   a REST call-create whose TwiML plays the brief from a signed URL; pressing 1
   makes them the conversation's holder (`TransferTargets.take`) and joins the
   conference. Their call's status callbacks, the `<Gather>`'s answer and the
   conference's events drive the state machine (`transfer_state`).
3. No answer, busy, failed, canceled, declined, or their offer ended in routing
   (`on_offer_closed`: declined in the console, withdrawn, expired): the next
   rep. Nobody left: the caller is moved out of the conference to a callback
   offer (1 asks for a callback; the conversation stays queued with its brief
   either way).

Every step is a `transfer.<state>` event in the conversation's log, told to the
rep console once stored (transfer_events.py). A callback asking for a move the
state machine lacks is logged and ignored: Twilio's retries and late callbacks
change nothing.
Transfers in progress live in memory, on the node that holds the caller's
stream: a restart forgets them (not their events).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from channels.phone.transfer import twiml
from channels.phone.transfer.audio import PROMPTS, SignedAudio, spoken_brief
from channels.phone.transfer.events import TransferEvents
from channels.phone.transfer.routing import CallRouting, RoutingTargets
from channels.phone.transfer.state import Transfer, TransferState, TransferTargets
from channels.phone.twilio.rest import TwilioCalls
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.models import Conversation, ConversationState, IdentityKind
from gateway.protocols import Store
from gateway.routing.models import OfferClosed
from gateway.settings import Settings

if TYPE_CHECKING:
    from channels.phone.call.phone_call import PhoneCall
    from channels.phone.channel import TransferListener

log = logging.getLogger("gateway.phone.transfer")

S = TransferState
PREFIX = "/twilio/transfer/{transfer_id}"
REP_STATUS_PATH = PREFIX + "/rep-status"
ANSWER_PATH = PREFIX + "/answer"
CONFERENCE_PATH = PREFIX + "/conference"
CALLBACK_PATH = PREFIX + "/callback"
HOLD_WAIT_S = 30.0  # longest wait for the hold prompt to be heard before moving the call
RECENT = 500  # finished transfers kept to recognise late callbacks
REP_FAILURES = frozenset({"no-answer", "busy", "failed", "canceled"})


class WarmTransfers:
    """Every warm transfer of this process; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        calls: TwilioCalls,
        audio: SignedAudio,
        targets: TransferTargets,
        settings: Settings,
        metrics: Metrics | None = None,
        node_id: str = "",
        listeners: list[TransferListener] | None = None,
    ) -> None:
        # Transfer ids start with the node that owns the transfer: Twilio's callbacks
        # may land on any node, which forwards them there (transfer_web.py).
        self.node_id = node_id
        self.events = TransferEvents(store, metrics, listeners if listeners is not None else [])
        self.store = store
        self.calls = calls
        self.audio = audio
        self.targets = targets
        self.settings = settings
        self._live: dict[str, Transfer] = {}
        self._recent: OrderedDict[str, Transfer] = OrderedDict()
        self._by_caller: dict[str, Transfer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, path: str, transfer: Transfer) -> str:
        return self.settings.public_url + path.format(transfer_id=transfer.id)

    def get(self, transfer_id: str) -> Transfer | None:
        return self._live.get(transfer_id) or self._recent.get(transfer_id)

    def of_caller(self, caller_sid: str) -> Transfer | None:
        return self._by_caller.get(caller_sid)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def attach_routing(self, routing: CallRouting | None) -> None:
        """Ring the reps routing offers a call to (None: detach, the lines alone)."""
        if not isinstance(self.targets, RoutingTargets):
            return
        old = self.targets.routing
        if old is not None and self.on_offer_closed in old.listeners:
            old.listeners.remove(self.on_offer_closed)
        self.targets.routing = routing
        if routing is not None:
            routing.listeners.append(self.on_offer_closed)

    # ---------------------------------------------------------------- start

    async def hand_over(
        self, call: PhoneCall, conversation: Conversation, prompt: asyncio.Task[Any] | None
    ) -> None:
        """The agent transferred `call`: reserve the conversation for it (before the
        dispatcher queues it, so no console takes it meanwhile), and start once the
        hold prompt has been heard."""
        await self.targets.reserve(conversation.id)
        task = asyncio.ensure_future(self._after_prompt(call, conversation, prompt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_prompt(
        self, call: PhoneCall, conversation: Conversation, prompt: asyncio.Task[Any] | None
    ) -> None:
        try:
            async with asyncio.timeout(HOLD_WAIT_S):
                if prompt is not None:
                    await asyncio.shield(prompt)
                await call.player.wait_idle()
        except TimeoutError:
            log.warning("call %s: the hold prompt was not heard in time", call.call_sid)
        except Exception as exc:  # the prompt failed: transfer the caller all the same
            log.warning("call %s: cannot play the hold prompt: %r", call.call_sid, exc)
        if call.info.ended is not None:
            log.info("call %s ended before its transfer started", call.call_sid)
            await self.targets.done(conversation.id, None)
            return
        try:
            await self.start(call.call_sid, conversation.id, call=call)
        except GatewayError as exc:
            log.error("call %s: the transfer failed: %s", call.call_sid, exc)
        except Exception:
            log.exception("call %s: the transfer failed", call.call_sid)

    async def start(
        self,
        caller_sid: str,
        conversation_id: int,
        *,
        call: PhoneCall | None = None,
        caller_number: str | None = None,
    ) -> Transfer:
        """Transfer the live call `caller_sid` of the (queued) conversation; returns the
        transfer once the first rep rings (or what stopped it). Once per call."""
        existing = self._by_caller.get(caller_sid)
        if existing is not None:
            log.info("call %s is already being transferred (%s)", caller_sid, existing.id)
            return existing
        conversation = await self.store.get_conversation(conversation_id)
        customer = await self.store.get_customer(conversation.customer_id)
        if caller_number is None:
            phones = [i.value for i in customer.identities if i.kind is IdentityKind.PHONE]
            caller_number = next((p for p in phones if p.startswith("+")), None)
        transfer = Transfer(
            id=f"{self.node_id}.{uuid.uuid4().hex[:16]}" if self.node_id
            else uuid.uuid4().hex[:16], caller_sid=caller_sid, conversation_id=conversation.id,
            queue=conversation.queue or "general", caller_number=caller_number,
        )  # fmt: skip
        self._live[transfer.id] = self._by_caller[caller_sid] = transfer
        async with transfer.lock:
            reps = await self.targets.open(transfer)
            text = spoken_brief(customer, conversation)
            await self.events.step(transfer, S.REQUESTED, queue=transfer.queue, brief_text=text,
                                   reps=[rep.rep_id for rep in reps])  # fmt: skip
            if not reps:
                await self._offer_callback(transfer)
                return transfer
            try:
                await self.audio.render(transfer.brief_audio, text)
                hold = twiml.hold_in_conference(
                    transfer.conference,
                    status_callback=self.url(CONFERENCE_PATH, transfer),
                    wait_url=self.settings.transfer_hold_music_url,
                )
                if call is not None:
                    call.info.moved_to = f"conference {transfer.conference}"
                moved = await self.calls.redirect(caller_sid, hold)
            except GatewayError as exc:
                if call is not None:
                    call.info.moved_to = None
                await self._finish(transfer, S.FAILED, reason=str(exc))
                return transfer
            if not moved:
                await self._finish(transfer, S.ABANDONED, reason="the caller hung up")
                return transfer
            await self._ring_next(transfer)
        return transfer

    # ------------------------------------------------------------ callbacks

    async def on_rep_status(self, transfer_id: str, rep_sid: str, status: str) -> None:
        """A status callback of a rep's call."""
        transfer = self.get(transfer_id)
        if transfer is None:
            log.info("status %s for unknown transfer %s ignored", status, transfer_id)
            return
        async with transfer.lock:
            if rep_sid != transfer.rep_sid:
                self._ignore(transfer, f"status {status} of an earlier rep call {rep_sid}")
            elif status in {"queued", "initiated", "ringing"}:
                if transfer.state is not S.RINGING:
                    self._ignore(transfer, f"rep call {status}")
            elif status == "in-progress":
                if transfer.move(S.BRIEFING):
                    await self.events.step(transfer, S.BRIEFING)
                else:
                    self._ignore(transfer, "rep answered")
            elif status in REP_FAILURES or status == "completed":
                await self._rep_gone(transfer, status)
            else:
                self._ignore(transfer, f"unknown rep call status {status!r}")

    async def on_answer(self, transfer_id: str, rep_sid: str, digits: str) -> str:
        """The rep's `<Gather>` ended (a key, or none): the TwiML for their call."""
        transfer = self.get(transfer_id)
        if transfer is None or rep_sid != transfer.rep_sid:
            log.info("an answer for transfer %s from call %s ignored", transfer_id, rep_sid)
            return twiml.hang_up()
        async with transfer.lock:
            if transfer.state is S.CONNECTED:  # Twilio retried the action: same answer
                return twiml.rep_join(transfer.conference)
            if transfer.state not in (S.RINGING, S.BRIEFING):
                self._ignore(transfer, f"rep pressed {digits!r}")
                return twiml.hang_up()
            if digits != twiml.ACCEPT_DIGIT:
                await self._rep_failed(transfer, "declined")
                return twiml.hang_up()
            if not await self.targets.take(transfer):  # their offer ended meanwhile
                await self._rep_failed(transfer, "withdrawn", detail="no longer theirs to take")
                return twiml.hang_up()
            if transfer.state is S.RINGING:  # the `answered` callback is still on its way
                transfer.move(S.BRIEFING)
                await self.events.step(transfer, S.BRIEFING)
            transfer.move(S.CONNECTED)
            await self.events.step(
                transfer, S.CONNECTED, conversation_state=ConversationState.WITH_REP
            )
            self.audio.discard(transfer.brief_audio)
            return twiml.rep_join(transfer.conference)

    async def on_conference(self, transfer_id: str, event: str, call_sid: str) -> None:
        """An event of the transfer's conference (`participant-leave`, `conference-end`...)."""
        transfer = self.get(transfer_id)
        if transfer is None:
            return
        if event == "participant-leave" and call_sid == transfer.caller_sid:
            await self.on_caller_gone(transfer.caller_sid, "left the conference")
        elif event == "conference-end":
            async with transfer.lock:
                if transfer.state is S.CONNECTED:
                    await self._finish(transfer, S.COMPLETED, reason="the conference ended")

    async def on_caller_gone(self, caller_sid: str, why: str) -> None:
        """The caller's call is over (a conference leave, or their own status callback)."""
        transfer = self._by_caller.get(caller_sid)
        if transfer is None:
            return
        async with transfer.lock:
            if transfer.state is S.CONNECTED:
                await self._finish(transfer, S.COMPLETED, reason=f"the caller {why}")
            elif transfer.state in (S.REQUESTED, S.RINGING, S.BRIEFING):
                rep_sid = transfer.rep_sid
                await self._finish(transfer, S.ABANDONED, reason=f"the caller {why}")
                if rep_sid is not None:  # stop ringing (or briefing) the rep
                    try:
                        await self.calls.complete(rep_sid)
                    except GatewayError as exc:
                        log.warning("transfer %s: cannot end the rep's call: %s", transfer.id, exc)

    async def on_callback_answer(self, transfer_id: str, caller_sid: str, digits: str) -> str:
        """The caller answered the callback offer: the TwiML to end their call with."""
        transfer = self.get(transfer_id)
        if transfer is None or caller_sid != transfer.caller_sid:
            return twiml.hang_up()
        async with transfer.lock:
            if transfer.state is not S.CALLBACK_OFFERED:
                self._ignore(transfer, "callback answer")
                return twiml.hang_up()
            if transfer.callback is None:  # else Twilio retried: the same answer again
                transfer.callback = "requested" if digits == twiml.ACCEPT_DIGIT else "declined"
                await self.events.record(transfer, f"transfer.callback_{transfer.callback}",
                                         {"phone": transfer.caller_number})  # fmt: skip
            name = "callback-thanks" if transfer.callback == "requested" else "callback-declined"
            try:
                await self.audio.prompt(name, PROMPTS[name])
            except GatewayError as exc:
                log.warning("transfer %s: cannot render %s: %s", transfer.id, name, exc)
                return twiml.hang_up()
            return twiml.play_and_hang_up(self.audio.url(name))

    # ---------------------------------------------------------------- steps

    async def _rep_gone(self, transfer: Transfer, status: str) -> None:
        if transfer.state is S.CONNECTED and status == "completed":
            await self._finish(transfer, S.COMPLETED, reason="the rep hung up")
        elif transfer.state in (S.RINGING, S.BRIEFING):
            # `completed` before accepting: they hung up during the brief.
            await self._rep_failed(transfer, "declined" if status == "completed" else status)
        else:
            self._ignore(transfer, f"rep call {status}")

    async def on_offer_closed(self, news: OfferClosed) -> None:
        """Routing ended the offer the current rep's ringing phone stands for (they
        declined it in the console, left `available`, or it ran out): stop ringing
        them and ring the next rep."""
        transfer = self._live.get(news.transfer_id)
        if transfer is None:
            return
        async with transfer.lock:
            rep = transfer.rep
            current = rep is not None and rep.offer_id == news.offer_id
            if not current or transfer.state not in (S.RINGING, S.BRIEFING):
                self._ignore(transfer, f"offer {news.offer_id} {news.status.value}")
                return
            if transfer.rep_sid is not None:
                try:
                    await self.calls.complete(transfer.rep_sid)
                except GatewayError as exc:
                    log.warning("transfer %s: cannot end the rep's call: %s", transfer.id, exc)
            await self._rep_failed(
                transfer, news.status.value, detail="their offer ended in routing"
            )

    async def _rep_failed(
        self, transfer: Transfer, outcome: str, detail: str | None = None
    ) -> None:
        data = {"outcome": outcome} if detail is None else {"outcome": outcome, "detail": detail}
        await self.events.record(transfer, "transfer.rep_failed", data)
        transfer.rep_sid = None
        await self._ring_next(transfer, outcome)

    async def _ring_next(self, transfer: Transfer, outcome: str | None = None) -> None:
        """Ring the next rep; with none left, offer the caller a callback."""
        settings = self.settings
        while (rep := await self.targets.next(transfer, outcome)) is not None:
            transfer.rep = rep
            transfer.tried.append(rep)
            brief = twiml.rep_brief(
                self.audio.url(transfer.brief_audio),
                answer_url=self.url(ANSWER_PATH, transfer),
                timeout_s=settings.transfer_accept_timeout_s,
            )
            try:
                sid = await self.calls.dial(
                    rep.phone, settings.transfer_caller_id, brief,
                    status_callback=self.url(REP_STATUS_PATH, transfer),
                    timeout_s=settings.transfer_ring_timeout_s,
                )  # fmt: skip
            except GatewayError as exc:
                outcome = "failed"
                await self.events.record(transfer, "transfer.rep_failed",
                                         {"outcome": outcome, "detail": str(exc)})  # fmt: skip
                continue
            transfer.rep_sid = sid
            transfer.move(S.RINGING)
            await self.events.step(transfer, S.RINGING)
            return
        await self._offer_callback(transfer)

    async def _offer_callback(self, transfer: Transfer) -> None:
        try:
            await self.audio.prompt("callback-offer", PROMPTS["callback-offer"])
            offer = twiml.offer(
                self.audio.url("callback-offer"),
                action_url=self.url(CALLBACK_PATH, transfer),
                timeout_s=10,
            )
            moved = await self.calls.redirect(transfer.caller_sid, offer)
        except GatewayError as exc:
            await self._finish(transfer, S.FAILED, reason=f"cannot offer a callback: {exc}")
            return
        if moved:
            await self._finish(transfer, S.CALLBACK_OFFERED, reason="no rep took the call")
        else:
            await self._finish(transfer, S.ABANDONED, reason="the caller hung up")

    async def _finish(self, transfer: Transfer, state: TransferState, *, reason: str) -> None:
        if not transfer.move(state):
            self._ignore(transfer, f"finish as {state}")
            return
        data: dict[str, Any] = {"reason": reason}
        if transfer.connected_at is not None:
            data["talk_s"] = round(time.monotonic() - transfer.connected_at, 1)
        await self.events.step(transfer, state, **data)
        await self.targets.done(transfer.conversation_id, transfer)
        self.audio.discard(transfer.brief_audio)
        self._live.pop(transfer.id, None)
        self._recent[transfer.id] = transfer
        while len(self._recent) > RECENT:
            old = self._recent.popitem(last=False)[1]
            if self._by_caller.get(old.caller_sid) is old:
                del self._by_caller[old.caller_sid]

    def _ignore(self, transfer: Transfer, what: str) -> None:
        # Twilio retries and reorders callbacks: a move the state machine lacks is noise.
        log.info("transfer %s (%s): ignored %s", transfer.id, transfer.state, what)


__all__ = ["WarmTransfers"]
