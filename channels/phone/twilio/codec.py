"""The Twilio Media Streams wire format: parse Twilio's messages, format ours.

Pure: no I/O, no clock, no call state. Twilio sends one JSON object per
websocket text message, told apart by `event` (Twilio's "Media Streams -
WebSocket Messages" page):

    connected  {event, protocol, version}
    start      {event, sequenceNumber, streamSid, start: {accountSid, streamSid,
                callSid, tracks, customParameters, mediaFormat: {encoding,
                sampleRate, channels}}}
    media      {event, sequenceNumber, streamSid, media: {track, chunk,
                timestamp, payload}}       payload: base64 μ-law 8 kHz mono
    dtmf       {event, sequenceNumber, streamSid, dtmf: {track, digit}}
    mark       {event, sequenceNumber, streamSid, mark: {name}}
    stop       {event, sequenceNumber, streamSid, stop: {accountSid, callSid}}

`sequenceNumber`, `chunk` and `timestamp` are decimal strings on the wire and
integers here. Each message is flattened into one frozen model (`call_sid`,
not `start.callSid`) so the transport never touches Twilio's nesting.

Anything that does not follow the protocol raises
`gateway.errors.ProtocolError` with a stable `code`; the transport logs and
drops that one message and keeps the call. Fields Twilio may add later are
ignored rather than refused, for the same reason.

On a bidirectional stream (<Connect><Stream>) we send `media` (base64 μ-law
8 kHz, no file header), `mark` (Twilio echoes it back once the audio queued
before it has played, or was cleared) and `clear` (drop all queued audio:
barge-in).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from gateway.errors import ProtocolError

MAX_MESSAGE_CHARS = 64 * 1024
"""Largest message accepted; a 20 ms media message is about 330 bytes."""
MAX_PAYLOAD_BYTES = 8 * 1024
"""Largest decoded media payload accepted: about 1 s of μ-law (Twilio sends 160 bytes)."""

_MAX_PAYLOAD_B64 = (MAX_PAYLOAD_BYTES + 2) // 3 * 4
_DTMF_DIGIT = r"^[0-9*#A-D]$"
# Codes our own validators raise; surfaced as the ProtocolError code unchanged.
_OWN_CODES = frozenset({"bad_payload", "payload_too_large"})


def _counter(value: object) -> object:
    # Twilio sends counters as decimal strings ("1"); accept a JSON integer too.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError("must be a non-negative decimal string")


def _payload(value: object) -> bytes:
    if not isinstance(value, str):
        raise PydanticCustomError("bad_payload", "media payload must be a base64 string")
    if len(value) > _MAX_PAYLOAD_B64:  # refuse before decoding anything big
        raise PydanticCustomError(
            "payload_too_large", "media payload over {limit} bytes", {"limit": MAX_PAYLOAD_BYTES}
        )
    try:
        audio = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise PydanticCustomError("bad_payload", "media payload is not valid base64") from None
    if len(audio) > MAX_PAYLOAD_BYTES:
        raise PydanticCustomError(
            "payload_too_large", "media payload over {limit} bytes", {"limit": MAX_PAYLOAD_BYTES}
        )
    return audio


Counter = Annotated[int, BeforeValidator(_counter)]
Sid = Annotated[str, Field(min_length=1, max_length=64)]
Payload = Annotated[bytes, BeforeValidator(_payload)]
Track = Literal["inbound", "outbound"]


class TwilioMessage(BaseModel):
    """Base of Twilio's messages: immutable, strict types, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, validate_by_name=True)


class TwilioConnected(TwilioMessage):
    """First message on the socket: names the protocol ("Call", "1.0.0")."""

    event: Literal["connected"]
    protocol: str
    version: str


class MediaFormat(TwilioMessage):
    """Encoding of the `media` payloads; Twilio sends audio/x-mulaw, 8000 Hz, 1 channel."""

    encoding: str
    sample_rate: int = Field(validation_alias="sampleRate")
    channels: int

    @property
    def is_mulaw_8k_mono(self) -> bool:
        """Whether this is the one format the phone channel handles."""
        return self.encoding == "audio/x-mulaw" and self.sample_rate == 8000 and self.channels == 1


class _StreamMessage(TwilioMessage):
    # `sequenceNumber` is optional here: a message without one still carries
    # audio worth keeping, and nothing downstream depends on it.
    sequence_number: Counter | None = Field(default=None, validation_alias="sequenceNumber")
    stream_sid: Sid = Field(validation_alias="streamSid")


class TwilioStart(_StreamMessage):
    """Metadata of the stream, sent once right after `connected`."""

    event: Literal["start"]
    stream_sid: Sid = Field(
        validation_alias=AliasChoices("streamSid", AliasPath("start", "streamSid"))
    )
    account_sid: Sid = Field(validation_alias=AliasPath("start", "accountSid"))
    call_sid: Sid = Field(validation_alias=AliasPath("start", "callSid"))
    # Lax only to take the JSON array as a tuple (strict mode wants a Python tuple).
    tracks: tuple[Track, ...] = Field(validation_alias=AliasPath("start", "tracks"), strict=False)
    custom_parameters: dict[str, str] = Field(
        default_factory=dict, validation_alias=AliasPath("start", "customParameters")
    )
    media_format: MediaFormat = Field(validation_alias=AliasPath("start", "mediaFormat"))


class TwilioMedia(_StreamMessage):
    """One chunk of audio (20 ms, 160 bytes of μ-law from Twilio), already base64-decoded."""

    event: Literal["media"]
    track: Track = Field(validation_alias=AliasPath("media", "track"))
    chunk: Counter = Field(validation_alias=AliasPath("media", "chunk"))
    timestamp: Counter = Field(validation_alias=AliasPath("media", "timestamp"))
    """Milliseconds from the start of the stream."""
    payload: Payload = Field(validation_alias=AliasPath("media", "payload"))


class TwilioDtmf(_StreamMessage):
    """The caller pressed a key (bidirectional streams only)."""

    event: Literal["dtmf"]
    track: str = Field(validation_alias=AliasPath("dtmf", "track"))  # "inbound_track"
    digit: Annotated[str, Field(pattern=_DTMF_DIGIT)] = Field(
        validation_alias=AliasPath("dtmf", "digit")
    )


class TwilioMark(_StreamMessage):
    """Twilio played (or cleared) the audio we queued before our mark of this name."""

    event: Literal["mark"]
    name: str = Field(validation_alias=AliasPath("mark", "name"))


class TwilioStop(_StreamMessage):
    """The stream stopped or the call ended; the last message."""

    event: Literal["stop"]
    account_sid: Sid = Field(validation_alias=AliasPath("stop", "accountSid"))
    call_sid: Sid = Field(validation_alias=AliasPath("stop", "callSid"))


TwilioEvent = TwilioConnected | TwilioStart | TwilioMedia | TwilioDtmf | TwilioMark | TwilioStop
"""Every message Twilio sends on a Media Stream."""

_MODELS: dict[str, type[TwilioEvent]] = {
    "connected": TwilioConnected,
    "start": TwilioStart,
    "media": TwilioMedia,
    "dtmf": TwilioDtmf,
    "mark": TwilioMark,
    "stop": TwilioStop,
}


def parse_message(raw: str | bytes) -> TwilioEvent:
    """Parse one websocket message from Twilio.

    Raises ProtocolError with code `message_too_large`, `bad_json`,
    `bad_message` (not an object), `missing_event`, `unknown_event`,
    `missing_field`, `invalid_field`, `bad_payload` or `payload_too_large`.
    """
    if len(raw) > MAX_MESSAGE_CHARS:
        raise ProtocolError("message_too_large", f"messages are limited to {MAX_MESSAGE_CHARS}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ProtocolError("bad_json", f"message is not valid JSON: {exc}"[:200]) from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "a message must be a JSON object with an `event`")
    event = data.get("event")
    if not isinstance(event, str):
        raise ProtocolError("missing_event", "`event` is required and must be a string")
    model = _MODELS.get(event)
    if model is None:
        raise ProtocolError("unknown_event", f"unknown event {event[:40]!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _protocol_error(exc, event) from None


def _protocol_error(exc: ValidationError, event: str) -> ProtocolError:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"]) or "message"
    if err["type"] in _OWN_CODES:
        return ProtocolError(err["type"], f"{event}: {err['msg']}")
    if err["type"] == "missing":
        return ProtocolError("missing_field", f"{event}: `{where}` is required")
    return ProtocolError("invalid_field", f"{event}: `{where}`: {err['msg']}")


# ---------------------------------------------------------- outbound messages


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _check_sid(stream_sid: str) -> None:
    if not stream_sid:
        raise ValueError("stream_sid is required")


def format_media(stream_sid: str, mulaw: bytes) -> str:
    """Queue μ-law 8 kHz audio (raw bytes, no WAV header) for playback on the call."""
    _check_sid(stream_sid)
    payload = base64.b64encode(mulaw).decode("ascii")
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def format_mark(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo a `mark` named `name` once the audio queued before it has played."""
    _check_sid(stream_sid)
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def format_clear(stream_sid: str) -> str:
    """Drop all audio queued for playback (barge-in); pending marks come back at once."""
    _check_sid(stream_sid)
    return _dump({"event": "clear", "streamSid": stream_sid})


__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MediaFormat",
    "TwilioConnected",
    "TwilioDtmf",
    "TwilioEvent",
    "TwilioMark",
    "TwilioMedia",
    "TwilioMessage",
    "TwilioStart",
    "TwilioStop",
    "format_clear",
    "format_mark",
    "format_media",
    "parse_message",
]
