"""The pure email codec: the .eml corpus (each file with its expected parse next to it),
loop detection, reply building and reply tokens."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from channels.email import codec

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.eml"))


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 15
    assert all(case.with_suffix(".json").is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_parses_as_expected(case: Path) -> None:
    expected: dict[str, Any] = json.loads(case.with_suffix(".json").read_text("utf-8"))
    mail = codec.parse(case.read_bytes())
    got = {
        "sender": mail.sender,
        "display_name": mail.display_name,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": list(mail.references),
        "subject": mail.subject,
        "text": mail.text,
        "auto": mail.auto is not None,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in mail.attachments
        ],
    }
    assert got == expected


def test_a_null_envelope_sender_is_a_bounce() -> None:
    raw = b"From: someone@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    assert codec.parse(raw).auto is None
    assert codec.parse(raw, envelope_from="").auto == "null return path"
    assert codec.parse(raw, envelope_from="<>").auto == "null return path"
    assert codec.parse(raw, envelope_from="MAILER-DAEMON@mx.example").auto is not None
    assert codec.parse(raw + b"", envelope_from="someone@example.com").auto is None
    looped = b"X-Loop: support@example.com\r\n" + raw
    assert codec.parse(looped).auto == "x-loop"
    explicit_no = b"Auto-Submitted: no\r\n" + raw
    assert codec.parse(explicit_no).auto is None


def test_a_mail_without_a_sender_is_refused() -> None:
    with pytest.raises(codec.MailError):
        codec.parse(b"Subject: who\r\n\r\nnobody\r\n")


def test_a_reply_threads_and_is_marked_automatic() -> None:
    msg = codec.build_reply(
        sender="support@example.com",
        to="jane@example.com",
        subject="RE: Re: Where is my order?",
        text="It ships today. — Support",
        domain="example.com",
        in_reply_to="<c2@mail.gmail.com>",
        references=("<c1@mail.gmail.com>", "<r1@example.com>"),
        reply_to="support+c7.0123456789@example.com",
    )
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Re: Where is my order?"
    assert parsed["In-Reply-To"] == "<c2@mail.gmail.com>"
    assert parsed["References"] == "<c1@mail.gmail.com> <r1@example.com> <c2@mail.gmail.com>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert str(parsed["Message-ID"]).endswith("@example.com>")
    assert parsed["Reply-To"] == "support+c7.0123456789@example.com"
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "It ships today. — Support"
    # Our own reply is automatic mail, so another gateway never answers it.
    assert codec.parse(msg.as_bytes()).auto is not None


def test_reply_subject() -> None:
    assert codec.reply_subject("Hello") == "Re: Hello"
    assert codec.reply_subject("Re: RE: AW: Hello") == "Re: Hello"
    assert codec.reply_subject("") == "Re: Your message"


def test_reply_tokens_are_signed() -> None:
    secret = b"k" * 32
    token = codec.make_token(secret, 42)
    assert codec.read_token(secret, token) == 42
    assert codec.read_token(secret, token.upper()) == 42
    assert codec.read_token(b"x" * 32, token) is None
    assert codec.read_token(secret, token.replace("c42", "c43")) is None
    assert codec.read_token(secret, "garbage") is None
    address = codec.plus_address("support@example.com", token)
    assert codec.split_plus(address, "support@example.com") == (True, token)
    assert codec.split_plus("Support@Example.com", "support@example.com") == (True, None)
    assert codec.split_plus("sales@example.com", "support@example.com") == (False, None)
