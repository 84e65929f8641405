"""The Twilio Media Streams codec: every message Twilio sends, every one we send,
and each way a message can be malformed."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from channels.phone.twilio.codec import (
    MAX_MESSAGE_CHARS,
    MAX_PAYLOAD_BYTES,
    TwilioConnected,
    TwilioDtmf,
    TwilioMark,
    TwilioMedia,
    TwilioStart,
    TwilioStop,
    format_clear,
    format_mark,
    format_media,
    parse_message,
)
from gateway.errors import ProtocolError

ACCOUNT = "AC" + "0123456789abcdef" * 2
CALL = "CA" + "fedcba9876543210" * 2
STREAM = "MZ" + "18ad3ab5a668481ce02b83e7395059f0"
FRAME = bytes(range(96, 256))  # 160 bytes of μ-law

# Messages as Twilio documents them ("Media Streams - WebSocket Messages").
CONNECTED: dict[str, Any] = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START: dict[str, Any] = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT,
        "streamSid": STREAM,
        "callSid": CALL,
        "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
    },
    "streamSid": STREAM,
}
MEDIA: dict[str, Any] = {
    "event": "media",
    "sequenceNumber": "3",
    "media": {
        "track": "inbound",
        "chunk": "1",
        "timestamp": "5",
        "payload": base64.b64encode(FRAME).decode(),
    },
    "streamSid": STREAM,
}
DTMF: dict[str, Any] = {
    "event": "dtmf",
    "streamSid": STREAM,
    "sequenceNumber": "5",
    "dtmf": {"track": "inbound_track", "digit": "1"},
}
MARK: dict[str, Any] = {
    "event": "mark",
    "sequenceNumber": "4",
    "streamSid": STREAM,
    "mark": {"name": "my label"},
}
STOP: dict[str, Any] = {
    "event": "stop",
    "sequenceNumber": "5",
    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    "streamSid": STREAM,
}


def parse(message: dict[str, Any]) -> object:
    return parse_message(json.dumps(message))


def with_field(message: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of `message` with `path` ("media.payload") set, or removed for ...."""
    copy: dict[str, Any] = json.loads(json.dumps(message))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copy


# ------------------------------------------------------------------- inbound


def test_connected() -> None:
    assert parse(CONNECTED) == TwilioConnected(event="connected", protocol="Call", version="1.0.0")


def test_start() -> None:
    start = parse(START)
    assert isinstance(start, TwilioStart)
    assert (start.stream_sid, start.call_sid, start.account_sid) == (STREAM, CALL, ACCOUNT)
    assert start.sequence_number == 1
    assert start.tracks == ("inbound", "outbound")
    assert start.custom_parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}
    assert (start.media_format.encoding, start.media_format.sample_rate) == ("audio/x-mulaw", 8000)
    assert start.media_format.channels == 1
    assert start.media_format.is_mulaw_8k_mono


def test_start_variants() -> None:
    # No customParameters: an empty mapping. Another format: parsed, but flagged.
    bare = parse(with_field(START, "start.customParameters", ...))
    assert isinstance(bare, TwilioStart) and bare.custom_parameters == {}
    other = parse(with_field(START, "start.mediaFormat.sampleRate", 16000))
    assert isinstance(other, TwilioStart) and not other.media_format.is_mulaw_8k_mono
    # Unknown fields (Twilio adding some) are ignored, not refused.
    newer = parse(with_field(START, "start.from", "+15551234567"))
    assert isinstance(newer, TwilioStart) and newer.call_sid == CALL


def test_media() -> None:
    media = parse(MEDIA)
    assert isinstance(media, TwilioMedia)
    assert media.stream_sid == STREAM
    assert (media.track, media.chunk, media.timestamp, media.sequence_number) == (
        "inbound",
        1,
        5,
        3,
    )
    assert media.payload == FRAME
    # Bytes straight off the websocket parse too.
    assert parse_message(json.dumps(MEDIA).encode()) == media


def test_dtmf_mark_stop() -> None:
    dtmf = parse(DTMF)
    assert isinstance(dtmf, TwilioDtmf)
    assert (dtmf.digit, dtmf.track, dtmf.stream_sid) == ("1", "inbound_track", STREAM)
    for digit in "0123456789*#":
        assert isinstance(parse(with_field(DTMF, "dtmf.digit", digit)), TwilioDtmf)
    mark = parse(MARK)
    assert isinstance(mark, TwilioMark) and mark.name == "my label" and mark.sequence_number == 4
    stop = parse(STOP)
    assert isinstance(stop, TwilioStop)
    assert (stop.call_sid, stop.account_sid, stop.stream_sid) == (CALL, ACCOUNT, STREAM)


def test_models_are_frozen() -> None:
    media = parse(MEDIA)
    with pytest.raises(ValueError):
        media.chunk = 2  # type: ignore[attr-defined]


# ------------------------------------------------------------------ outbound


def test_format_media() -> None:
    message = json.loads(format_media(STREAM, FRAME))
    assert message == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(FRAME).decode()},
    }


def test_format_mark_and_clear() -> None:
    assert json.loads(format_mark(STREAM, "reply-7")) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "reply-7"},
    }
    assert json.loads(format_clear(STREAM)) == {"event": "clear", "streamSid": STREAM}
    with pytest.raises(ValueError):
        format_clear("")


def test_our_media_parses_back_as_twilio_would_echo_it() -> None:
    sent = json.loads(format_media(STREAM, FRAME))
    media = parse(with_field(MEDIA, "media.payload", sent["media"]["payload"]))
    assert isinstance(media, TwilioMedia) and media.payload == FRAME


# ----------------------------------------------------------------- malformed

MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("not json", "{event: media", "bad_json"),
    ("empty", "", "bad_json"),
    ("not utf-8", b"\xff\xfe{}", "bad_json"),
    ("nested deeper than the parser recurses", "[" * 30_000 + "]" * 30_000, "bad_json"),
    ("array", "[1, 2]", "bad_message"),
    ("string", '"media"', "bad_message"),
    ("no event", json.dumps({"streamSid": STREAM}), "missing_event"),
    ("event not a string", json.dumps({**MEDIA, "event": 7}), "missing_event"),
    ("unknown event", json.dumps({**MEDIA, "event": "transcript"}), "unknown_event"),
    ("outbound-only event", json.dumps({"event": "clear", "streamSid": STREAM}), "unknown_event"),
    ("too large", json.dumps({**MARK, "pad": "x" * MAX_MESSAGE_CHARS}), "message_too_large"),
    ("no streamSid", json.dumps(with_field(MEDIA, "streamSid", ...)), "missing_field"),
    ("no media object", json.dumps(with_field(MEDIA, "media", ...)), "missing_field"),
    ("no payload", json.dumps(with_field(MEDIA, "media.payload", ...)), "missing_field"),
    ("no callSid", json.dumps(with_field(START, "start.callSid", ...)), "missing_field"),
    ("no mediaFormat", json.dumps(with_field(START, "start.mediaFormat", ...)), "missing_field"),
    ("no stop body", json.dumps(with_field(STOP, "stop", ...)), "missing_field"),
    ("no mark name", json.dumps(with_field(MARK, "mark.name", ...)), "missing_field"),
    ("no digit", json.dumps(with_field(DTMF, "dtmf.digit", ...)), "missing_field"),
    ("streamSid a number", json.dumps(with_field(MEDIA, "streamSid", 42)), "invalid_field"),
    ("empty streamSid", json.dumps(with_field(MEDIA, "streamSid", "")), "invalid_field"),
    ("chunk not a number", json.dumps(with_field(MEDIA, "media.chunk", "one")), "invalid_field"),
    ("negative timestamp", json.dumps(with_field(MEDIA, "media.timestamp", -5)), "invalid_field"),
    ("chunk a float", json.dumps(with_field(MEDIA, "media.chunk", 1.5)), "invalid_field"),
    ("unknown track", json.dumps(with_field(MEDIA, "media.track", "both")), "invalid_field"),
    ("media not an object", json.dumps(with_field(MEDIA, "media", "AAAA")), "missing_field"),
    ("tracks a string", json.dumps(with_field(START, "start.tracks", "inbound")), "invalid_field"),
    ("sampleRate a string",
     json.dumps(with_field(START, "start.mediaFormat.sampleRate", "8000")), "invalid_field"),
    ("parameter not a string",
     json.dumps(with_field(START, "start.customParameters", {"n": 1})), "invalid_field"),
    ("accountSid a number", json.dumps(with_field(STOP, "stop.accountSid", 5)), "invalid_field"),
    ("two digits", json.dumps(with_field(DTMF, "dtmf.digit", "12")), "invalid_field"),
    ("letter digit", json.dumps(with_field(DTMF, "dtmf.digit", "x")), "invalid_field"),
    ("mark name a list", json.dumps(with_field(MARK, "mark.name", ["a"])), "invalid_field"),
    ("payload not base64", json.dumps(with_field(MEDIA, "media.payload", "@@@@")), "bad_payload"),
    ("payload bad padding", json.dumps(with_field(MEDIA, "media.payload", "AAA")), "bad_payload"),
    ("payload a number", json.dumps(with_field(MEDIA, "media.payload", 12)), "bad_payload"),
    ("payload over the cap", json.dumps(with_field(
        MEDIA, "media.payload", base64.b64encode(bytes(MAX_PAYLOAD_BYTES + 1)).decode())),
     "payload_too_large"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code"), [(raw, code) for _, raw, code in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])  # fmt: skip
def test_malformed_messages_raise_protocol_error(raw: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    assert caught.value.code == code
    assert caught.value.message  # something for the log line


def test_payload_at_the_cap_is_accepted() -> None:
    audio = bytes(MAX_PAYLOAD_BYTES)
    media = parse(with_field(MEDIA, "media.payload", base64.b64encode(audio).decode()))
    assert isinstance(media, TwilioMedia) and media.payload == audio


def test_protocol_error_names_the_field() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(with_field(START, "start.callSid", ...))
    assert "start.callSid" in caught.value.message
