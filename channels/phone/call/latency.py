"""Where the time of each spoken turn of a call goes.

Each spoken turn keeps a `TurnTiming` (the VAD's speech end, the end of the
turn, transcript ready, the agent's answer handed to the call, its first audio
frame sent) in `CallInfo.turns`, and each stage is observed in
`gateway_voice_stage_seconds`. The answer is the first agent message spoken
after the turn was handed to the agent (turns are answered in order); a
streamed answer (channels/phone/call/live.py) is tied to its turn when it starts and
carries it over to the stored message once that exists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from channels.phone.call.live import LiveAnswer
from channels.phone.services import CallInfo, TurnTiming
from gateway.metrics import Metrics
from gateway.models import Message


class TurnClock:
    """The timing of one call's turns; `now_ms` is the call's clock (`PhoneCall.now_ms`)."""

    def __init__(self, info: CallInfo, now_ms: Callable[[], int], metrics: Metrics | None) -> None:
        self._info = info
        self._now_ms = now_ms
        self._metrics = metrics
        self._awaiting: deque[TurnTiming] = deque()  # handed to the agent, not answered yet
        self._answering: dict[int, TurnTiming] = {}  # answer message id -> its turn

    def heard(self, behind_ms: int) -> TurnTiming:
        """A turn ended now; its speech ended `behind_ms` of audio before the present."""
        now = self._now_ms()
        turn = TurnTiming(speech_end_ms=max(0, now - behind_ms), utterance_end_ms=now)
        self._info.turns.append(turn)
        self.observe("endpointing", turn.speech_end_ms, now)
        return turn

    def transcribed(self, turn: TurnTiming) -> None:
        """The transcript of `turn` is ready."""
        turn.transcript_ms = self._now_ms()
        self.observe("stt", turn.utterance_end_ms, turn.transcript_ms)

    def handed(self, turn: TurnTiming) -> None:
        """`turn` (its `message_id` set) went to the agent, which will answer it."""
        self._awaiting.append(turn)

    def clear(self) -> None:
        """The agent answers nothing more (the call is handed to a person)."""
        self._awaiting.clear()

    def answer(self, message: Message) -> None:
        """The stored agent `message` is about to be spoken: the answer to the oldest
        turn not answered yet, when it came after that turn."""
        awaiting = self._awaiting
        if awaiting and awaiting[0].message_id is not None and awaiting[0].message_id < message.id:
            turn = awaiting.popleft()  # the answer to the oldest turn not answered yet
            turn.reply_ms, turn.reply_id = self._now_ms(), message.id
            turn.stored_ms = turn.reply_ms
            self._answering[message.id] = turn
            self.observe("agent", turn.transcript_ms, turn.reply_ms)

    def live_turn(self, message: Message) -> TurnTiming | None:
        """The turn a streamed answer to the caller's `message` answers, if it is next."""
        awaiting = self._awaiting
        return awaiting.popleft() if awaiting and awaiting[0].message_id == message.id else None

    def live_started(self, live: LiveAnswer, turn: TurnTiming) -> None:
        """The streamed answer `live` to `turn` has its first sentence queued."""
        self._answering[live.id] = turn
        self.observe("agent", turn.transcript_ms, turn.reply_ms)

    def live_bound(self, live: LiveAnswer, message: Message | None) -> None:
        """The streamed answer `live` was stored as `message` (None: it was not)."""
        turn = self._answering.pop(live.id, None)
        if message is None:
            return
        if live.turn is not None:
            live.turn.reply_id, live.turn.stored_ms = message.id, self._now_ms()
            if live.turn.reply_ms is None:  # nothing was streamed: answered when stored
                live.turn.reply_ms = self._now_ms()
                self.observe("agent", live.turn.transcript_ms, live.turn.reply_ms)
        if turn is not None and turn.first_audio_ms is None:
            self._answering[message.id] = turn  # its first frame is still to be sent

    def first_audio(self, message_id: int) -> None:
        """The first audio frame of message `message_id` was sent."""
        turn = self._answering.pop(message_id, None)
        if turn is not None:
            turn.first_audio_ms = self._now_ms()
            self.observe("tts", turn.reply_ms, turn.first_audio_ms)
            self.observe("total", turn.speech_end_ms, turn.first_audio_ms)

    def observe(self, stage: str, start_ms: int | None, end_ms: int | None) -> None:
        """Observe one stage's duration in `gateway_voice_stage_seconds`."""
        metrics = self._metrics
        if metrics is not None and start_ms is not None and end_ms is not None:
            metrics.voice_stages.labels(stage).observe(max(0, end_ms - start_ms) / 1000)


__all__ = ["TurnClock"]
