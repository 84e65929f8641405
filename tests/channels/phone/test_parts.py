"""The phone channel's parts on their own: keypad rules, playback pacing, marks and
heard text, TwiML, signatures, and the REST client against a local Twilio stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable

import pytest

from channels.phone.call.keypad import OPERATOR_TEXT, Keypad
from channels.phone.call.playback import Chunk, Played, Player, Utterance
from channels.phone.twilio.rest import TwilioCalls
from channels.phone.twilio.twiml import connect_stream, unavailable
from channels.speech.audio import MULAW_SILENCE
from channels.twilio.signature import TwilioSignatures
from gateway.errors import AuthError, ChannelError
from tests.channels.phone.calls import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest

# ------------------------------------------------------------------- keypad


def test_keypad_digits_hash_star_and_zero_for_a_person() -> None:
    pad = Keypad(inter_digit_ms=5000, zero_wait_ms=1000)
    assert [pad.press(k, 100 + i * 200) for i, k in enumerate("1001")] == [None] * 4
    done = pad.press("#", 1000)
    assert done is not None and (done.kind, done.digits, done.text) == (
        "digits", "1001", "Keyed in 1001"
    )  # fmt: skip
    assert (done.start_ms, done.end_ms) == (100, 1000)
    assert pad.press("#", 1100) is None  # nothing typed

    pad.press("5", 2000)
    pad.press("*", 2100)  # start again
    assert pad.buffer == "" and pad.deadline_ms is None

    pad.press("0", 3000)  # a person, unless another key follows within a second
    assert pad.deadline_ms == 4000 and pad.expire(3999) is None
    person = pad.expire(4000)
    assert person is not None and (person.kind, person.text) == ("operator", OPERATOR_TEXT)

    pad.press("0", 5000)
    pad.press("4", 5500)  # an order number that starts with 0
    assert pad.deadline_ms == 10_500
    late = pad.expire(10_500)  # no `#`: submitted after the inter-digit timeout
    assert late is not None and late.digits == "04"

    assert pad.press("0", 11_000) is None
    now = pad.press("#", 11_100)
    assert now is not None and now.kind == "operator"
    pad.press("A", 12_000)
    assert pad.buffer == ""


# ----------------------------------------------------------------- playback


def _tone(ms: int) -> bytes:
    return bytes([0x10, 0x90]) * (ms * 4)  # 8 kHz: 8 bytes per ms


async def _chunks(*parts: tuple[str, int]) -> AsyncGenerator[Chunk, None]:
    for text, ms in parts:
        yield Chunk(text=text, mulaw=_tone(ms))


class Wire:
    """What the player sends, with loop times."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, object]]] = []
        self._changed = asyncio.Event()

    async def send(self, raw: str) -> None:
        self.sent.append((asyncio.get_running_loop().time(), json.loads(raw)))
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(2):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def of(self, event: str) -> list[tuple[float, dict[str, object]]]:
        return [(at, m) for at, m in self.sent if m["event"] == event]


async def test_playback_is_paced_marked_and_reports_when_heard() -> None:
    wire, played = Wire(), list[Played]()
    loop = asyncio.get_running_loop()
    player = Player("MZ1", wire.send, origin=loop.time(), on_played=played.append)
    player.enqueue(Utterance(7, "One two. Three four.",
                             _chunks(("One two.", 300), ("Three four.", 300))))  # fmt: skip
    assert player.active
    await wire.until(lambda: len(wire.of("mark")) == 2)
    media = wire.of("media")
    assert len(media) == 30  # 600 ms in 20 ms frames
    assert all(m["streamSid"] == "MZ1" for _, m in media)
    # Real time, with a 100 ms lead: never a burst of the whole answer.
    assert media[-1][0] - media[0][0] > 0.4
    first_mark = wire.sent.index(wire.of("mark")[0])
    assert sum(1 for _, m in wire.sent[:first_mark] if m["event"] == "media") == 15
    assert [m["mark"] for _, m in wire.of("mark")] == [{"name": "7:0"}, {"name": "7:1"}]
    player.on_mark("7:0")
    player.on_mark("unknown")  # ignored
    assert played == [] and player.active
    player.on_mark("7:1")
    [done] = played
    assert (done.message_id, done.heard, done.complete, done.reason) == (
        7, "One two. Three four.", True, "played"
    )  # fmt: skip
    assert done.start_ms is not None and done.end_ms is not None
    assert done.end_ms - done.start_ms >= 400  # marks echoed here as soon as sent
    assert not player.active
    async with asyncio.timeout(1):
        await player.wait_idle()
    await player.close()


async def test_barge_in_clears_and_keeps_only_what_was_heard() -> None:
    wire, played = Wire(), list[Played]()
    loop = asyncio.get_running_loop()
    player = Player("MZ1", wire.send, origin=loop.time(), on_played=played.append)
    first = "Your order has shipped."
    second = "It left our warehouse on Monday morning by truck."
    player.enqueue(Utterance(1, f"{first} {second}", _chunks((first, 200), (second, 1000))))
    player.enqueue(Utterance(2, "Anything else?", _chunks(("Anything else?", 200))))
    await wire.until(lambda: bool(wire.of("mark")))
    player.on_mark("1:0")  # the first sentence has been heard
    await asyncio.sleep(0.5)  # about half of the second has played
    cut = await player.interrupt()
    clear_at, _ = wire.of("clear")[0]
    assert all(at <= clear_at for at, _ in wire.of("media"))
    assert [p.message_id for p in cut] == [1, 2] and played == cut
    heard = cut[0].heard
    assert heard.startswith(first + " It left our") and heard != f"{first} {second}"
    assert second.startswith(heard.removeprefix(first + " "))
    assert not cut[0].complete and cut[0].reason == "barge_in"
    assert (cut[1].heard, cut[1].start_ms, cut[1].end_ms) == ("", None, None)
    player.on_mark("1:1")  # Twilio echoes cleared marks: they prove nothing
    assert len(played) == 2 and not player.active
    sent = len(wire.sent)
    await asyncio.sleep(0.1)
    assert len(wire.sent) == sent  # nothing after the clear

    # The player goes on with the next answer.
    player.enqueue(Utterance(3, "Sure.", _chunks(("Sure.", 100))))
    await wire.until(lambda: any(m["mark"] == {"name": "3:0"} for _, m in wire.of("mark")))
    closed = await player.close()
    assert [(p.message_id, p.reason) for p in closed] == [(3, "hangup")]


async def test_a_sentence_without_audio_is_not_heard() -> None:
    wire, played = Wire(), list[Played]()
    player = Player("MZ1", wire.send, origin=asyncio.get_running_loop().time(),
                    on_played=played.append)  # fmt: skip

    async def failing() -> AsyncGenerator[Chunk, None]:
        yield Chunk(text="Spoken.", mulaw=bytes([MULAW_SILENCE]) * 160)
        yield Chunk(text="Not synthesized.", mulaw=b"")

    player.enqueue(Utterance(4, "Spoken. Not synthesized.", failing()))
    await wire.until(lambda: bool(wire.of("mark")))
    player.on_mark("4:0")
    async with asyncio.timeout(1):
        await player.wait_idle()
    [done] = played
    assert (done.heard, done.complete) == ("Spoken.", False)
    await player.close()


# ------------------------------------------------------------ TwiML, signatures


def test_twiml() -> None:
    xml = connect_stream("wss://gw.example/twilio/media", {"callSid": "CA1", "from": "+1<2>"})
    assert xml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="wss://gw.example/twilio/media"><Parameter name="callSid" value="CA1" />'
        '<Parameter name="from" value="+1&lt;2&gt;" /></Stream></Connect></Response>'
    )
    assert "<Say>" in unavailable() and "<Hangup />" in unavailable()


def test_signatures_cover_url_query_and_parameters() -> None:
    sigs = TwilioSignatures(AUTH_TOKEN, "https://gw.example", "wss://gw.example")
    url = "https://gw.example/twilio/voice?tenant=a"
    params = {"CallSid": "CA1", "From": "+15551234567"}
    good = sigs.sign(url, params)
    sigs.check(url, params, good)
    sigs.check("https://gw.example:443/twilio/voice?tenant=a", params, good)  # explicit port
    for bad_url, bad_params, sig in (
        ("https://gw.example/twilio/voice?tenant=b", params, good),
        (url, {**params, "From": "+15550000000"}, good),
        (url, params, None),
        (url, params, good[:-2] + "xx"),
    ):
        with pytest.raises(AuthError):
            sigs.check(bad_url, bad_params, sig)
    with pytest.raises(AuthError, match="GATEWAY_TWILIO_AUTH_TOKEN"):
        TwilioSignatures(None, "https://gw.example", "wss://gw.example").check(url, params, good)


# ---------------------------------------------------------------- REST


async def test_rest_client_completes_calls_and_translates_errors(
    twilio_rest: FakeTwilioRest,
) -> None:
    api = await twilio_rest.start()
    twilio_rest.live.add("CA42")
    calls = TwilioCalls(ACCOUNT_SID, AUTH_TOKEN, api + "/")
    wrong = TwilioCalls(ACCOUNT_SID, "not-the-token", api)
    nowhere = TwilioCalls(ACCOUNT_SID, AUTH_TOKEN, "http://127.0.0.1:9")
    try:
        assert await calls.complete("CA42") is True
        [(_, sid, form)] = twilio_rest.requests
        assert (sid, form) == ("CA42", {"Status": "completed"})
        assert await calls.complete("CA42") is False  # already over: Twilio's 20404
        with pytest.raises(ChannelError, match="HTTP 401, code 20003"):
            await wrong.complete("CA43")
        with pytest.raises(ChannelError, match="cannot reach Twilio"):
            await nowhere.complete("CA44")
    finally:
        for client in (calls, wrong, nowhere):
            await client.close()
