"""The SMS codec and segmenting, table-tested (pure functions)."""

from __future__ import annotations

import pytest

from channels.sms.codec import Keyword, keyword, parse_inbound, parse_status
from channels.sms.segments import (
    count_segments,
    encoding,
    fit_sms,
    plain_text,
    split_segments,
)
from gateway.errors import ProtocolError
from gateway.models import ChannelKind, DeliveryStatus, Verification

SM1 = "SM" + "1" * 32
MM9 = "MM" + "9" * 32
BASE = {"MessageSid": SM1, "From": "+15551234567", "To": "+15557654321", "Body": "hi",
        "AccountSid": "AC" + "a" * 32, "NumMedia": "0"}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        *[(w, Keyword.STOP) for w in ("STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT",
                                      "OPTOUT", "revoke", " stop. ", "Stop!")],
        *[(w, Keyword.START) for w in ("START", "yes", "Unstop")],
        *[(w, Keyword.HELP) for w in ("HELP", "info")],
        ("please stop texting", None),
        ("stop it", None),
        ("helpful", None),
        ("", None),
    ],
)  # fmt: skip
def test_keywords(body: str, expected: Keyword | None) -> None:
    assert keyword(body) is expected


def test_parse_inbound_text_and_media() -> None:
    got = parse_inbound({**BASE, "From": "+1 (555) 123-4567"})
    msg = got.message
    assert (msg.channel, msg.identity.key, msg.identity.verified) == (
        ChannelKind.SMS, "phone:+15551234567", Verification.SENDER
    )  # fmt: skip
    assert (msg.text, msg.external_id, got.to, got.keyword) == ("hi", SM1, "+15557654321", None)

    mms = parse_inbound({**BASE, "MessageSid": "", "SmsMessageSid": MM9, "Body": "STOP",
                         "NumMedia": "2", "MediaUrl0": "https://m/0", "MediaContentType0":
                         "image/png", "MediaUrl1": "https://m/1",
                         "MediaContentType1": ""})  # fmt: skip
    assert mms.message.external_id == MM9
    assert [(a.url, a.content_type) for a in mms.message.attachments] == [
        ("https://m/0", "image/png"), ("https://m/1", "application/octet-stream")
    ]  # fmt: skip
    assert mms.keyword is None  # a picture captioned STOP is not a keyword

    assert parse_inbound({**BASE, "Body": "stop"}).keyword is Keyword.STOP


@pytest.mark.parametrize(
    "form",
    [
        {k: v for k, v in BASE.items() if k != "MessageSid"},
        {**BASE, "From": ""},
        {**BASE, "From": "TWILIO"},
        {**BASE, "NumMedia": "two"},
        # Boundary shifts of a signed webhook (the signature joins names and values
        # without separators): the sid or a count swallowing the next field.
        {**{k: v for k, v in BASE.items() if k != "NumMedia"}, "MessageSid": SM1 + "NumMedia0"},
        {k: v for k, v in BASE.items() if k != "NumMedia"},
        {**BASE, "MessageSid": "SM1"},
        {**BASE, "MessageSid": "CA" + "1" * 32},
        {**BASE, "SmsMessageSid": "SM" + "2" * 32},  # two sids for one message
        {**BASE, "AccountSid": "AC" + "a" * 32 + "ApiVersion2010-04-01"},
        {**BASE, "NumMedia": "0 "},
        {**BASE, "NumMedia": "11"},
        {**BASE, "NumMedia": "1"},  # without its MediaUrl0
        {**BASE, "MediaUrl0": "https://m/0", "MediaContentType0": "image/png"},  # NumMedia 0
        {**BASE, "NumMedia": "1", "MediaUrl0": "http://m/0", "MediaContentType0": "image/png"},
    ],
)
def test_parse_inbound_refuses_malformed_forms(form: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        parse_inbound(form)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("accepted", "", (DeliveryStatus.QUEUED, None)),
        ("queued", "", (DeliveryStatus.QUEUED, None)),
        ("sending", "", (DeliveryStatus.SENDING, None)),
        ("sent", "", (DeliveryStatus.SENT, None)),
        ("delivered", "", (DeliveryStatus.DELIVERED, None)),
        ("undelivered", "30007", (DeliveryStatus.UNDELIVERED, "30007")),
        ("failed", "30008", (DeliveryStatus.FAILED, "30008")),
        ("canceled", "", (DeliveryStatus.FAILED, "canceled")),
        ("read", "", (DeliveryStatus.READ, None)),
        ("received", "", None),
    ],
)
def test_parse_status(
    status: str, error: str, expected: tuple[DeliveryStatus, str | None] | None
) -> None:
    got = parse_status({"MessageSid": SM1, "MessageStatus": status, "ErrorCode": error})
    assert (None if got is None else (got.status, got.error_code)) == expected
    with pytest.raises(ProtocolError):
        parse_status({"MessageSid": SM1, "MessageStatus": "exploded"})
    with pytest.raises(ProtocolError):
        parse_status({"MessageSid": SM1 + "MessageStatusdelivered", "MessageStatus": status})


@pytest.mark.parametrize(
    ("text", "enc", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),  # 153 + 8
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("Ça coûte 5 £, señor", "UCS-2", 1),  # û is not GSM-7
        ("é" * 160, "GSM-7", 1),
        ("a" * 70 + "’", "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # 70 UTF-16 code units
        ("😀" * 36, "UCS-2", 2),
        ("x" + "😀" * 33, "UCS-2", 1),  # 67 code units
        ("", "GSM-7", 0),
    ],
)
def test_encoding_and_segments(text: str, enc: str, segments: int) -> None:
    assert encoding(text) == enc
    assert count_segments(text) == segments
    assert "".join(split_segments(text)) == text


def test_pairs_are_never_split_across_segments() -> None:
    gsm = split_segments("a" * 152 + "€" + "b" * 10)
    assert gsm[0] == "a" * 152 and gsm[1].startswith("€")
    ucs = split_segments("x" * 66 + "😀" + "y" * 10)
    assert ucs[0] == "x" * 66 and ucs[1].startswith("😀")


def test_fit_keeps_short_texts_and_shortens_long_ones_at_sentences_or_words() -> None:
    assert fit_sms("Your order shipped.", 3).shortened is False
    sentences = " ".join(["Your order left the warehouse on Monday."] * 20)
    fitted = fit_sms(sentences, 2)
    assert fitted.shortened and fitted.segments <= 2 and fitted.encoding == "GSM-7"
    assert fitted.text.endswith("Monday. ...") and len(fitted.text) <= 306

    words = "word " * 100
    one = fit_sms(words, 1)
    assert one.segments == 1 and one.text.endswith("word...") and len(one.text) <= 160

    emoji = "Great news 🎉 " * 40
    fitted = fit_sms(emoji, 3)
    assert fitted.encoding == "UCS-2" and fitted.segments <= 3
    assert len(fitted.text.encode("utf-16-le")) <= 3 * 67 * 2

    nospace = "x" * 1000
    assert fit_sms(nospace, 1).text == "x" * 156 + "..."


def test_plain_text_strips_markdown_and_smart_punctuation() -> None:
    md = (
        "## Your order\n\n**Shipped** on *Monday* via `UPS`.\n"
        "* Track it [here](https://t.example/1)\n- Keep order_id_42\n"
        "> quoted\n\n\n\nDon’t worry — it’s on its way…"
    )
    assert plain_text(md) == (
        "Your order\n\nShipped on Monday via UPS.\n- Track it here (https://t.example/1)\n"
        "- Keep order_id_42\nquoted\n\nDon't worry - it's on its way..."
    )
    assert encoding(plain_text("It’s “fine”")) == "GSM-7"
