"""Reading mail as people and machines really write it: automatic mail recognised,
bytes decoded without mojibake, the reply cut from its quote in many languages, odd
From headers and structures that cannot be walked."""

from __future__ import annotations

import pytest

from channels.email import codec


def mail(headers: str, body: bytes | str = "Hello", *, sender: str = "a@example.com") -> bytes:
    raw = body.encode() if isinstance(body, str) else body
    top = f"From: {sender}\r\nTo: support@example.com\r\n{headers}"
    return top.encode() + b"\r\n" + raw


# --------------------------------------------------------------- automatic mail


@pytest.mark.parametrize(
    "headers",
    [
        "Subject: Auto reply: Your order\r\nX-Apple-Action: VACATION\r\n",
        "Subject: Auto reply: Your order\r\n",
        "Subject: Automatic reply: Refund\r\n",
        "Subject: Out of Office: Re: Refund\r\n",
        "Subject: Abwesenheitsnotiz: Ihre Anfrage\r\n",
        "Subject: Réponse automatique : Votre commande\r\n",
        "Subject: Respuesta automática: pedido\r\n",
        "Subject: Automatisch antwoord: bestelling\r\n",
        "Subject: Autosvar: ordre\r\n",
        "Subject: Automatyczna odpowiedź: zamówienie\r\n",
        "Subject: Автоматический ответ: заказ\r\n",
        "Subject: 自動応答: ご注文\r\n",
        "Subject: Hi\r\nX-Autoreply: yes\r\n",
        "Subject: Hi\r\nX-Autorespond: yes\r\n",
        "Subject: Hi\r\nPrecedence: junk\r\n",
        "Subject: Hi\r\nPrecedence: list\r\n",
        "Subject: Hi\r\nList-Id: <news.shop.example>\r\n",
        "Subject: Hi\r\nList-Subscribe: <mailto:join@lists.example>\r\n",
        "Subject: Hi\r\nList-Unsubscribe: <mailto:leave@lists.example>\r\n",
        "Subject: Hi\r\nMailing-List: contact help@lists.example; run by ezmlm\r\n",
        "Subject: Hi\r\nX-ML-Name: users\r\nX-ML-Count: 1234\r\n",
        "Subject: Undeliverable: Your order\r\n",
    ],
)
def test_automatic_mail_is_recognised(headers: str) -> None:
    assert codec.parse(mail(headers)).auto is not None


@pytest.mark.parametrize(
    "sender", ["post_master@mx.example.net", "postmaster@example.org", "MAILER-DAEMON@mx.example"]
)
def test_a_bounce_without_a_report_is_recognised(sender: str) -> None:
    raw = mail("Subject: Returned\r\n", "Your mail could not be delivered.", sender=sender)
    assert codec.parse(raw).auto is not None


@pytest.mark.parametrize(
    "subject",
    ["Out of stock again?", "Automatic renewal charged twice", "Replying about my order", "Away"],
)
def test_a_person_writing_about_such_things_is_answered(subject: str) -> None:
    assert codec.parse(mail(f"Subject: {subject}\r\n")).auto is None


# --------------------------------------------------------------------- charsets


def test_an_8bit_utf8_body_without_a_content_type_is_utf8() -> None:
    raw = mail("Subject: x\r\n", "Grüße aus Köln, ça va? Prix: 12 €".encode())
    assert codec.parse(raw).text == "Grüße aus Köln, ça va? Prix: 12 €"


def test_a_body_declared_us_ascii_that_is_utf8_is_utf8() -> None:
    headers = "Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    raw = mail(headers, "Il n’a pas été livré — encore.".encode())
    assert codec.parse(raw).text == "Il n’a pas été livré — encore."


def test_html_with_its_charset_only_in_a_meta_tag() -> None:
    markup = '<html><head><meta charset="windows-1251"></head><body><p>Где мой заказ?</p></body>'
    headers = "Subject: x\r\nContent-Type: text/html\r\n"
    assert codec.parse(mail(headers, markup.encode("cp1251"))).text == "Где мой заказ?"
    markup = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-2">'
        "</head><body>Zamówienie nie dotarło, proszę o pomoc.</body></html>"
    )
    text = codec.parse(mail(headers, markup.encode("iso-8859-2"))).text
    assert text == "Zamówienie nie dotarło, proszę o pomoc."


def test_cp1252_is_tried_before_replacement_characters() -> None:
    headers = "Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    text = codec.parse(mail(headers, "“Smart quotes” – café".encode("cp1252"))).text
    assert text == "“Smart quotes” – café"


def test_bytes_no_charset_can_read_keep_the_rest() -> None:
    headers = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
    text = codec.parse(mail(headers, b"ok \x81\x8d\x8f\x90\x9d ok")).text
    assert text.startswith("ok ") and text.endswith(" ok") and "\ufffd" in text


# -------------------------------------------------------------- reply extraction


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("Den 4. jan. 2016 kl. 19.03 skrev Neil Lalonde <neil@example.com>:", "da"),
        ("Den 4 jan. 2016 kl. 19:03 skrev Neil Lalonde <neil@example.com>:", "sv"),
        ("W dniu 4.01.2016 o 19:03, Neil Lalonde <neil@example.com> pisze:", "pl"),
        ("2016年1月4日(月) 19:03 Neil Lalonde <neil@example.com>:", "ja"),
        ("2016年1月4日 19:03，Neil Lalonde <neil@example.com> 写道：", "zh"),
        ("пн, 4 янв. 2016 г. в 19:03, Neil Lalonde <neil@example.com>:", "ru"),
        ("4 січ. 2016 р. о 19:03 Neil Lalonde <neil@example.com> пише:", "uk"),
        ("Em seg., 4 de jan. de 2016 às 19:03, Neil Lalonde <neil@example.com> escreveu:", "pt"),
        ("man. 4. jan. 2016 kl. 19:03 skrev Neil Lalonde <neil@example.com>:", "no"),
    ],
)
def test_quote_headers_in_many_languages_are_cut(header: str, language: str) -> None:
    text = f"Thanks, it arrived today.\n\n{header}\n\n> Your order has shipped.\n> Support\n"
    assert codec.parse(mail("Subject: Re: order\r\n", text)).text == "Thanks, it arrived today."


def test_a_quote_header_wrapped_over_lines_is_cut() -> None:
    text = (
        "Merci, c'est réglé.\n\n"
        'Le 4 janv. 2016 19:03, "Neil Lalonde"\n<neil@example.com>\na écrit :\n\n'
        "> Votre commande est partie.\n"
    )
    assert codec.parse(mail("Subject: Re: commande\r\n", text)).text == "Merci, c'est réglé."


def test_hyphen_lists_are_kept() -> None:
    text = "I need help with:\n\n- the invoice\n- the delivery address\n- a refund\n\nJane"
    got = codec.parse(mail("Subject: several things\r\n", text)).text
    assert "- the invoice\n- the delivery address\n- a refund" in got


def test_a_bottom_posted_reply_keeps_what_follows_the_quote() -> None:
    text = (
        "Hi,\n\nOn Mon, Jan 4, 2016 at 7:03 PM, Support <support@example.com> wrote:\n"
        "> Which order is it?\n\nIt is order 1001, bought in March.\n\n-- \nJane Doe\n"
    )
    got = codec.parse(mail("Subject: Re: order\r\n", text)).text
    assert got == "Hi,\n\nIt is order 1001, bought in March."


def test_a_top_posted_outlook_reply_keeps_only_the_new_text() -> None:
    text = (
        "It is order 1001.\n\nFrom: Support <support@example.com>\nSent: Monday, 4 January"
        " 2016 19:03\nTo: Jane Doe\nSubject: order\n\nWhich order is it?\n"
    )
    assert codec.parse(mail("Subject: RE: order\r\n", text)).text == "It is order 1001."


# ------------------------------------------------------- senders and structure


def test_a_from_the_strict_parser_cannot_read_falls_back_to_its_first_address() -> None:
    raw = mail("Subject: x\r\n", sender='"Foo <jane@example.com>')
    assert codec.parse(raw).sender == "jane@example.com"
    raw = mail("Subject: x\r\n", sender="Jane <jane@example.com>>, <broken")
    assert codec.parse(raw).sender == "jane@example.com"


def test_an_impossibly_long_from_address_is_refused_for_good() -> None:
    with pytest.raises(codec.AddressTooLong):
        codec.parse(mail("Subject: x\r\n", sender="x" * 400 + "@example.com"))


def nested(depth: int) -> bytes:
    parts = [b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    parts.append(b"Content-Type: text/plain\r\n\r\nhello\r\n")
    parts.extend(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"".join(parts)


def test_a_structure_too_deep_to_walk_is_kept_from_its_headers() -> None:
    assert codec.parse(nested(20)).text == "hello"
    deep = codec.parse(nested(1000))
    assert (deep.sender, deep.subject) == ("deep@example.com", "deep")
    assert deep.text == codec.UNREADABLE_NOTE


def test_automatic_mail_with_no_usable_from_is_dropped_not_refused() -> None:
    bounce = mail("Subject: Mail delivery failed\r\n", "It bounced.", sender="MAILER-DAEMON <>")
    assert codec.parse(bounce).auto is not None
    long_auto = mail("Subject: Hi\r\nAuto-Submitted: auto-replied\r\n", sender="x" * 400 + "@a.b")
    assert codec.parse(long_auto).auto is not None
    with pytest.raises(codec.MailError):
        codec.parse(mail("Subject: Hi\r\n", sender="Nobody <>"))
