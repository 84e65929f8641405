"""One phone call: the caller's audio and keys in, the agent's voice out.

`PhoneCall` is created by the transport on the stream's `start` message and
lives until the stream ends. It owns the call's endpointer (VAD), keypad and
`Player`; the speech model, synthesizer, prompts and VAD session are shared.

- Start: the caller is looked up (channels/phone/call/caller.py) and greeted by
  name when their account has one. An outbound call of outreach, answered by a
  person, joins the outreach's conversation and starts with the agent saying
  the outreach's opening instead (channels/phone/outbound/).
- Audio: every 20 ms frame goes through the endpointer inline (~0.1 ms). An
  ended utterance is queued; one worker per call transcribes the queue in
  order (off the loop, in the shared bounded pool) and hands each non-empty
  transcript to the dispatcher with its timing and confidence. Keypad input
  joins the same queue, so the agent sees everything in the order it came.
- Early transcription (channels/phone/call/early.py): the speech a silence in
  progress will end is transcribed while the end-of-turn silence runs out; a
  transcript that reads as a finished turn ends the turn after `quick_end_ms`.
- Barge-in: while the agent's audio is queued or playing, caller speech that
  has lasted `barge_in_ms` (not a cough: the endpointer's `speech_ms` stops
  growing in silence) or any key press sends `clear`, drops the rest of the
  answer, and cuts each stored agent message to what the caller heard. A
  backchannel ("mm-hm") or a sound without words resumes the answer where it
  stopped instead (channels/phone/call/interruption.py).
- Every agent message spoken gets its voice timing stored once its last mark
  comes back (or when it is cut); the greeting, hold and goodbye prompts are
  stored as agent messages too (channels/phone/call/store.py).
- Hang-up (the agent's `Hangup`): wait until the goodbye has been heard (its
  last mark), then complete the call through the REST API and close the
  stream. A caller who speaks over the goodbye keeps the line.
- Latency: each spoken turn keeps a `TurnTiming` in `CallInfo.turns`
  (channels/phone/call/latency.py).
- Usage: the speech recognised and synthesised for the call is counted
  (channels/phone/call/meter.py) and stored with its `phone.call_ended`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any

from channels.phone.call.caller import first_name, identify
from channels.phone.call.early import EarlyTranscription
from channels.phone.call.interruption import Interruptions
from channels.phone.call.keypad import KeyInput, Keypad
from channels.phone.call.latency import TurnClock
from channels.phone.call.live import LiveAnswer
from channels.phone.call.meter import MeteredSynthesizer, MeteredTranscriber, SpeechMeter
from channels.phone.call.playback import Chunk, Played, Player, Utterance
from channels.phone.call.store import CallStore
from channels.phone.call.voice import chunks_of, speak
from channels.phone.outbound.session import outreach_session
from channels.phone.services import CallInfo, CallServices, TurnTiming
from channels.speech.stt import WhisperTranscriber
from channels.speech.vad import Endpointer, SpeechDiscarded, UtteranceEnded
from gateway.errors import GatewayError
from gateway.models import (
    MAX_TEXT_CHARS,
    ChannelKind,
    ConversationState,
    InboundMessage,
    Message,
    VoiceTiming,
)
from gateway.protocols import EventDraft, Ingested, Transcript

log = logging.getLogger("gateway.phone.call")

PHONE = ChannelKind.PHONE
HANGUP_WAIT_S = 60.0  # longest wait for the goodbye's mark before hanging up anyway
DRAIN_WAIT_S = 30.0  # longest wait for the last utterances once the stream has ended


class PhoneCall:
    """The session of one call; see the module docstring."""

    def __init__(
        self,
        services: CallServices,
        info: CallInfo,
        send: Callable[[str], Awaitable[None]],
        close_stream: Callable[[], Awaitable[Any]],
    ) -> None:
        self.services = services
        self.info = info
        self._close_stream = close_stream
        self._loop = asyncio.get_running_loop()
        self.origin = self._loop.time()  # call time 0: the stream's start
        self.endpointer = Endpointer(services.endpointer, vad=services.vad)
        self.meter = SpeechMeter()  # the call's speech usage, stored when it ends
        self.transcriber = MeteredTranscriber(services.transcriber, self.meter)
        self.synthesizer = MeteredSynthesizer(services.synthesizer, self.meter)
        self.keypad = Keypad()
        self.clock = TurnClock(info, self.now_ms, services.metrics)
        self.player = Player(
            info.stream_sid, send, origin=self.origin, on_played=self._played,
            on_started=self.clock.first_audio,
        )  # fmt: skip
        self.early = EarlyTranscription(
            self.endpointer, self.transcriber,
            quick_end_ms=services.quick_end_ms, metrics=services.metrics,
            judge=services.end_of_turn, owner=info.call_sid,
            spare=lambda: isinstance(stt := services.transcriber, WhisperTranscriber) and stt.idle,
        )  # fmt: skip
        self.stored = CallStore(services.store, info)
        self.interruptions = Interruptions(
            resume=self._resume, store=lambda played: self._spawn(self.stored.played(played))
        )
        self._inbox: asyncio.Queue[_Heard | KeyInput | None] = asyncio.Queue()
        self._live: dict[int, LiveAnswer] = {}  # streamed answers not stored yet
        self._live_ids = 0  # provisional message ids of streamed answers: -1, -2, ...
        self._worker = asyncio.create_task(self._work())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._key_timer: asyncio.TimerHandle | None = None
        self._hangup: asyncio.Task[None] | None = None
        self._inputs = 0
        self.barge_ins = 0

    @property
    def call_sid(self) -> str:
        return self.info.call_sid

    @property
    def customer_id(self) -> int | None:
        return self.info.customer.id if self.info.customer else None

    def now_ms(self) -> int:
        """Milliseconds since the stream started."""
        return round((self._loop.time() - self.origin) * 1000)

    # ---------------------------------------------------------------- start

    async def begin(self) -> None:
        """Find (or start) the caller's conversation, register, and greet them."""
        if self.info.outreach is not None:
            await self._begin_outbound()
            return
        store, identity = self.services.store, self.info.identity
        caller = await identify(store, self.services.accounts, identity)
        opened = await store.open_session(
            identity, PHONE, display_name=caller.name, account_ref=caller.ref
        )
        self.info.customer, self.info.conversation = opened.customer, opened.conversation
        self.services.registry.add(self)
        started = EventDraft(
            kind="phone.call_started",
            data={"call_sid": self.call_sid, "caller": self.info.caller,
                  "known": caller.known},
        )  # fmt: skip
        prompts = self.services.prompts
        if opened.conversation.state is not ConversationState.BOT:
            await self._say_prompt("hold", (started,))  # a person has (or will have) the case
            return
        first = first_name(opened.customer.display_name or caller.name)
        if first is None:
            await self._say_prompt("greeting", (started,))
            return
        hello = f"Hi {first}."
        text = f"{hello} {prompts.text('greeting')}"
        message = await self.stored.line(text, (started,))
        synth = self.synthesizer
        self._play(message, chunks_of(hello, prompts.chunk("greeting"), synth=synth))

    async def _begin_outbound(self) -> None:
        """An outbound call of outreach, answered by a person: the agent speaks first,
        with the outreach's opening (stored as heard: a barge-in cuts it like any
        answer), in the outreach's conversation; then the call goes on as any call."""
        leg = self.info.outreach
        assert leg is not None
        opened = await outreach_session(self.services.store, self.info)
        self.info.customer, self.info.conversation = opened.customer, opened.conversation
        self.services.registry.add(self)
        started = EventDraft(
            kind="phone.call_started",
            data={"call_sid": self.call_sid, "callee": self.info.caller,
                  "direction": "outbound", "outreach_id": leg.outreach_id},
        )  # fmt: skip
        opening = self.info.opening
        if opening is None or not opening.text.strip():  # unknown: greet as an inbound call
            log.warning("call %s: no opening for outreach %s", self.call_sid, leg.outreach_id)
            await self._say_prompt("greeting", (started,))
            return
        message = await self.stored.line(opening.text, (started,))
        # The first sentences were rendered while the phone rang: they play at once.
        chunks = chunks_of(*opening.ready, opening.rest(), synth=self.services.synthesizer)
        self._play(message, chunks)

    # --------------------------------------------------------- caller input

    async def on_audio(self, mulaw: bytes) -> None:
        """One media frame from the caller."""
        for event in self.endpointer.feed_mulaw(mulaw):
            if isinstance(event, UtteranceEnded):
                self._heard(event)
            elif isinstance(event, SpeechDiscarded) and self.interruptions.open:
                self.interruptions.settle(None)  # too short to be words: resume the answer
            # SpeechStarted: barge-in watches speech_ms instead.
        self.early.update(ended=self.info.ended is not None)
        if self.early.complete():
            for event in self.endpointer.end_now():
                if isinstance(event, UtteranceEnded):
                    self._heard(event)
        if self.player.active and self.endpointer.speech_ms >= self.services.barge_in_ms:
            await self._barge_in("speech")

    async def on_key(self, key: str) -> None:
        """The caller pressed a key."""
        if self.player.active:
            await self._barge_in("keypad")
        done = self.keypad.press(key, self.now_ms())
        if done is not None:
            self._inbox.put_nowait(done)
        self._arm_keypad()

    def on_mark(self, name: str) -> None:
        self.player.on_mark(name)

    async def _barge_in(self, cause: str) -> None:
        self.barge_ins += 1
        if cause == "speech":  # held until heard: see channels/phone/call/interruption.py
            self.interruptions.begin()
        cut = await self.player.interrupt()
        log.info("barge-in (%s) on call %s: %d message(s) cut", cause, self.call_sid, len(cut))

    def _arm_keypad(self) -> None:
        if self._key_timer is not None:
            self._key_timer.cancel()
            self._key_timer = None
        deadline = self.keypad.deadline_ms
        if deadline is not None:
            delay = max(0.0, (deadline - self.now_ms()) / 1000)
            self._key_timer = self._loop.call_later(delay, self._keypad_expired)

    def _keypad_expired(self) -> None:
        self._key_timer = None
        done = self.keypad.expire(self.now_ms())
        if done is not None and self.info.ended is None:
            self._inbox.put_nowait(done)
        self._arm_keypad()

    def _heard(self, utterance: UtteranceEnded) -> None:
        """An utterance has ended: queue it, with when its speech ended (the audio
        at `end_ms` arrived `position_ms - end_ms` before the frame just fed)."""
        behind = max(0, self.endpointer.position_ms - utterance.end_ms)
        turn = self.clock.heard(behind)
        self._inbox.put_nowait(_Heard(utterance, turn, self.early.take(utterance)))

    async def _work(self) -> None:
        """Transcribe and hand over the caller's input, strictly in order."""
        while (item := await self._inbox.get()) is not None:
            try:
                if isinstance(item, _Heard):
                    await self._utterance(item.utterance, item.turn, item.early)
                else:
                    await self._to_agent(item.text, "k", 1.0, VoiceTiming(
                        start_ms=item.start_ms, end_ms=item.end_ms))  # fmt: skip
            except GatewayError as exc:
                log.warning("caller input on call %s was lost: %s", self.call_sid, exc)
            except Exception:
                log.exception("caller input on call %s failed", self.call_sid)

    async def _utterance(
        self, utterance: UtteranceEnded, turn: TurnTiming, early: asyncio.Task[Transcript] | None
    ) -> None:
        if early is not None:
            self.early.count("used")
            turn.early_transcript = True
            transcript = await early
        else:
            transcript = await self.transcriber.transcribe(
                utterance.audio_float32(), owner=self.call_sid
            )
        self.clock.transcribed(turn)
        if self.interruptions.open and self.interruptions.settle(transcript):
            log.info("call %s: %r over the answer, which goes on", self.call_sid, transcript.text)
            return
        text = transcript.text.strip()
        if not text:
            log.info("call %s: %d ms of sound without words", self.call_sid, utterance.duration_ms)
            return
        timing = VoiceTiming(start_ms=utterance.start_ms, end_ms=utterance.end_ms)
        ingested = await self._to_agent(text, "u", transcript.confidence, timing)
        turn.message_id = ingested.message.id
        if ingested.conversation.state is ConversationState.BOT:  # else the agent stays silent
            self.clock.handed(turn)

    async def _to_agent(
        self, text: str, tag: str, confidence: float, timing: VoiceTiming
    ) -> Ingested:
        self._inputs += 1
        inbound = InboundMessage(
            channel=PHONE,
            identity=self.info.identity,
            text=text[:MAX_TEXT_CHARS],
            external_id=f"{self.call_sid}:{tag}{self._inputs}",
            confidence=min(1.0, max(0.0, round(confidence, 4))),
            timing=timing,
        )
        ingested = await self.services.dispatcher.handle(inbound)
        self.info.message_ids.append(ingested.message.id)
        return ingested

    # --------------------------------------------------------- agent output

    def speak(self, message: Message) -> None:
        """Say a stored agent (or rep) message; returns at once."""
        if self.info.ended is not None:
            return
        self.info.message_ids.append(message.id)
        self.clock.answer(message)
        self._play(message, speak(self.synthesizer, message.text))

    def live_answer(self, message: Message) -> LiveAnswer | None:
        """Speak the answer to the caller's `message` as it is written (channels/phone/
        live.py); None when the call is over."""
        if self.info.ended is not None:
            return None
        turn = self.clock.live_turn(message)
        self._live_ids -= 1
        live = LiveAnswer(
            self._live_ids, self.player, self.synthesizer,
            turn=turn, now_ms=self.now_ms, on_started=lambda t: self.clock.live_started(live, t),
            on_played=self._played, on_bound=self._live_bound,
        )  # fmt: skip
        self._live[live.id] = live
        return live

    def _live_bound(self, live: LiveAnswer, message: Message | None) -> None:
        self._live.pop(live.id, None)
        if message is not None:
            self.info.message_ids.append(message.id)
        self.clock.live_bound(live, message)

    def request_hangup(self, reason: str) -> None:
        """The agent ends the call once what it said has been heard."""
        if self.info.ended is None and self._hangup is None:
            self._hangup = self._spawn(self._hang_up(reason))

    def on_transfer(self) -> asyncio.Task[Any] | None:
        """Handed to a person: tell the caller to hold. The task ends once the prompt
        is queued to play (None when the call is over)."""
        self.clock.clear()  # the agent answers nothing more
        if self.info.ended is None:
            return self._spawn(self._say_prompt("hold"))
        return None

    def _play(self, message: Message, chunks: AsyncGenerator[Chunk, None]) -> None:
        self.player.enqueue(Utterance(message_id=message.id, text=message.text, chunks=chunks))

    async def _say_prompt(self, name: str, events: Iterable[EventDraft] = ()) -> None:
        chunk = self.services.prompts.chunk(name)
        message = await self.stored.line(chunk.text, events)
        self._play(message, chunks_of(chunk, synth=self.synthesizer))

    async def _hang_up(self, reason: str) -> None:
        barge_ins = self.barge_ins
        try:
            if not self.player.active:
                await self._say_prompt("goodbye")
            async with asyncio.timeout(HANGUP_WAIT_S):
                await self.player.wait_idle()
        except TimeoutError:
            log.warning("call %s: the goodbye's last mark never came back", self.call_sid)
        except GatewayError as exc:
            log.warning("call %s: cannot say goodbye: %s", self.call_sid, exc)
        try:
            if self.info.ended is not None:
                return  # the caller hung up first
            if self.barge_ins != barge_ins:
                log.info("call %s: the caller spoke over the goodbye; staying on", self.call_sid)
                return
            api = self.services.calls_api
            if api is not None:
                await api.complete(self.call_sid)
            log.info("call %s hung up by the agent (%s)", self.call_sid, reason)
        except GatewayError as exc:
            log.warning("call %s: hang-up through the REST API failed: %s", self.call_sid, exc)
        finally:
            self._hangup = None
        await self._close_stream()  # with nothing after <Connect>, closing ends the call too

    def _played(self, played: Played) -> None:
        if played.message_id < 0:  # a streamed answer not stored yet: it applies the cut later
            live = self._live.get(played.message_id)
            if live is not None:
                live.played(played)
            return
        self.interruptions.played(played)

    def _resume(self, played: Played) -> None:
        """Say the rest of a message a backchannel or a noise interrupted."""
        if self.info.ended is None:
            rest = self.interruptions.rest(played)
            chunks = speak(self.synthesizer, rest)
            self.player.enqueue(Utterance(played.message_id, played.text, chunks))

    # ------------------------------------------------------------------ end

    async def end(self, reason: str) -> None:
        """The stream is over (stop, closed socket, status callback, shutdown)."""
        if self.info.ended is not None:
            return
        if self.info.moved_to is not None:  # the stream ended because the call moved on
            reason = f"moved to {self.info.moved_to}"
        elif self.info.ended_by is not None:  # closed because Twilio said the call is over
            reason = self.info.ended_by
        self.info.ended = reason
        if self._key_timer is not None:
            self._key_timer.cancel()
        for event in self.endpointer.finish():
            if isinstance(event, UtteranceEnded):
                self._heard(event)
        self.early.drop()
        self._inbox.put_nowait(None)
        await self.player.close()
        self.interruptions.close()  # a barge-in not heard out stays a cut
        try:
            async with asyncio.timeout(DRAIN_WAIT_S):
                await asyncio.wait([self._worker])
                while self._tasks:
                    await asyncio.wait(list(self._tasks))
        except TimeoutError:
            log.warning("call %s: gave up waiting for its last utterances", self.call_sid)
            self._worker.cancel()
        self.services.registry.remove(self)
        if self.info.conversation is not None:
            ended = EventDraft(
                kind="phone.call_ended",
                data={"call_sid": self.call_sid, "reason": reason, "duration_ms": self.now_ms()},
            )
            try:
                usage = self.meter.usage()
                await self.stored.record((), (ended,) if usage.empty() else (ended, usage.event()))
            except GatewayError as exc:
                log.warning("call %s: cannot record its end: %s", self.call_sid, exc)
        log.info("call %s ended (%s) after %d ms", self.call_sid, reason, self.now_ms())

    def terminate(self, reason: str) -> None:
        """End the call from outside the stream (status callback): close the socket;
        the transport then ends the call as for any closed stream."""
        log.info("call %s: %s", self.call_sid, reason)
        if self.info.ended_by is None:
            self.info.ended_by = reason
        self._spawn(self._close_stream())

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("call %s: background step failed: %r", self.call_sid, exc)


class _Heard:
    """An ended utterance in the call's inbox, with its timing (and its transcript
    when it was started early)."""

    __slots__ = ("early", "turn", "utterance")

    def __init__(
        self, utterance: UtteranceEnded, turn: TurnTiming, early: asyncio.Task[Transcript] | None
    ) -> None:
        self.utterance = utterance
        self.turn = turn
        self.early = early


__all__ = ["PhoneCall"]
