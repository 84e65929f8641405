"""The customer's earlier contact on another channel: found in the history, said once."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.policy import EmbeddedPolicy
from agent.recall import earlier_contact
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Direction,
    Message,
)
from tests.agent.harness import NOW, Chat, MemoryLedger, customer, kinds, reply_text

JANE = customer(1, account="C-1001", name="Jane Doe")
ANON = customer(9, account=None, name=None)
VERBS = {
    ChannelKind.PHONE: "called us",
    ChannelKind.SMS: "texted us",
    ChannelKind.EMAIL: "emailed us",
    ChannelKind.WEBCHAT: "chatted with us",
}
_ids = itertools.count(1)


def said(
    seq: int, channel: ChannelKind, text: str, *, agent: bool = False, ago: timedelta = timedelta()
) -> Message:
    return Message(
        id=next(_ids),
        conversation_id=1,
        customer_id=1,
        seq=seq,
        direction=Direction.OUTBOUND if agent else Direction.INBOUND,
        author=AuthorKind.AGENT if agent else AuthorKind.CUSTOMER,
        channel=channel,
        text=text,
        created_at=NOW - ago,
    )


def call_about_1001(ago: timedelta = timedelta(hours=3)) -> tuple[Message, ...]:
    phone = ChannelKind.PHONE
    return (
        said(1, phone, "Hi Jane. Thanks for calling support.", agent=True, ago=ago),
        said(2, phone, "Hi, I'm calling to check the status of my order.", ago=ago),
        said(3, phone, "Sure. What's your order number?", agent=True, ago=ago),
        said(4, phone, "My order number is one zero zero one.", ago=ago),
        said(5, phone, "Order 1001 has shipped with UPS.", agent=True, ago=ago),
    )


@pytest.fixture
def timed_policy(backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase) -> EmbeddedPolicy:
    return EmbeddedPolicy(backend, ledger, kb, clock=lambda: NOW)


@pytest.mark.parametrize("before", list(VERBS))
@pytest.mark.parametrize("now_on", list(VERBS))
def test_every_pair_of_channels(before: ChannelKind, now_on: ChannelKind) -> None:
    history = (
        said(1, before, "where is order 1002?", ago=timedelta(hours=1)),
        said(2, before, "Order 1002 is being prepared.", agent=True, ago=timedelta(hours=1)),
    )
    current = said(3, now_on, "hello again")
    recall = earlier_contact((*history, current), current, NOW)
    if before is now_on:
        assert recall is None  # the same contact continues: nothing to point out
    else:
        assert recall is not None
        assert recall.sentence() == f"I see you {VERBS[before]} earlier today about order 1002."


@pytest.mark.parametrize(
    ("ago", "when"),
    [
        (timedelta(hours=2), "earlier today"),
        (timedelta(days=1), "yesterday"),
        (timedelta(days=4), f"on {(NOW - timedelta(days=4)):%A}"),
        (timedelta(days=8), None),  # too long ago to be "your recent call"
    ],
)
def test_when_it_was(ago: timedelta, when: str | None) -> None:
    history = call_about_1001(ago)
    current = said(6, ChannelKind.SMS, "any news?")
    recall = earlier_contact((*history, current), current, NOW)
    if when is None:
        assert recall is None
    else:
        assert recall is not None and recall.when == when and recall.order_id == "1001"


def test_an_example_number_in_the_agents_question_is_no_order_of_theirs() -> None:
    history = (
        said(1, ChannelKind.WEBCHAT, "I have a question about my order", ago=timedelta(hours=1)),
        said(2, ChannelKind.WEBCHAT, "What's your order number? It's in your order confirmation"
             " email, for example 1001.", agent=True, ago=timedelta(hours=1)),
    )  # fmt: skip
    current = said(3, ChannelKind.PHONE, "hello")
    recall = earlier_contact((*history, current), current, NOW)
    assert recall is not None
    assert recall.sentence() == "I see you chatted with us earlier today about an order."
    answered = (*history, said(3, ChannelKind.WEBCHAT, "Order 1002 is being prepared.", agent=True))
    current = said(4, ChannelKind.PHONE, "hello")
    recall = earlier_contact((*answered, current), current, NOW)
    assert recall is not None and recall.order_id == "1002"


def test_the_topic_when_no_order_was_named() -> None:
    history = (said(1, ChannelKind.WEBCHAT, "I can't log in to my account", ago=timedelta(days=1)),)
    current = said(2, ChannelKind.EMAIL, "Hello")
    recall = earlier_contact((*history, current), current, NOW)
    assert recall is not None
    assert recall.sentence() == "I see you chatted with us yesterday about your password."
    nothing = (said(1, ChannelKind.PHONE, "hello?", ago=timedelta(hours=1)),)
    current = said(2, ChannelKind.SMS, "hi")
    bare = earlier_contact((*nothing, current), current, NOW)
    assert bare is not None and bare.sentence() == "I see you called us earlier today."


def test_the_latest_contact_counts_and_internal_notes_are_not_contacts() -> None:
    history = (
        *call_about_1001(timedelta(days=2)),
        said(6, ChannelKind.SMS, "is order 1002 on its way?", ago=timedelta(hours=5)),
        said(7, ChannelKind.SMS, "Order 1002 is being prepared.", agent=True),
    )
    current = said(8, ChannelKind.EMAIL, "Hello")
    recall = earlier_contact((*history, current), current, NOW)
    assert recall is not None
    assert recall.sentence() == "I see you texted us earlier today about order 1002."


async def test_an_sms_after_a_call_mentions_it_once_and_answers_for_its_order(
    timed_policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(timed_policy, ledger, JANE, ChannelKind.SMS)
    first = await chat.send("Hi, any news about my order?", history=call_about_1001())
    text = reply_text(first)
    assert text.startswith("I see you called us earlier today about order 1001. Order 1001 has")
    assert "tool.order_lookup" in kinds(first)
    assert "\n" not in text
    # The next text continues the SMS contact: no second mention.
    history = (*call_about_1001(), *_as_messages(chat, "Hi, any news about my order?", text))
    again = reply_text(await chat.send("thanks!", history=history))
    assert "I see you" not in again


async def test_an_email_letter_mentions_the_call_after_its_salutation(
    timed_policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(timed_policy, ledger, JANE, ChannelKind.EMAIL)
    text = reply_text(await chat.send("Hello", history=call_about_1001()))
    assert text.startswith(
        "Hello Jane,\n\nI see you called us earlier today about order 1001. I'm the virtual"
    )
    assert text.count("Hello") == 1  # the letter's salutation, not a second "Hi Jane!"
    assert text.endswith("Best regards,\nCustomer Support")


async def test_a_greeting_on_the_phone_puts_the_mention_after_hello(
    timed_policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    history = (said(1, ChannelKind.SMS, "where is order 1001", ago=timedelta(days=1)),)
    chat = Chat(timed_policy, ledger, JANE, ChannelKind.PHONE)
    text = reply_text(await chat.send("hello", history=history))
    assert text.startswith("Hi Jane! I see you texted us yesterday about order 1001. I'm the")


async def test_an_anonymous_customer_hears_of_the_contact_but_no_order_is_looked_up(
    timed_policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    history = (said(1, ChannelKind.WEBCHAT, "where is order 1001", ago=timedelta(hours=1)),)
    decision = await Chat(timed_policy, ledger, ANON, ChannelKind.SMS).send(
        "what about my order?", history=history
    )
    assert "tool.order_lookup" not in kinds(decision)  # unverified: nothing looked up
    assert reply_text(decision).startswith("I see you chatted with us earlier today")


def _as_messages(chat: Chat, asked: str, answer: str) -> tuple[Message, ...]:
    base = 100
    return (
        said(base, chat.channel, asked),
        said(base + 1, chat.channel, answer, agent=True),
    )


async def test_history_is_wanted_only_where_an_earlier_contact_can_be_mentioned(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, customer(1), ChannelKind.SMS)
    fresh = Conversation(
        id=1, customer_id=1, state=ConversationState.BOT, channel=ChannelKind.SMS,
        channels=(ChannelKind.SMS,), agent_state={}, version=1, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    assert policy.wants_history(fresh)  # a first message may follow a call
    await chat.send("where is my order 1001?")
    later = fresh.model_copy(update={"agent_state": chat.state})
    assert not policy.wants_history(later)  # same channel, already answered here
    switched = later.model_copy(
        update={"channel": ChannelKind.WEBCHAT, "channels": (ChannelKind.SMS, ChannelKind.WEBCHAT)}
    )
    assert policy.wants_history(switched)
