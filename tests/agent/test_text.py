"""Intents and slots, sentiment, and PII masking."""

from __future__ import annotations

import pytest

from agent.brief import build_brief
from agent.intents import Intent, extract_order_id, parse
from agent.pii import mask_pii
from agent.sentiment import SentimentAnalyzer, worse
from gateway.models import Sentiment


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("where is my order?", Intent.ORDER_STATUS),
        ("hi, where's my package", Intent.ORDER_STATUS),
        ("1001", Intent.ORDER_STATUS),
        ("I forgot my password", Intent.PASSWORD_RESET),
        ("I can't log in", Intent.PASSWORD_RESET),
        ("I want a refund", Intent.REFUND),
        ("I was charged twice", Intent.BILLING),
        ("when is my next invoice", Intent.BILLING),
        ("please cancel my subscription", Intent.CANCEL_SUBSCRIPTION),
        ("cancel order 1002", Intent.ORDER_CANCEL),
        ("I want to talk to a human", Intent.HUMAN),
        ("agent", Intent.HUMAN),
        ("representative please", Intent.HUMAN),
        ("can I speak to a real person", Intent.HUMAN),
        ("talk to someone", Intent.HUMAN),
        ("hello", Intent.GREETING),
        ("thank you", Intent.THANKS),
        ("bye", Intent.GOODBYE),
        ("yes", Intent.AFFIRM),
        ("no", Intent.DENY),
        ("qwerty asdf", Intent.UNKNOWN),
    ],
)
def test_intents(text: str, intent: Intent) -> None:
    assert parse(text).intent is intent


def test_person_request_keeps_its_topic() -> None:
    parsed = parse("I need to speak to an agent about a refund")
    assert parsed.intent is Intent.HUMAN and parsed.topic is Intent.REFUND


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("order 1001", "1001"),
        ("#1001", "1001"),
        ("order number: 2002", "2002"),
        ("order no. 3001", "3001"),
        ("it's 1002 I think", "1002"),
        ("one zero zero one", "1001"),
        ("one oh oh two", "1002"),
        ("call me on +15551234567", None),
        ("card 4111 1111 1111 1111", None),
        ("the code is 123456", None),
        ("one or two things", None),
    ],
)
def test_order_numbers(text: str, order_id: str | None) -> None:
    assert extract_order_id(text) == order_id


def test_short_numbers_only_when_asked() -> None:
    assert extract_order_id("it's 512") is None
    assert extract_order_id("it's 512", expecting=True) == "512"


def test_info_questions_and_disputes() -> None:
    assert parse("how do refunds work?").info_question
    assert not parse("how do I get a refund for my order?").info_question
    assert parse("there is an unauthorized charge").dispute


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("where is my order", Sentiment.NEUTRAL),
        ("thanks so much, that's great!", Sentiment.POSITIVE),
        ("I am very disappointed with the delay", Sentiment.NEGATIVE),
        ("WHERE IS MY PACKAGE", Sentiment.NEGATIVE),
        ("THIS IS RIDICULOUS!!! WHERE IS MY ORDER", Sentiment.ANGRY),
        ("you are useless idiots", Sentiment.ANGRY),
        ("This is the worst service ever, I am furious", Sentiment.ANGRY),
        ("I will sue you", Sentiment.ANGRY),
        ("this stupid app won't let me log in", Sentiment.NEGATIVE),
        ("OK", Sentiment.NEUTRAL),
    ],
)
def test_sentiment(text: str, label: Sentiment) -> None:
    assert SentimentAnalyzer().analyze(text).label is label


def test_worse() -> None:
    assert worse(Sentiment.NEUTRAL, Sentiment.ANGRY) is Sentiment.ANGRY
    assert worse(Sentiment.NEGATIVE, Sentiment.POSITIVE) is Sentiment.NEGATIVE


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("my card is 4111 1111 1111 1111", "4111 1111 1111 1111", "ending 1111"),
        ("card 4111-1111-1111-1111 exp 12/27", "4111-1111", "ending 1111"),
        ("my password is hunter2!", "hunter2", "password is [redacted]"),
        ("password: correct horse", "correct", "password: [redacted]"),
        ("the code is 493021", "493021", "[code]"),
        ("OTP 482 913", "482 913", "[code]"),
        ("ssn 123-45-6789", "123-45-6789", "[ssn]"),
    ],
)
def test_mask_pii(text: str, hidden: str, kept: str) -> None:
    masked = mask_pii(text)
    assert hidden not in masked and kept in masked


def test_mask_pii_leaves_ordinary_text() -> None:
    text = "order 1001, tracking 1Z999AA10123456784, call +15551234567, password reset please"
    assert mask_pii(text) == text


def test_brief_masks_and_fills_gaps() -> None:
    brief = build_brief(
        topic=None,
        customer_words="my card 4111111111111111 hmm",
        tried=(),
        confidence=0.1,
        sentiment=Sentiment.NEUTRAL,
        reason="test",
        verified=False,
    )
    assert "4111111111111111" not in brief.need
    assert brief.queue == "general" and brief.tried and brief.next_step
    assert any("identity" in m for m in brief.missing)
