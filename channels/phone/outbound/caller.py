"""`OutboundCalls`: the outbound call of proactive outreach (gateway.protocols.OutboundCaller).

`place` creates the call through Twilio's REST API from the configured number,
with answering-machine detection (`MachineDetection=DetectMessageEnd`: Twilio
waits for a voicemail greeting to end before it asks for our TwiML) and a
status callback. Both URLs carry a token naming the outreach, its
conversation and customer, signed with the gateway's secret key; Twilio signs
each request over the whole URL too, so neither the signature nor the token
can be forged or moved to another outreach.

- Answered by a person (`AnsweredBy=human`, or `unknown`: a person is never
  played a voicemail): `<Connect><Stream>`, as for an inbound call, whose
  one-time stream token (stream_token.py) also carries the outreach. The call
  then starts with the agent saying the opening (PhoneCall._begin_outbound)
  and goes on like an inbound call. Outcome `human`.
- Answered by a machine (`machine_*`, `fax`): `<Play>` the voicemail, spoken
  by our own voice (espeak-ng, rendered when the call is placed) from a signed,
  expiring URL, then `<Hangup>`. The voicemail is stored as an agent message.
  Outcome `machine`.
- The status callback's `no-answer`, `busy`, `failed` (`canceled`: `failed`)
  are outcomes of their own; `completed` only settles a call nothing settled.

Each outcome is settled once: an `outreach.call` event (outcome, call SID, what
Twilio's detection said) in the conversation, then `outcome_hook(outreach_id,
outcome)`. Duplicate and late callbacks change nothing. A placed call is
remembered in memory and as an `outreach.call_placed` event (with its texts),
so a callback reaching a node that did not place it, or after a restart, still
finds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from channels.phone.call.playback import Chunk
from channels.phone.call.voice import to_mulaw
from channels.phone.services import Opening
from channels.phone.transfer import twiml as call_twiml
from channels.phone.transfer.audio import SignedAudio
from channels.phone.twilio import stream_token, twiml
from channels.phone.twilio.rest import TwilioCalls
from channels.phone.twilio.stream_token import OutreachLeg, StreamTokens
from channels.speech.tts import split_sentences
from gateway.errors import AuthError, ChannelError, ConflictError, GatewayError, StoreError
from gateway.models import MAX_TEXT_CHARS, ChannelKind, DeliveryStatus
from gateway.phone_numbers import to_e164
from gateway.protocols import (
    OUTBOUND_CALL_OUTCOMES,
    EventDraft,
    OutboundDraft,
    Store,
    Synthesizer,
    TurnRecord,
    TurnStored,
)
from gateway.secrets import derive_key
from gateway.settings import Settings

log = logging.getLogger("gateway.phone.outbound")

ANSWER_PATH = "/twilio/outbound/answer"
STATUS_PATH = "/twilio/outbound/status"
AUDIO_PATH = "/twilio/outbound/audio/{token}.wav"
MEDIA_PATH = "/twilio/media"  # the inbound calls' Media Stream (transport.py)
TOKEN_QUERY = "o"
OUTCOMES = OUTBOUND_CALL_OUTCOMES
MACHINE = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
FAILED = {"no-answer": "no_answer", "busy": "busy", "failed": "failed", "canceled": "failed"}
PLACED_EVENT = "outreach.call_placed"
OUTCOME_EVENT = "outreach.call"
RENDER_WAIT_S = 10.0  # Twilio waits 15 s for our TwiML
RECENT = 500  # settled calls kept to recognise late callbacks

OutcomeHook = Callable[[str, str], Awaitable[None]]


@dataclass
class PlacedCall:
    """One outbound call and what it says."""

    leg: OutreachLeg
    to: str
    opening: str
    voicemail: str
    call_sid: str = ""
    outcome: str | None = None
    first: asyncio.Task[Chunk] | None = None  # the opening's first sentence, rendering

    @property
    def audio_name(self) -> str:
        return f"vm-{self.call_sid}"


class OutboundCalls:
    """Places outreach calls and follows them; see the module docstring. Off (place
    raises ChannelError) until `attach` gives it the store, REST client and voice."""

    def __init__(
        self, settings: Settings, secret: bytes, stream_tokens: StreamTokens, caller_id: str
    ) -> None:
        self.outcome_hook: OutcomeHook | None = None
        self.settings = settings
        self.caller_id = caller_id
        self.stream_tokens = stream_tokens
        self.off_reason: str | None = "the phone channel is starting"
        self.audio: SignedAudio | None = None
        self._signer = URLSafeSerializer(derive_key(secret, "outbound-call"), salt="outreach")
        self._store: Store | None = None
        self._api: TwilioCalls | None = None
        self._synth: Synthesizer | None = None
        self._calls: OrderedDict[str, PlacedCall] = OrderedDict()  # by call SID
        self._renders: dict[str, asyncio.Task[Any]] = {}
        self._lock = asyncio.Lock()

    def attach(
        self, store: Store, api: TwilioCalls, audio: SignedAudio, synth: Synthesizer
    ) -> None:
        self._store, self._api, self.audio, self._synth = store, api, audio, synth
        self.off_reason = None

    async def close(self, reason: str = "the gateway is shutting down") -> None:
        self._api, self.off_reason = None, reason
        for placed in self._calls.values():
            if placed.first is not None:
                placed.first.cancel()
        for task in self._renders.values():
            task.cancel()
        await asyncio.gather(*self._renders.values(), return_exceptions=True)
        self._renders.clear()

    # ------------------------------------------------------------------ place

    async def place(
        self, *, to: str, conversation_id: int, customer_id: int, outreach_id: str,
        opening: str, voicemail: str,
    ) -> str:  # fmt: skip
        """Call `to` for outreach `outreach_id`; the call SID once Twilio has taken it.
        ChannelError when outbound calls are off, the number is no phone number, or
        Twilio refuses the call (or cannot be reached)."""
        api, store = self._api, self._store
        if api is None or store is None:
            raise ChannelError(f"outbound calls are off: {self.off_reason}")
        number = to_e164(to)
        if number is None:
            raise ChannelError(f"cannot call {to!r}: not a phone number")
        if not opening.strip():
            raise ChannelError(f"outreach {outreach_id}: a call needs an opening to say")
        if max(len(opening), len(voicemail)) > MAX_TEXT_CHARS:
            raise ChannelError(f"outreach {outreach_id}: opening or voicemail over "
                               f"{MAX_TEXT_CHARS} characters")  # fmt: skip
        leg = OutreachLeg(outreach_id, conversation_id, customer_id)
        query = f"?{TOKEN_QUERY}={self._token(leg)}"
        public = self.settings.public_url
        sid = await api.call_out(
            number, self.caller_id, url=public + ANSWER_PATH + query,
            status_callback=public + STATUS_PATH + query,
            timeout_s=self.settings.outbound_ring_timeout_s,
        )  # fmt: skip
        placed = PlacedCall(leg, number, opening.strip(), voicemail.strip(), call_sid=sid)
        self._remember(placed)
        # Rendered while the phone rings: a person hears the opening at once, a machine's
        # webhook is answered at once.
        placed.first = self._first_sentence(placed.opening)
        if placed.voicemail:
            self._render(placed)
        data = {"outreach_id": outreach_id, "call_sid": sid, "to": number,
                "opening": placed.opening, "voicemail": placed.voicemail}  # fmt: skip
        try:
            await record(store, conversation_id, (), (EventDraft(kind=PLACED_EVENT, data=data),))
        except StoreError as exc:  # the call is placed: this node still knows it
            log.warning("outreach %s: cannot record call %s: %s", outreach_id, sid, exc)
        log.info("outreach %s: calling %s (call %s)", outreach_id, number, sid)
        return sid

    # -------------------------------------------------------------- callbacks

    def leg(self, token: str) -> OutreachLeg:
        """The outreach a callback URL's token names; AuthError if it is not ours."""
        try:
            outreach_id, conversation_id, customer_id = self._signer.loads(token)
            return OutreachLeg(str(outreach_id), int(conversation_id), int(customer_id))
        except (BadSignature, ValueError, TypeError) as exc:
            raise AuthError("the outbound call's URL token is not this gateway's") from exc

    async def answered(self, leg: OutreachLeg, call_sid: str, answered_by: str) -> str:
        """The TwiML for an answered call, from what Twilio's detection says."""
        placed = await self._find(leg, call_sid)
        if placed is None:
            log.warning("outreach %s: answered call %s is unknown", leg.outreach_id, call_sid)
            return call_twiml.hang_up()
        if answered_by in MACHINE:
            audio_url = await self._voicemail_url(placed)
            said = placed.voicemail if audio_url else ""
            await self._settle(placed, "machine", answered_by, voicemail=said)
            return call_twiml.play_and_hang_up(audio_url) if audio_url else call_twiml.hang_up()
        await self._settle(placed, "human", answered_by)
        token = self.stream_tokens.issue(call_sid, placed.to, placed.leg)
        parameters = {"callSid": call_sid, stream_token.PARAMETER: token}
        return twiml.connect_stream(self.settings.public_ws_base + MEDIA_PATH, parameters)

    async def status(self, leg: OutreachLeg, call_sid: str, status: str, answered_by: str) -> None:
        """A status callback: a failed call's outcome; a finished call is forgotten."""
        if status in FAILED:
            outcome = FAILED[status]
        elif status == "completed":  # answered: settled by the answer webhook, normally
            outcome = "machine" if answered_by in MACHINE else "failed"
            if answered_by in ("human", "unknown"):
                outcome = "human"
        else:
            return  # initiated, ringing, in-progress
        placed = await self._find(leg, call_sid)
        if placed is None:
            log.info("outreach %s: status of unknown call %s", leg.outreach_id, call_sid)
            return
        await self._settle(placed, outcome, answered_by)
        if placed.first is not None:  # never answered: its opening is not needed
            placed.first.cancel()
            placed.first = None
        if self.audio is not None:  # the call is over: its voicemail has been played
            self.audio.discard(placed.audio_name)

    async def opening(self, leg: OutreachLeg, call_sid: str) -> Opening | None:
        """What the agent says first on the answered call (channels.phone.services.Openings),
        with its first sentence when it was rendered here."""
        placed = await self._find(leg, call_sid)
        if placed is None:
            return None
        ready: tuple[Chunk, ...] = ()
        task, placed.first = placed.first, None  # said once: a second stream renders anew
        if task is not None and not task.cancelled():
            try:
                ready = (await task,)
            except GatewayError as exc:  # synthesized as the call goes, then
                log.warning("call %s: the opening was not rendered ahead: %s", call_sid, exc)
        return Opening(placed.opening, ready)

    def _first_sentence(self, text: str) -> asyncio.Task[Chunk] | None:
        synth = self._synth
        sentences = split_sentences(text)
        if synth is None or not sentences:
            return None

        async def render() -> Chunk:
            speech = await synth.synthesize(sentences[0])
            return Chunk(text=sentences[0], mulaw=await asyncio.to_thread(to_mulaw, speech))

        task = asyncio.ensure_future(render())
        task.add_done_callback(_retrieved)
        return task

    # ---------------------------------------------------------------- helpers

    def _remember(self, placed: PlacedCall) -> None:
        self._calls[placed.call_sid] = placed
        self._calls.move_to_end(placed.call_sid)
        while len(self._calls) > RECENT:
            self._calls.popitem(last=False)

    async def _find(self, leg: OutreachLeg, call_sid: str) -> PlacedCall | None:
        """The call placed for `leg`: in memory, else from its conversation's events (a
        callback on another node, or after a restart)."""
        placed = self._calls.get(call_sid)
        if placed is not None:
            return placed if placed.leg == leg else None
        if self._store is None:
            return None
        try:
            events = await self._store.events(leg.conversation_id)
        except GatewayError as exc:
            log.warning("outreach %s: cannot read its events: %s", leg.outreach_id, exc)
            return None
        for event in events:
            data = event.data
            if data.get("call_sid") != call_sid or data.get("outreach_id") != leg.outreach_id:
                continue
            if event.kind == PLACED_EVENT:
                placed = PlacedCall(leg, str(data.get("to", "")), str(data.get("opening", "")),
                                    str(data.get("voicemail", "")), call_sid=call_sid)  # fmt: skip
            elif event.kind == OUTCOME_EVENT and placed is not None:
                placed.outcome = str(data.get("outcome"))
        if placed is not None:
            self._remember(placed)
        return placed

    def _render(self, placed: PlacedCall) -> asyncio.Task[Any] | None:
        audio = self.audio
        if audio is None:
            return None
        task = self._renders.get(placed.call_sid)
        if task is None:
            task = asyncio.ensure_future(audio.render(placed.audio_name, placed.voicemail))
            self._renders[placed.call_sid] = task
            task.add_done_callback(lambda done: self._rendered(placed.call_sid, done))
        return task

    def _rendered(self, call_sid: str, task: asyncio.Task[Any]) -> None:
        self._renders.pop(call_sid, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("call %s: cannot render its voicemail: %r", call_sid, exc)

    async def _voicemail_url(self, placed: PlacedCall) -> str | None:
        """The signed URL of the rendered voicemail (rendered now if it is not yet);
        None when there is none to play."""
        audio = self.audio
        if audio is None or not placed.voicemail:
            return None
        if not audio.path(placed.audio_name).is_file():
            task = self._render(placed)
            try:
                async with asyncio.timeout(RENDER_WAIT_S):
                    if task is not None:
                        await asyncio.shield(task)
            except (GatewayError, TimeoutError) as exc:
                log.warning("call %s: no voicemail audio: %r", placed.call_sid, exc)
                return None
        # The outreach token rides along: a node Twilio's GET reaches without the file
        # finds the call (and its text) with it, and renders it too.
        return f"{audio.url(placed.audio_name)}?{TOKEN_QUERY}={self._token(placed.leg)}"

    async def voicemail_file(self, name: str, leg: OutreachLeg) -> Path | None:
        """The voicemail audio `name` of a call of `leg`, rendered here if another node
        rendered it (None when no such call or voicemail is known)."""
        audio = self.audio
        call_sid = name.removeprefix("vm-")
        if audio is None or not name.startswith("vm-"):
            return None
        placed = await self._find(leg, call_sid)
        if placed is None or not placed.voicemail:
            return None
        path = audio.path(name)
        if not path.is_file():
            task = self._render(placed)
            if task is not None:
                async with asyncio.timeout(RENDER_WAIT_S):
                    await asyncio.shield(task)
        return path if path.is_file() else None

    def _token(self, leg: OutreachLeg) -> str:
        return str(self._signer.dumps([leg.outreach_id, leg.conversation_id, leg.customer_id]))

    async def _stored_outcome(self, placed: PlacedCall) -> str | None:
        if self._store is None:
            return None
        try:
            events = await self._store.events(placed.leg.conversation_id)
        except GatewayError as exc:
            log.warning("call %s: cannot read its events: %s", placed.call_sid, exc)
            return None
        for event in events:
            if event.kind == OUTCOME_EVENT and event.data.get("call_sid") == placed.call_sid:
                return str(event.data.get("outcome"))
        return None

    async def _settle(
        self, placed: PlacedCall, outcome: str, answered_by: str, *, voicemail: str = ""
    ) -> None:
        """Record the call's outcome once, then tell the hook."""
        async with self._lock:
            if placed.outcome is None:  # settled by another node (a callback it took)?
                placed.outcome = await self._stored_outcome(placed)
            if placed.outcome is not None:
                log.info("call %s: %s after its outcome %s: ignored", placed.call_sid, outcome,
                         placed.outcome)  # fmt: skip
                return
            placed.outcome = outcome
            data = {"outreach_id": placed.leg.outreach_id, "call_sid": placed.call_sid,
                    "outcome": outcome, "answered_by": answered_by}  # fmt: skip
            said = OutboundDraft(text=voicemail, channel=ChannelKind.PHONE)
            outbound = (said,) if voicemail else ()
            try:
                assert self._store is not None
                stored = await record(self._store, placed.leg.conversation_id, outbound,
                                      (EventDraft(kind=OUTCOME_EVENT, data=data),))  # fmt: skip
                for message in stored.messages:  # played by Twilio, not sent by the outbox
                    await self._store.set_delivery(message.id, DeliveryStatus.SENT,
                                                   external_id=placed.call_sid)  # fmt: skip
            except GatewayError as exc:
                log.warning("call %s: cannot record its outcome %s: %s", placed.call_sid,
                            outcome, exc)  # fmt: skip
        log.info("outreach %s: call %s %s", placed.leg.outreach_id, placed.call_sid, outcome)
        hook = self.outcome_hook
        if hook is not None:
            try:
                await hook(placed.leg.outreach_id, outcome)
            except Exception:  # the outcome is stored; the hook's failure is its own
                log.exception("outreach %s: the outcome hook failed", placed.leg.outreach_id)


def _retrieved(task: asyncio.Task[Any]) -> None:
    # A render nobody awaits (the call was never answered) fails quietly.
    if not task.cancelled():
        task.exception()


async def record(
    store: Store,
    conversation_id: int,
    outbound: tuple[OutboundDraft, ...],
    events: tuple[EventDraft, ...],
) -> TurnStored:
    """Store messages and events in a conversation, retrying when a turn moved it on."""
    for attempt in range(3):
        version = (await store.get_conversation(conversation_id)).version
        turn = TurnRecord(conversation_id=conversation_id, expected_version=version,
                          outbound=outbound, events=events)  # fmt: skip
        try:
            return await store.record_turn(turn)
        except ConflictError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


__all__ = [
    "ANSWER_PATH", "AUDIO_PATH", "MACHINE", "OUTCOMES", "STATUS_PATH", "TOKEN_QUERY",
    "OutboundCalls", "OutcomeHook", "PlacedCall", "record",
]  # fmt: skip
