"""The email channel end to end: real `smtplib` → the embedded SMTP server → the store
and the agent → the relay (a local SMTP server that catches the replies)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.models import ChannelKind, DeliveryStatus, Direction, Identity, IdentityKind
from tests.channels.email.conftest import SUPPORT, CatchingRelay, Mailer, OpenMailer
from tests.support.brains import EchoBrain

CORPUS = Path(__file__).parent / "corpus"
JANE = "jane.doe@gmail.com"


def email(address: str) -> Identity:
    return Identity(kind=IdentityKind.EMAIL, value=address)


def body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def assert_threaded(reply: EmailMessage, answering: EmailMessage) -> None:
    assert reply["In-Reply-To"] == answering["Message-ID"]
    refs = str(reply["References"]).split()
    assert refs[-1] == answering["Message-ID"]
    for earlier in str(answering.get("References", "")).split():
        assert earlier in refs
    assert str(reply["Subject"]).startswith("Re: ")
    assert not str(reply["Subject"]).startswith("Re: Re:")
    assert reply["Auto-Submitted"] == "auto-replied"
    assert str(reply["Message-ID"]).endswith("@example.com>")
    assert reply["From"].addresses[0].addr_spec == SUPPORT


async def test_a_three_message_thread_stays_one_conversation(open_mailer: OpenMailer) -> None:
    mailer = await open_mailer()  # the real embedded agent
    relay = mailer.relay
    first = mailer.compose(f"Jane Doe <{JANE}>", "Where is my order?", subject="Order status")
    await mailer.send(first)
    assert len(relay.mails) == 1
    assert relay.envelopes[0] == (SUPPORT, [JANE])
    assert_threaded(relay.mails[0], first)
    assert relay.mails[0]["Subject"] == "Re: Order status"
    second = mailer.compose(JANE, "It is order 1001.", reply_to=relay.mails[0])
    await mailer.send(second)
    assert len(relay.mails) == 2
    assert_threaded(relay.mails[1], second)
    third = mailer.compose(JANE, "Thanks!", reply_to=relay.mails[1])
    await mailer.send(third)
    assert len(relay.mails) == 3
    assert_threaded(relay.mails[2], third)

    customer = await mailer.store.find_customer(email(JANE))
    assert customer is not None and customer.display_name == "Jane Doe"
    history = await mailer.store.history(customer.id)
    assert len({m.conversation_id for m in history}) == 1
    assert [m.direction for m in history] == [Direction.INBOUND, Direction.OUTBOUND] * 3
    assert [m.text for m in history if m.direction is Direction.INBOUND] == [
        "Where is my order?", "It is order 1001.", "Thanks!",
    ]  # fmt: skip
    # Each reply is recorded as sent under the Message-ID it went out with.
    for out, mail in zip(
        [m for m in history if m.direction is Direction.OUTBOUND], relay.mails, strict=True
    ):
        assert out.status is DeliveryStatus.SENT
        assert out.external_id == f"{SUPPORT}:{mail['Message-ID']}"


async def test_an_autoresponder_gets_at_most_one_reply(open_mailer: OpenMailer) -> None:
    mailer = await open_mailer(brain=EchoBrain())
    relay = mailer.relay
    await mailer.send(mailer.compose("away@example.net", "Question about my bill"))
    # The customer's autoresponder answers everything we send, as RFC 3834 asks.
    for _ in range(4):
        auto = mailer.compose(
            "away@example.net", "I am away until Monday.", reply_to=relay.mails[-1],
            headers={"Auto-Submitted": "auto-replied"},
        )  # fmt: skip
        await mailer.send(auto)
    assert len(relay.mails) == 1
    customer = await mailer.store.find_customer(email("away@example.net"))
    assert customer is not None
    assert len(await mailer.store.history(customer.id)) == 2  # auto-replies are not stored


async def test_a_naive_autoresponder_is_stopped_by_the_rate_limit(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_replies_per_hour=1)
    relay = mailer.relay
    await mailer.send(mailer.compose("loop@example.net", "hello"))
    for _ in range(3):  # answers every mail, with no automatic-mail header at all
        await mailer.send(mailer.compose("loop@example.net", "Thanks for your mail!",
                                         reply_to=relay.mails[-1]))  # fmt: skip
    assert len(relay.mails) == 1
    customer = await mailer.store.find_customer(email("loop@example.net"))
    assert customer is not None
    history = await mailer.store.history(customer.id)
    assert len(history) == 5  # stored for reps, not answered
    events = await mailer.store.events(history[0].conversation_id)
    assert sum(e.kind == "email.rate_limited" for e in events) == 3


async def test_bounces_lists_and_no_reply_senders_are_never_answered(mailer: Mailer) -> None:
    for name in ("bounce_dsn", "mailing_list", "noreply_sender", "out_of_office",
                 "exchange_oof", "precedence_bulk"):  # fmt: skip
        await mailer.send((CORPUS / f"{name}.eml").read_bytes())
    plain = mailer.compose("someone@example.net", "hello")
    await mailer.send(plain, mail_from="")  # a null return path: a bounce
    assert mailer.relay.mails == []
    assert await mailer.store.find_customer(email("someone@example.net")) is None


async def test_another_sender_quoting_a_thread_starts_their_own(mailer: Mailer) -> None:
    relay = mailer.relay
    await mailer.send(mailer.compose(JANE, "My order 1001 is late"))
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    # Bob answers Jane's thread (a forwarded copy, a shared mailbox...).
    intruder = mailer.compose("bob@example.org", "What about mine?", reply_to=relay.mails[0])
    await mailer.send(intruder)
    bob = await mailer.store.find_customer(email("bob@example.org"))
    assert bob is not None and bob.id != jane.id
    jane_history = await mailer.store.history(jane.id)
    assert [m.text for m in jane_history if m.direction is Direction.INBOUND] == [
        "My order 1001 is late"
    ]
    bob_history = await mailer.store.history(bob.id)
    assert bob_history[0].conversation_id != jane_history[0].conversation_id
    assert relay.envelopes[-1] == (SUPPORT, ["bob@example.org"])
    # A mail of Jane's own without threading headers starts a new conversation.
    await mailer.send(mailer.compose(JANE, "Another question", subject="New topic"))
    history = await mailer.store.history(jane.id)
    assert len({m.conversation_id for m in history}) == 2


async def test_the_reply_token_in_the_reply_to_address_threads(mailer: Mailer) -> None:
    relay = mailer.relay
    await mailer.send(mailer.compose(JANE, "first"))
    reply_to = str(relay.mails[0]["Reply-To"])
    assert reply_to.startswith("support+c") and reply_to.endswith("@example.com")
    # A client that drops In-Reply-To/References but writes to the Reply-To address.
    bare = mailer.compose(JANE, "second", subject="no headers", to=reply_to)
    await mailer.send(bare, rcpt=reply_to)
    # The token is no good for anyone else.
    stranger = mailer.compose("eve@example.org", "let me in", to=reply_to)
    await mailer.send(stranger, rcpt=reply_to)
    jane = await mailer.store.find_customer(email(JANE))
    eve = await mailer.store.find_customer(email("eve@example.org"))
    assert jane is not None and eve is not None
    jane_history = await mailer.store.history(jane.id)
    assert len({m.conversation_id for m in jane_history}) == 1 and len(jane_history) == 4
    eve_history = await mailer.store.history(eve.id)
    assert eve_history[0].conversation_id != jane_history[0].conversation_id


async def test_a_resent_message_id_is_stored_and_answered_once(mailer: Mailer) -> None:
    msg = mailer.compose(JANE, "only once")
    await mailer.send(msg)
    await mailer.send(msg)
    assert len(mailer.relay.mails) == 1
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    assert len(await mailer.store.history(jane.id)) == 2


async def test_other_recipients_are_refused(mailer: Mailer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await mailer.send(mailer.compose(JANE, "hi", to="sales@example.com"),
                          rcpt="sales@example.com")  # fmt: skip


async def test_html_only_odd_charsets_and_malformed_mime(mailer: Mailer) -> None:
    for name, sender, text in [
        ("html_only", "bob@example.org", "I asked for a password reset twice"),
        ("iso2022jp", "taro@example.jp", "注文はどこですか？"),
        ("windows1252", "francois@example.fr", "coûte 20€ de trop"),
        ("unknown_charset", "lee@example.net", "Café order"),
        ("malformed_mime", "broken@example.com", "my account is locked"),
    ]:
        await mailer.send((CORPUS / f"{name}.eml").read_bytes(), mail_from=sender)
        customer = await mailer.store.find_customer(email(sender))
        assert customer is not None, name
        first = (await mailer.store.history(customer.id))[0]
        assert first.channel is ChannelKind.EMAIL
        assert text in first.text, name
    assert len(mailer.relay.mails) == 5


async def test_attachments_are_stored_on_disk(mailer: Mailer, tmp_path: Path) -> None:
    await mailer.send((CORPUS / "attachment_pdf.eml").read_bytes(), mail_from=JANE)
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    message = (await mailer.store.history(jane.id))[0]
    assert [(a.filename, a.content_type, a.size) for a in message.attachments] == [
        ("photo.png", "image/png", 70), ("reçu.pdf", "application/pdf", 58),
    ]  # fmt: skip
    for att in message.attachments:
        assert att.path is not None and att.path.startswith("attachments/")
        assert (tmp_path / att.path).stat().st_size == att.size
    assert (tmp_path / message.attachments[1].path).read_bytes().startswith(b"%PDF")  # type: ignore[operator]


async def test_a_huge_mail_is_refused_cleanly(open_mailer: OpenMailer) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_max_bytes=64 * 1024)
    msg = mailer.compose(JANE, "see attached")
    msg.add_attachment(b"\0" * 200_000, maintype="application", subtype="octet-stream",
                       filename="big.bin")  # fmt: skip
    with pytest.raises(smtplib.SMTPException) as refused:
        await mailer.send(msg)
    assert getattr(refused.value, "smtp_code", None) == 552
    assert await mailer.store.find_customer(email(JANE)) is None
    # The server is still fine afterwards.
    await mailer.send(mailer.compose(JANE, "small one"))
    assert len(mailer.relay.mails) == 1


async def test_an_oversized_attachment_is_refused_but_the_mail_is_kept_and_answered(
    open_mailer: OpenMailer, tmp_path: Path
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_max_attachment_bytes=64 * 1024)
    msg = mailer.compose(JANE, "my invoice and a video of the fault")
    msg.add_attachment(b"%PDF-1.4 small", maintype="application", subtype="pdf",
                       filename="invoice.pdf")  # fmt: skip
    msg.add_attachment(b"\1" * 200_000, maintype="video", subtype="mp4", filename="fault.mp4")
    await mailer.send(msg)
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    inbound, reply = await mailer.store.history(jane.id)
    assert inbound.text == "my invoice and a video of the fault"
    kept, refused = inbound.attachments
    assert (kept.filename, kept.refused, kept.size) == ("invoice.pdf", None, 14)
    assert kept.path is not None and (tmp_path / kept.path).read_bytes() == b"%PDF-1.4 small"
    assert (refused.filename, refused.content_type, refused.size, refused.refused) == (
        "fault.mp4", "video/mp4", 200_000, "too_large",
    )  # fmt: skip
    assert refused.path is None and refused.url is None
    on_disk = [p.stat().st_size for p in (tmp_path / "attachments").rglob("*") if p.is_file()]
    assert on_disk == [14]
    # The customer is told in the answer, and the stored answer is what was sent.
    [mail] = mailer.relay.mails
    sent = body(mail)
    assert sent.startswith("echo: my invoice")
    assert '"fault.mp4" (195 KB)' in sent and "up to 64 KB" in sent
    assert "invoice.pdf" not in sent
    assert reply.text.strip() == sent.replace("\r\n", "\n").strip()
    # Told once: the next answer in the thread says nothing more about it.
    await mailer.send(mailer.compose(JANE, "did you get it?", reply_to=mail))
    assert "fault.mp4" not in body(mailer.relay.mails[-1])


async def test_without_a_relay_replies_are_recorded_as_failed(
    open_mailer: OpenMailer, relay: CatchingRelay
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_relay=None)
    await mailer.send(mailer.compose(JANE, "anyone there?"))
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    out = (await mailer.store.history(jane.id))[-1]
    assert out.direction is Direction.OUTBOUND
    assert out.status is DeliveryStatus.FAILED and out.error_code == "email_off"
    assert relay.mails == []


async def test_credentials_are_never_sent_without_tls(
    open_mailer: OpenMailer, relay: CatchingRelay
) -> None:
    # The relay offers no STARTTLS: the reply fails instead of logging in in the clear.
    url = f"smtp://user:secret@127.0.0.1:{relay.port}"
    mailer = await open_mailer(brain=EchoBrain(), email_relay=url)
    await mailer.send(mailer.compose(JANE, "hello"))
    jane = await mailer.store.find_customer(email(JANE))
    assert jane is not None
    out = (await mailer.store.history(jane.id))[-1]
    assert out.status is DeliveryStatus.FAILED and out.error_code == "smtp_error"
    assert relay.mails == []
