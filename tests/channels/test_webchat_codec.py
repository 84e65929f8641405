"""The web chat codec and identity helpers: pure, so tested with tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from itsdangerous import URLSafeSerializer

from channels.webchat import codec
from channels.webchat.identity import (
    VisitorTokens,
    origin_allowed,
    sign_user_id,
    verify_user_id,
)
from gateway.errors import ProtocolError
from gateway.models import AuthorKind, ChannelKind, Direction, Message

MAX = 2000


def parse(raw: str) -> object:
    return codec.parse_client_frame(raw, max_text_chars=MAX)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type":"hello"}', codec.Hello(type="hello")),
        (
            '{"type":"hello","visitor_token":"t","last_seq":7,'
            '"user":{"id":"C-1","name":"Jo","signature":"ab"}}',
            codec.Hello(
                type="hello", visitor_token="t", last_seq=7,
                user=codec.UserClaim(id="C-1", name="Jo", signature="ab"),
            ),
        ),
        ('{"type":"hello","visitor_token":null,"user":null,"last_seq":null}',
         codec.Hello(type="hello")),
        ('{"type":"message","text":"hi","client_id":"a-1.B_2"}',
         codec.ChatMessage(type="message", text="hi", client_id="a-1.B_2")),
        ('{"type":"message","text":"hi","client_id":"c","future":1}',
         codec.ChatMessage(type="message", text="hi", client_id="c")),
        ('{"type":"typing","active":true}', codec.ClientTyping(type="typing", active=True)),
        ('{"type":"ping"}', codec.Ping(type="ping")),
        ('{"type":"message","text":"' + "é" * MAX + '","client_id":"c"}',
         codec.ChatMessage(type="message", text="é" * MAX, client_id="c")),
    ],
)  # fmt: skip
def test_parses_valid_frames(raw: str, expected: object) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "bad_json"),
        ("{", "bad_json"),
        ("null", "bad_frame"),
        ('"hello"', "bad_frame"),
        ("{}", "missing_field"),
        ('{"type": 3}', "missing_field"),
        ('{"type":"HELLO"}', "unknown_type"),
        ('{"type":"hello","last_seq":"5"}', "invalid_field"),
        ('{"type":"hello","last_seq":true}', "invalid_field"),
        ('{"type":"hello","last_seq":1.5}', "invalid_field"),
        ('{"type":"hello","last_seq":' + "9" * 5000 + "}", "invalid_field"),
        ('{"type":"hello","last_seq":' + "9" * 25 + "}", "invalid_field"),
        ('{"type":"hello","last_seq":1e999}', "invalid_field"),
        ('{"type":"hello","user":{"id":"C-1"}}', "missing_field"),
        ('{"type":"hello","user":{"id":"","signature":"ab"}}', "invalid_field"),
        ('{"type":"hello","visitor_token":"' + "t" * 513 + '"}', "invalid_field"),
        ('{"type":"message","text":"hi"}', "missing_field"),
        ('{"type":"message","text":"hi","client_id":""}', "invalid_field"),
        ('{"type":"message","text":"hi","client_id":"' + "c" * 65 + '"}', "invalid_field"),
        ('{"type":"message","text":["hi"],"client_id":"c"}', "invalid_field"),
        ('{"type":"message","text":"\\udfff","client_id":"c"}', "invalid_field"),
        ('{"type":"message","text":"\\n\\t ","client_id":"c"}', "empty_text"),
        ('{"type":"message","text":"' + "x" * (MAX + 1) + '","client_id":"c"}', "text_too_long"),
        ('{"type":"typing","active":"yes"}', "invalid_field"),
        ('{"type":"ping","x":"' + "y" * codec.MAX_FRAME_BYTES + '"}', "frame_too_large"),
        ('{"type":"ping","x":"' + "€" * 6000 + '"}', "frame_too_large"),  # 18 KB in UTF-8
        ("[" * 3000 + "]" * 3000, "bad_json"),
    ],
)
def test_refuses_bad_frames_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse(raw)
    assert err.value.code == code and err.value.message


def test_refused_message_carries_its_client_id() -> None:
    with pytest.raises(codec.MessageRefused) as err:
        parse('{"type":"message","text":"  ","client_id":"abc"}')
    assert err.value.client_id == "abc"


def message(channel: ChannelKind, direction: Direction, external_id: str | None) -> Message:
    return Message(
        id=9, conversation_id=2, customer_id=3, seq=5, direction=direction,
        author=AuthorKind.CUSTOMER if direction is Direction.INBOUND else AuthorKind.AGENT,
        channel=channel, text="hi", external_id=external_id,
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "direction", "external_id", "client_id"),
    [
        (ChannelKind.WEBCHAT, Direction.INBOUND, "v.abc:c-1", "c-1"),
        (ChannelKind.WEBCHAT, Direction.INBOUND, "u.org:42:c-2", "c-2"),
        (ChannelKind.WEBCHAT, Direction.INBOUND, None, None),
        (ChannelKind.WEBCHAT, Direction.OUTBOUND, None, None),
        (ChannelKind.SMS, Direction.INBOUND, "SM123", None),
    ],
)
def test_message_frames(
    channel: ChannelKind, direction: Direction, external_id: str | None, client_id: str | None
) -> None:
    frame = json.loads(codec.message_frame(message(channel, direction, external_id)))
    assert frame == {
        "type": "message", "seq": 5, "id": 9, "author": frame["author"], "author_name": None,
        "text": "hi", "channel": channel.value, "client_id": client_id,
        "ts": "2024-05-01T12:00:00+00:00",
    }  # fmt: skip


def test_server_frames() -> None:
    assert json.loads(codec.ack_frame("c", 4)) == {
        "type": "ack", "client_id": "c", "seq": 4, "duplicate": False,
    }  # fmt: skip
    assert json.loads(codec.error_frame("bad_json", "nope")) == {
        "type": "error", "code": "bad_json", "message": "nope", "client_id": None,
    }  # fmt: skip
    assert json.loads(codec.typing_frame(True)) == {
        "type": "typing", "author": "agent", "active": True,
    }  # fmt: skip
    hist = json.loads(codec.history_frame([], reset=True, complete=False))
    assert hist == {"type": "history", "messages": [], "reset": True, "complete": False}
    welcome = json.loads(
        codec.welcome_frame(
            visitor_token="t",
            customer_name=None,
            user_id=None,
            known=False,
            last_seq=0,
            max_message_chars=9,
        )
    )
    assert welcome["customer"] is None and welcome["max_message_chars"] == 9
    assert codec.external_id("v.abc", "c1") == "v.abc:c1"


# ------------------------------------------------------------------ identity


def test_visitor_tokens_round_trip_and_refuse_forgeries() -> None:
    tokens = VisitorTokens(b"k" * 32)
    visitor, token = tokens.issue()
    assert tokens.load(token) == visitor and len(visitor) >= 16
    assert tokens.issue()[0] != visitor  # random, not a counter
    assert VisitorTokens(b"other key" * 4).load(token) is None
    # Tamper with the signature's first character: the last one of unpadded base64
    # may carry only padding bits, so changing it can leave the bytes the same.
    payload, _, sig = token.rpartition(".")
    forged = f"{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    assert tokens.load(forged) is None
    assert tokens.load(None) is None and tokens.load("") is None and tokens.load("...") is None
    # Correctly signed but not a visitor id (another use of the same key): refused.
    other = URLSafeSerializer(b"k" * 32, salt="webchat-visitor")
    assert tokens.load(other.dumps({"id": 1})) is None
    assert tokens.load(other.dumps("short")) is None


@pytest.mark.parametrize(
    ("user_id", "signature", "ok"),
    [
        ("C-1001", sign_user_id(b"secret", "C-1001"), True),
        ("C-1001", sign_user_id(b"secret", "C-1001").upper(), True),
        ("C-1001", sign_user_id(b"secret", "C-1002"), False),
        ("C-1001", sign_user_id(b"other", "C-1001"), False),
        ("C-1001", "", False),
        ("C-1001", "zz" * 32, False),
        ("C-1001", "é" * 64, False),
        ("ünïcode", sign_user_id(b"secret", "ünïcode"), True),
    ],
)
def test_verify_user_id(user_id: str, signature: str, ok: bool) -> None:
    assert verify_user_id(b"secret", user_id, signature) is ok


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        (None, [], True),
        ("https://evil.example", [], True),
        ("https://shop.example", ["https://shop.example"], True),
        ("https://SHOP.example/", ["https://shop.example"], True),
        ("https://evil.example", ["https://shop.example"], False),
        ("https://shop.example.evil", ["https://shop.example"], False),
        (None, ["https://shop.example"], False),
        ("", ["https://shop.example"], False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, allowed) is ok
