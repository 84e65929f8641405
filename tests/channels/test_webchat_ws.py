"""The web chat over a real websocket against the real app and store."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from channels.webchat import WEBCHAT, sign_user_id
from gateway.app import DISPATCHER, STORE
from gateway.models import AuthorKind, Identity, IdentityKind, Verification
from tests.channels.chat import Chat, Frame, build_app, messages
from tests.support.brains import EchoBrain


async def test_hello_message_ack_and_reply(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    gate = asyncio.Event()  # holds the reply back, so the typing indicator shows
    app = build_app(tmp_path, brain=EchoBrain(gate))
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    welcome, history = await chat.hello()
    assert welcome["customer"] is None and welcome["last_seq"] == 0
    assert isinstance(welcome["visitor_token"], str) and len(welcome["visitor_token"]) > 30
    assert history == []

    ack = await chat.say("hello there", "c1")
    assert ack == {"type": "ack", "client_id": "c1", "seq": 1, "duplicate": False}
    # The ack comes after the commit: the message is already in the store.
    visitor = app[WEBCHAT].tokens.load(welcome["visitor_token"])
    assert visitor is not None
    customer = await app[STORE].find_customer(Identity(kind=IdentityKind.WEBCHAT, value=visitor))
    assert customer is not None
    stored = await app[STORE].history(customer.id)
    first = stored[0]
    assert (first.seq, first.text, first.external_id) == (1, "hello there", f"v.{visitor}:c1")
    assert customer.identities[0].verified is Verification.SIGNED_TOKEN

    typing = await chat.until(lambda f: f["type"] == "typing")
    assert typing == {"type": "typing", "author": "agent", "active": True}
    gate.set()
    reply = await chat.reply()
    assert reply["text"] == "echo: hello there" and reply["author"] == "agent"
    assert reply["seq"] == 2 and reply["client_id"] is None and reply["channel"] == "webchat"
    # The sending tab got its own message echoed (with its client_id) before the ack.
    echo = messages(chat.frames)[0]
    assert (echo["seq"], echo["author"], echo["client_id"]) == (1, "customer", "c1")
    assert chat.frames.index(echo) < chat.frames.index(ack)
    assert {"type": "typing", "author": "agent", "active": False} in chat.frames

    await chat.say("again", "c2")
    assert (await chat.reply())["seq"] == 4
    await app[DISPATCHER].drain()
    stored = await app[STORE].history(customer.id)
    assert [(m.seq, m.author) for m in stored] == [
        (1, AuthorKind.CUSTOMER), (2, AuthorKind.AGENT), (3, AuthorKind.CUSTOMER),
        (4, AuthorKind.AGENT),
    ]  # fmt: skip
    await chat.close()


async def test_reconnect_resumes_exactly_after_last_seq(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    # A small page size makes the resume span several history frames.
    client = await aiohttp_client(build_app(tmp_path, webchat_history_limit=2))
    tab = await Chat.open(client)
    welcome, _ = await tab.hello()
    token = welcome["visitor_token"]
    await tab.say("one", "a1")
    seen = (await tab.reply())["seq"]  # 2
    await tab.close()

    # While the first tab is away, another tab of the same visitor goes on chatting.
    other = await Chat.open(client)
    await other.hello(token)
    for i in range(3):
        await other.say(f"more {i}", f"b{i}")
        await other.reply()
    await other.close()

    back = await Chat.open(client)
    welcome, missed = await back.hello(token, last_seq=seen)
    assert welcome["last_seq"] == 8
    assert [m["seq"] for m in missed] == [3, 4, 5, 6, 7, 8]
    assert [m["text"] for m in missed[:2]] == ["more 0", "echo: more 0"]
    pages = [f for f in back.frames if f["type"] == "history"]
    assert len(pages) == 4 and not any(p["reset"] for p in pages)

    # Up to date: an empty, complete page; without last_seq: the latest window, reset.
    latest = await Chat.open(client)
    _, none_missed = await latest.hello(token, last_seq=8)
    assert none_missed == []
    fresh = await Chat.open(client)
    _, window = await fresh.hello(token)
    assert [m["seq"] for m in window] == [7, 8]
    assert fresh.frames[-1]["reset"] is True
    # A last_seq the server never issued (another visitor's) starts afresh too.
    confused = await Chat.open(client)
    welcome, window = await confused.hello(token, last_seq=99)
    assert [m["seq"] for m in window] == [7, 8] and confused.frames[-1]["reset"] is True


async def test_live_messages_during_history_are_neither_lost_nor_repeated(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    gate = asyncio.Event()
    app = build_app(tmp_path, brain=EchoBrain(gate))
    client = await aiohttp_client(app)
    tab = await Chat.open(client)
    welcome, _ = await tab.hello()
    for i in range(3):
        await tab.say(f"m{i}", f"c{i}")
    # Replies are released while a second tab connects and reads its history.
    second = await Chat.open(client)
    gate.set()
    _, history = await second.hello(welcome["visitor_token"])
    seqs = [m["seq"] for m in history]
    while not seqs or seqs[-1] < 6:
        seqs.append((await second.until(lambda f: f["type"] == "message"))["seq"])
    assert seqs == list(range(1, 7))


async def test_two_tabs_see_both_sides(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    a = await Chat.open(client)
    welcome, _ = await a.hello()
    b = await Chat.open(client)
    await b.hello(welcome["visitor_token"])

    await a.say("from a", "a1")
    await a.reply()
    await b.until(lambda f: f["type"] == "message" and f["text"] == "echo: from a")
    await b.say("from b", "b1")
    await b.reply()
    await a.until(lambda f: f["type"] == "message" and f["text"] == "echo: from b")

    for tab in (a, b):
        assert [(m["seq"], m["text"]) for m in messages(tab.frames)] == [
            (1, "from a"), (2, "echo: from a"), (3, "from b"), (4, "echo: from b"),
        ]  # fmt: skip
    assert messages(b.frames)[0]["client_id"] == "a1"  # the other tab can tell it is ours


async def test_resent_client_id_is_stored_once(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    app = build_app(tmp_path)
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    welcome, _ = await chat.hello()
    first = await chat.say("only once", "same")
    await chat.reply()
    await chat.close()

    again = await Chat.open(client)
    await again.hello(welcome["visitor_token"], last_seq=0)
    ack = await again.say("only once", "same")
    assert ack == {"type": "ack", "client_id": "same", "seq": first["seq"], "duplicate": True}
    await app[DISPATCHER].drain()
    visitor = app[WEBCHAT].tokens.load(welcome["visitor_token"])
    assert visitor is not None
    customer = await app[STORE].find_customer(Identity(kind=IdentityKind.WEBCHAT, value=visitor))
    assert customer is not None
    stored = await app[STORE].history(customer.id)
    assert [m.text for m in stored] == ["only once", "echo: only once"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "shout", "text": "x"}', "unknown_type"),
        ('{"text": "no type"}', "missing_field"),
        ('{"type": "message", "text": "no client id"}', "missing_field"),
        ('{"type": "message", "text": 5, "client_id": "c"}', "invalid_field"),
        ('{"type": "message", "text": "x", "client_id": "has:colon"}', "invalid_field"),
        ('{"type": "message", "text": "\\ud800", "client_id": "c"}', "invalid_field"),
        ('{"type": "message", "text": "   ", "client_id": "c"}', "empty_text"),
        ('{"type": "message", "text": "\\u0000\\u0001", "client_id": "c"}', "empty_text"),
        ('{"type": "message", "text": "' + "x" * 2001 + '", "client_id": "c"}', "text_too_long"),
        ('{"type": "ping", "pad": "' + "x" * 20_000 + '"}', "frame_too_large"),
        ('{"type": "hello", "last_seq": -1}', "invalid_field"),
        ('{"type": "hello"}', "already_greeted"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
    ],
)
async def test_bad_frames_get_error_frames_and_the_socket_carries_on(
    tmp_path: Path, aiohttp_client: AiohttpClient, raw: str, code: str
) -> None:
    app = build_app(tmp_path)
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    await chat.hello()
    await chat.ws.send_str(raw)
    error = await chat.expect("error")
    assert error["code"] == code and error["message"]
    await chat.send({"type": "ping"})
    assert (await chat.expect("pong")) == {"type": "pong"}
    assert (await chat.say("still here", "ok"))["type"] == "ack"
    assert (await chat.reply())["text"] == "echo: still here"
    metrics = (await (await client.get("/metrics")).text()).splitlines()
    assert any(f'reason="{code}"' in line and line.endswith(" 1.0") for line in metrics)


async def test_refused_message_names_its_client_id(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path, webchat_max_message_chars=10))
    chat = await Chat.open(client)
    await chat.hello()
    error = await chat.say("x" * 11, "long1")
    assert (error["code"], error["client_id"]) == ("text_too_long", "long1")


async def test_hello_is_required_first_and_binary_is_refused(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    chat = await Chat.open(client)
    await chat.send({"type": "message", "text": "hi", "client_id": "early"})
    assert (await chat.expect("error"))["code"] == "hello_required"
    await chat.ws.send_bytes(b"\x00\x01binary")
    assert (await chat.expect("error"))["code"] == "binary_not_supported"
    await chat.hello()
    assert (await chat.say("now", "c"))["seq"] == 1


async def test_huge_frame_closes_only_that_socket(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    chat = await Chat.open(client)
    await chat.hello()
    await chat.ws.send_str('{"type":"ping","pad":"' + "x" * 200_000 + '"}')
    msg = await chat.ws.receive(timeout=5)
    assert msg.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    assert chat.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    other = await Chat.open(client)
    await other.hello()
    assert (await other.say("fine", "c"))["type"] == "ack"


async def test_bad_visitor_token_gets_a_new_visitor(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    chat = await Chat.open(client)
    welcome, _ = await chat.hello()
    token = welcome["visitor_token"]
    await chat.say("mine", "c1")
    await chat.reply()

    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "garbage", "x" * 512):
        stranger = await Chat.open(client)
        other, history = await stranger.hello(bad, last_seq=0)
        assert other["visitor_token"] != token
        assert other["customer"] is None and history == []
        await stranger.close()
    same = await Chat.open(client)
    again, history = await same.hello(token)
    assert again["visitor_token"] == token and len(history) == 2


async def test_signed_user_is_tied_to_the_account(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    secret = "s3cret-shared-with-the-site"
    app = build_app(tmp_path, webchat_identity_secret=secret)
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    user = {"id": "C-1001", "name": "Jane Doe",
            "signature": sign_user_id(secret.encode(), "C-1001").upper()}  # fmt: skip
    welcome, _ = await chat.hello(user=user)
    assert welcome["customer"] == {"name": "Jane Doe", "user_id": "C-1001"}
    await chat.say("where is my order", "u1")
    await chat.reply()
    customer = await app[STORE].find_customer(Identity(kind=IdentityKind.ACCOUNT, value="C-1001"))
    assert customer is not None
    assert customer.account_ref == "C-1001" and customer.display_name == "Jane Doe"
    assert [(i.key, i.verified) for i in customer.identities] == [
        ("account:C-1001", Verification.HMAC)
    ]
    # The same user on another device (another visitor token) gets the same chat.
    laptop = await Chat.open(client)
    welcome, history = await laptop.hello(user=user)
    assert welcome["customer"] == {"name": "Jane Doe", "user_id": "C-1001"}
    assert [m["text"] for m in history] == ["where is my order", "echo: where is my order"]


async def test_forged_signature_is_refused_and_chat_stays_anonymous(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    secret = "s3cret-shared-with-the-site"
    app = build_app(tmp_path, webchat_identity_secret=secret)
    client = await aiohttp_client(app)
    forged = [
        {"id": "C-1001", "name": "Jane", "signature": sign_user_id(b"wrong secret", "C-1001")},
        {"id": "C-1001", "name": "Jane", "signature": sign_user_id(secret.encode(), "C-1002")},
        {"id": "C-1001", "name": "Jane", "signature": ""},
        {"id": "C-1001", "name": "Jane", "signature": "é" * 64},
    ]
    for i, user in enumerate(forged):
        chat = await Chat.open(client)
        welcome, _ = await chat.hello(user=user)
        error = next(f for f in chat.frames if f["type"] == "error")
        assert error["code"] == "invalid_signature"
        assert welcome["customer"] is None
        await chat.say("hi", f"f{i}")
        await chat.reply()
        await chat.close()
    assert await app[STORE].find_customer(Identity.parse("account:C-1001")) is None
    await app[DISPATCHER].drain()
    # Unsigned claims never link: every forged visitor is its own anonymous customer.
    for seq_owner in range(1, 5):
        customer = await app[STORE].get_customer(seq_owner)
        assert customer.account_ref is None and customer.display_name is None
        assert [i.kind for i in customer.identities] == [IdentityKind.WEBCHAT]


async def test_a_handover_is_one_honest_notice(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    # Nobody is on duty: the visitor is not told they are being connected, only the
    # queue's one notice (stored, so a reload shows it again).
    app = build_app(tmp_path)
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    welcome, _ = await chat.hello()
    await chat.say("human", "h1")
    assert (await chat.reply())["text"] == "connecting you"
    notice = await chat.until(lambda f: f["type"] == "message" and f["author"] == "system")
    assert notice["text"].startswith("Nobody from our team is free right now.")
    await chat.send({"type": "ping"})
    await chat.until(lambda f: f["type"] == "pong")
    assert [f for f in chat.frames if f["type"] == "notice"] == []
    shown = [f["text"] for f in chat.frames if f["type"] == "message" and f["author"] != "customer"]
    assert shown == ["connecting you", notice["text"]]
    again = await Chat.open(client)
    _, history = await again.hello(token=welcome["visitor_token"])
    assert [m["text"] for m in history if m["author"] == "system"] == [notice["text"]]


async def test_origin_is_checked_when_configured(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(
        build_app(tmp_path, webchat_allowed_origins=["https://shop.example"])
    )
    for headers in ({"Origin": "https://evil.example"}, {}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/webchat/ws", headers=headers)
        assert refused.value.status == 403
    chat = await Chat.open(client, headers={"Origin": "https://shop.example"})
    await chat.hello()


async def test_plain_get_on_the_socket_is_a_400(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    resp = await client.get("/webchat/ws")
    assert resp.status == 400
    assert (await client.get("/healthz")).status == 200


async def test_open_connections_are_counted(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(build_app(tmp_path))

    async def gauge() -> list[str]:
        text = await (await client.get("/metrics")).text()
        return [line for line in text.splitlines()
                if line.startswith('gateway_open_connections{channel="webchat"}')]  # fmt: skip

    chat = await Chat.open(client)
    await chat.hello()
    assert await gauge() == ['gateway_open_connections{channel="webchat"} 1.0']
    await chat.close()
    for _ in range(50):
        if await gauge() == ['gateway_open_connections{channel="webchat"} 0.0']:
            break
        await asyncio.sleep(0.02)
    assert await gauge() == ['gateway_open_connections{channel="webchat"} 0.0']


async def test_random_garbage_never_takes_the_socket_down(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    rng = random.Random(1234)
    pieces = ['{"type":', '"message"', '"hello"', '"text":', '"client_id":', "null", "[", "]",
              "{", "}", ",", '"\\ud83d"', '"\\u0000"', "1e999", "-1", '"' + "é" * 50 + '"',
              "true", ":", '"x"']  # fmt: skip
    # 0 turns the per-socket frame limit off: the default would refuse most of this flood.
    client = await aiohttp_client(build_app(tmp_path, webchat_frames_per_minute=0))
    chat = await Chat.open(client)
    await chat.hello()
    for _ in range(300):
        await chat.ws.send_str("".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))))
    for i in range(5):
        text = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(40))
        await chat.send({"type": "message", "text": text + "!", "client_id": f"r{i}"})
    await chat.send({"type": "message", "text": "still fine?", "client_id": "last"})
    reply = await chat.until(lambda f: f.get("text") == "echo: still fine?")
    assert reply["author"] == "agent"
    errors = [f for f in chat.frames if f["type"] == "error"]
    assert errors and all(f["code"] != "internal" for f in errors)


async def test_a_flooding_socket_is_refused_and_its_messages_go_through_later(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    # A burst of 3 frames, then one every 2 s: hello and two messages pass at once.
    app = build_app(tmp_path, webchat_frame_burst=3, webchat_frames_per_minute=30)
    client = await aiohttp_client(app)
    chat = await Chat.open(client)
    welcome, _ = await chat.hello()
    for i in range(6):
        await chat.send({"type": "message", "text": f"flood {i}", "client_id": f"m{i}"})
    outcomes: dict[str, str] = {}
    while len(outcomes) < 6:
        frame = await chat.until(lambda f: f["type"] in ("ack", "error"))
        outcomes[frame["client_id"]] = frame["type"] if frame["type"] == "ack" else frame["code"]
    assert outcomes == {
        "m0": "ack", "m1": "ack", "m2": "rate_limited", "m3": "rate_limited",
        "m4": "rate_limited", "m5": "rate_limited",
    }  # fmt: skip

    # Refused frames were not processed: only the two acknowledged messages are stored.
    visitor = app[WEBCHAT].tokens.load(welcome["visitor_token"])
    assert visitor is not None
    customer = await app[STORE].find_customer(Identity(kind=IdentityKind.WEBCHAT, value=visitor))
    assert customer is not None
    await app[DISPATCHER].drain()
    stored = await app[STORE].history(customer.id)
    texts = [m.text for m in stored if m.author is AuthorKind.CUSTOMER]
    assert texts == ["flood 0", "flood 1"]
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_bad_input_total{channel="webchat",reason="rate_limited"} 4.0' in metrics

    # Once the bucket has drained a little, the client's resend goes through.
    await asyncio.sleep(2.2)
    await chat.send({"type": "message", "text": "flood 2", "client_id": "m2"})
    ack = await chat.until(lambda f: f["type"] in ("ack", "error") and f["client_id"] == "m2")
    assert ack["type"] == "ack" and ack["duplicate"] is False
    await chat.close()


async def test_signing_in_carries_the_anonymous_chat_into_the_account(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    secret = "s3cret-shared-with-the-site"
    app = build_app(tmp_path, webchat_identity_secret=secret)
    client = await aiohttp_client(app)
    anon = await Chat.open(client)
    welcome, _ = await anon.hello()
    token = welcome["visitor_token"]
    await anon.say("hi, just browsing", "a1")
    await anon.reply()
    await anon.close()

    # A forged sign-in with the same token joins nothing: still the anonymous chat.
    forged = await Chat.open(client)
    bad = {"id": "C-1001", "name": "Jane", "signature": sign_user_id(b"wrong", "C-1001")}
    welcome, history = await forged.hello(token, user=bad)
    assert welcome["customer"] == {"name": None, "user_id": None}
    assert _visitor(app, welcome) == app[WEBCHAT].tokens.load(token)
    assert [m["text"] for m in history] == ["hi, just browsing", "echo: hi, just browsing"]
    await forged.close()
    assert await app[STORE].find_customer(Identity.parse("account:C-1001")) is None

    # The site signs the visitor in: the same browser (token) now says who they are.
    user = _jane(secret)
    signed = await Chat.open(client)
    welcome, history = await signed.hello(token, user=user)
    assert welcome["customer"] == {"name": "Jane Doe", "user_id": "C-1001"}
    assert [m["text"] for m in history] == ["hi, just browsing", "echo: hi, just browsing"]
    await signed.say("where is my order", "u1")
    assert (await signed.reply())["seq"] == 4
    await signed.close()
    await app[DISPATCHER].drain()
    customer = await app[STORE].find_customer(Identity.parse("account:C-1001"))
    assert customer is not None and customer.account_ref == "C-1001"
    kinds = sorted(i.kind for i in customer.identities)
    assert kinds == [IdentityKind.ACCOUNT, IdentityKind.WEBCHAT]
    assert [m.seq for m in await app[STORE].history(customer.id)] == [1, 2, 3, 4]

    # The browser got a new token: once signed out, it is a new anonymous visitor who
    # sees nothing of the account's chat.
    assert _visitor(app, welcome) != app[WEBCHAT].tokens.load(token)
    after = await Chat.open(client)
    welcome, history = await after.hello(welcome["visitor_token"])
    assert welcome["customer"] is None and history == []
    await after.close()


async def test_signing_in_merges_the_anonymous_chat_after_the_accounts_own(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    secret = "s3cret-shared-with-the-site"
    app = build_app(tmp_path, webchat_identity_secret=secret)
    client = await aiohttp_client(app)
    user = _jane(secret)
    laptop = await Chat.open(client)
    await laptop.hello(user=user)
    await laptop.say("signed in on the laptop", "l1")
    await laptop.reply()
    await laptop.close()
    phone = await Chat.open(client)
    welcome, _ = await phone.hello()
    await phone.say("anonymous on the phone", "p1")
    await phone.reply()
    await phone.close()
    await app[DISPATCHER].drain()
    account = await app[STORE].find_customer(Identity.parse("account:C-1001"))
    assert account is not None

    phone = await Chat.open(client)
    _, history = await phone.hello(welcome["visitor_token"], user=user)
    # The account's record survives with its numbering; the phone's messages follow it.
    assert [(m["seq"], m["text"]) for m in history] == [
        (1, "signed in on the laptop"), (2, "echo: signed in on the laptop"),
        (3, "anonymous on the phone"), (4, "echo: anonymous on the phone"),
    ]  # fmt: skip
    await phone.close()
    merged = await app[STORE].find_customer(Identity.parse(f"webchat:{_visitor(app, welcome)}"))
    assert merged is not None and merged.id == account.id
    conversation = (await app[STORE].history(account.id))[-1].conversation_id
    kinds = [e.kind for e in await app[STORE].events(conversation)]
    assert "customer.merged" in kinds


def _jane(secret: str) -> Frame:
    """The site's signed-in user C-1001, signed with `secret`."""
    signature = sign_user_id(secret.encode(), "C-1001")
    return {"id": "C-1001", "name": "Jane Doe", "signature": signature}


def _visitor(app: web.Application, welcome: Frame) -> str:
    visitor = app[WEBCHAT].tokens.load(welcome["visitor_token"])
    assert visitor is not None
    return visitor
