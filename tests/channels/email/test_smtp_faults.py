"""Mail that used to stall the gateway or get the wrong SMTP answer, over real SMTP:
a huge HTML mail parsed off the loop while a chat is answered, a parse that runs past
its bound, structures and addresses that fail the same way on every try (accepted
when they can be stored, refused for good when not), long lines, lenient From, and
threading on the sender's own reference."""

from __future__ import annotations

import asyncio
import smtplib
import time

import pytest

from channels.email import codec
from channels.email.state import EMAIL
from gateway.app import DISPATCHER
from gateway.models import Direction, Identity, IdentityKind
from tests.channels.chat import Chat
from tests.channels.email.conftest import SUPPORT, Mailer, OpenMailer
from tests.channels.email.test_reading import nested
from tests.support.brains import EchoBrain


def email(address: str) -> Identity:
    return Identity(kind=IdentityKind.EMAIL, value=address)


def huge_html_mail(megabytes: float = 9.0) -> bytes:
    """A text/html mail of deeply nested elements, in short lines, of about `megabytes`."""
    depth = int(megabytes * 1024 * 1024 / (len("<div><span>\r\n") + len("</span></div>\r\n")))
    body = (
        b"<html><body>\r\n"
        + b"<div><span>\r\n" * depth
        + b"Where is my order 1001?\r\n"
        + b"</span></div>\r\n" * depth
        + b"</body></html>\r\n"
    )
    head = (
        b"From: Big Sender <big@example.net>\r\nTo: support@example.com\r\n"
        b"Subject: big\r\nMessage-ID: <big-1@example.net>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return head + body


async def test_a_chat_is_answered_within_200_ms_while_a_9_mb_html_mail_is_parsed(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_max_bytes=12 * 1024 * 1024)
    raw = huge_html_mail(9.0)
    assert len(raw) > 9 * 1000 * 1000
    chat = await Chat.open(mailer.client)
    await chat.hello()
    await chat.say("warm up", "c0")
    await chat.reply()
    parser = mailer.app[EMAIL].channel.parser

    def deliver() -> dict[str, tuple[int, bytes]]:  # a patient client: the parse takes seconds
        with smtplib.SMTP("127.0.0.1", mailer.port, timeout=120) as smtp:
            return smtp.sendmail("big@example.net", [SUPPORT], raw)

    sending = asyncio.create_task(asyncio.to_thread(deliver))
    while parser.in_flight == 0:  # the mail is received and handed to a parse worker
        assert not sending.done(), sending
        await asyncio.sleep(0.005)
    waits = []
    while parser.in_flight and len(waits) < 20:
        started = time.perf_counter()
        await chat.say(f"still there? {len(waits)}", f"c{len(waits) + 1}")
        reply = await chat.reply()
        waits.append(time.perf_counter() - started)
        assert reply["text"].startswith("echo: still there?")
    assert waits, "the parse ended before a chat message could be sent"
    assert max(waits) < 0.2, [round(w, 3) for w in waits]
    assert await sending == {}
    await mailer.app[DISPATCHER].drain()
    customer = await mailer.store.find_customer(email("big@example.net"))
    assert customer is not None
    stored = (await mailer.store.history(customer.id))[0]
    assert stored.text == "Where is my order 1001?"


async def test_a_parse_past_its_bound_is_killed_and_the_mail_kept_from_its_headers(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_parse_timeout_s=0.05, email_parse_workers=1)
    await mailer.send(huge_html_mail(1.0), mail_from="big@example.net")
    parser = mailer.app[EMAIL].channel.parser
    assert parser.killed == 1
    customer = await mailer.store.find_customer(email("big@example.net"))
    assert customer is not None
    history = await mailer.store.history(customer.id)
    assert history[0].text == codec.TIMEOUT_NOTE
    assert len(mailer.relay.mails) == 1  # answered as any mail is
    # A fresh worker reads the next mail.
    parser.timeout_s = 20.0
    await mailer.send(mailer.compose("next@example.net", "A small one."))
    nxt = await mailer.store.find_customer(email("next@example.net"))
    assert nxt is not None
    assert (await mailer.store.history(nxt.id))[0].text == "A small one."


async def test_multipart_nested_1000_deep_is_accepted_and_stored(mailer: Mailer) -> None:
    assert await mailer.send(nested(1000), mail_from="deep@example.com") == {}
    customer = await mailer.store.find_customer(email("deep@example.com"))
    assert customer is not None
    assert (await mailer.store.history(customer.id))[0].text == codec.UNREADABLE_NOTE


async def test_a_from_too_long_to_be_an_address_is_refused_for_good(mailer: Mailer) -> None:
    sender = "x" * 400 + "@example.com"
    raw = f"From: {sender}\r\nTo: support@example.com\r\nSubject: hi\r\n\r\nhello\r\n".encode()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await mailer.send(raw, mail_from="someone@example.com")
    assert refused.value.smtp_code == 550  # permanent: the sender does not retry
    assert mailer.relay.mails == []


async def test_a_1523_character_line_is_accepted(mailer: Mailer) -> None:
    line = "Bonjour, " + "ma commande n'est pas arrivée " * 50
    line = line[:1523]
    raw = (
        "From: Outlook User <user@outlook.example>\r\nTo: support@example.com\r\n"
        "Subject: commande\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{line}\r\n"
    ).encode()
    assert max(len(x) for x in raw.split(b"\r\n")) > 1523
    assert await mailer.send(raw, mail_from="user@outlook.example") == {}
    customer = await mailer.store.find_customer(email("user@outlook.example"))
    assert customer is not None
    assert (await mailer.store.history(customer.id))[0].text == line.strip()


async def test_a_from_only_a_lenient_parse_reads_is_accepted(mailer: Mailer) -> None:
    raw = (
        b'From: "Jane <jane@example.org>\r\nTo: support@example.com\r\nSubject: hi\r\n\r\n'
        b"Where is my parcel?\r\n"
    )
    assert await mailer.send(raw, mail_from="jane@example.org") == {}
    assert await mailer.store.find_customer(email("jane@example.org")) is not None
    assert len(mailer.relay.mails) == 1


async def test_a_reply_finds_the_senders_own_mail_among_its_references(mailer: Mailer) -> None:
    relay = mailer.relay
    jane_first = mailer.compose("jane@example.org", "My order 1001 is late")
    await mailer.send(jane_first)
    bob_first = mailer.compose("bob@example.org", "My order 1002 is late too")
    await mailer.send(bob_first)
    # Jane answers Bob's message (a shared thread) and her client lists her own too.
    reply = mailer.compose("jane@example.org", "Any news?", subject="Re: late")
    reply["In-Reply-To"] = bob_first["Message-ID"]
    reply["References"] = f"{jane_first['Message-ID']} {bob_first['Message-ID']}"
    await mailer.send(reply)
    jane = await mailer.store.find_customer(email("jane@example.org"))
    assert jane is not None
    history = await mailer.store.history(jane.id)
    inbound = [m for m in history if m.direction is Direction.INBOUND]
    assert [m.text for m in inbound] == ["My order 1001 is late", "Any news?"]
    assert len({m.conversation_id for m in history}) == 1
    assert len(relay.mails) == 3
