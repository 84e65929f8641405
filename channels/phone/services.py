"""What every phone call shares and what is known about one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from channels.phone.call.playback import Chunk
from channels.phone.call.voice import PhonePrompts
from channels.phone.twilio.rest import TwilioCalls
from channels.phone.twilio.stream_token import OutreachLeg
from channels.speech.end_of_turn import AudioTurnJudge
from channels.speech.silero import SileroVad
from channels.speech.vad import EndpointerConfig
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import Conversation, Customer, Identity
from gateway.protocols import Store, Synthesizer, Transcriber

if TYPE_CHECKING:
    from channels.phone.call.phone_call import PhoneCall


class AccountLookup(Protocol):
    """What the phone channel needs from the business backend (agent/backend.py)."""

    async def find_account(self, kind: Any, value: str) -> Any: ...


class CallRegistry(Protocol):
    """Where live calls are found by the outbound channel (PhoneChannel)."""

    def add(self, call: PhoneCall) -> None: ...

    def remove(self, call: PhoneCall) -> None: ...


@dataclass(frozen=True)
class Opening:
    """What the agent says first on an answered outbound call: `text`, of which the
    first sentences may already be rendered (`ready`, rendered while the phone rang)."""

    text: str
    ready: tuple[Chunk, ...] = ()

    def rest(self) -> str:
        """The text after the `ready` sentences (still to be synthesized)."""
        done = " ".join(" ".join(chunk.text for chunk in self.ready).split())
        full = " ".join(self.text.split())
        return full[len(done) :].strip() if full.startswith(done) else full


class Openings(Protocol):
    """Where an answered outbound call finds what the agent says first
    (channels/phone/outbound/caller.py)."""

    async def opening(self, leg: OutreachLeg, call_sid: str) -> Opening | None:
        """The opening of the outreach call `call_sid`; None when it is unknown."""
        ...


@dataclass(frozen=True)
class CallServices:
    """What every call shares, built once by `setup_phone`."""

    store: Store
    dispatcher: Dispatcher
    transcriber: Transcriber
    synthesizer: Synthesizer
    prompts: PhonePrompts
    vad: SileroVad
    endpointer: EndpointerConfig
    barge_in_ms: int
    registry: CallRegistry
    quick_end_ms: int = 0  # end a turn that reads as complete after this silence; 0: off
    end_of_turn: AudioTurnJudge | None = None  # judges pauses from the audio (Smart Turn)
    calls_api: TwilioCalls | None = None
    accounts: AccountLookup | None = None
    metrics: Metrics | None = None  # per-turn stage timings (gateway_voice_stage_seconds)


@dataclass
class TurnTiming:
    """Where the time of one spoken turn went, as call-time milliseconds (see
    `PhoneCall.now_ms`): from the caller's last word to the first audio of the answer.

    `speech_end_ms` is when the VAD heard the speech end (the arrival time of that
    audio); `utterance_end_ms` when the end-of-turn silence ended the turn;
    `transcript_ms` when its transcript was ready; `reply_ms` when the agent's answer
    was stored and handed to the call (`streamed`: when its first sentence was);
    `first_audio_ms` when the answer's first audio frame was sent. A step that did
    not happen stays None (no words, no answer from the agent, an answer cut before
    it played)."""

    speech_end_ms: int
    utterance_end_ms: int
    transcript_ms: int | None = None
    reply_ms: int | None = None
    first_audio_ms: int | None = None
    message_id: int | None = None  # the caller's stored message
    reply_id: int | None = None  # the agent's answer
    early_transcript: bool = False  # transcribed while the end-of-turn silence ran
    streamed: bool = False  # spoken sentence by sentence as the agent wrote it
    stored_ms: int | None = None  # the whole answer stored (streamed: after its first audio)

    def stages(self) -> dict[str, int | None]:
        """Milliseconds spent in each stage (None: not reached)."""
        points = (self.speech_end_ms, self.utterance_end_ms, self.transcript_ms,
                  self.reply_ms, self.first_audio_ms)  # fmt: skip
        names = ("endpointing", "stt", "agent", "tts")
        out: dict[str, int | None] = {
            name: None if a is None or b is None else b - a
            for name, a, b in zip(names, points, points[1:], strict=False)
        }
        last = self.first_audio_ms
        out["total"] = None if last is None else last - self.speech_end_ms
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "reply_id": self.reply_id,
            "speech_end_ms": self.speech_end_ms,
            "utterance_end_ms": self.utterance_end_ms,
            "transcript_ms": self.transcript_ms,
            "reply_ms": self.reply_ms,
            "first_audio_ms": self.first_audio_ms,
            "early_transcript": self.early_transcript,
            "streamed": self.streamed,
            "stored_ms": self.stored_ms,
            "stages_ms": self.stages(),
        }


@dataclass
class CallInfo:
    """Who is on a call and which stored messages belong to it."""

    call_sid: str
    stream_sid: str
    caller: str  # as Twilio gave it ("+15551234567", "anonymous", ...)
    identity: Identity
    customer: Customer | None = None
    conversation: Conversation | None = None
    message_ids: list[int] = field(default_factory=list)
    ended: str | None = None  # why it ended, once it has
    moved_to: str | None = None  # where a REST update is taking the call (its stream ends)
    ended_by: str | None = None  # why the stream is being closed from outside (Twilio said)
    turns: list[TurnTiming] = field(default_factory=list)  # the caller's spoken turns
    outreach: OutreachLeg | None = None  # an outbound call of proactive outreach
    opening: Opening | None = None  # what the agent says first on that call


__all__ = [
    "AccountLookup", "CallInfo", "CallRegistry", "CallServices", "Opening", "Openings",
    "TurnTiming",
]  # fmt: skip
