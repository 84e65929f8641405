"""The classes of issue 14 on web chat, SMS and email: paraphrases, handovers a desk
would expect, public questions for anyone, actions only on the customer's own target.
Real WordLlama model, real demo backend, real help centre."""

from __future__ import annotations

import pytest

from agent.policy import EmbeddedPolicy
from agent.understand import Matcher
from gateway.models import ChannelKind
from tests.agent.harness import Chat, MemoryLedger, customer, kinds, reply_text, transfer

JANE = customer(1, account="C-1001", name="Jane Doe")  # Premium monthly, SUB-1001
ANON = customer(9, account=None, name=None)
UNKNOWN = customer(7, account="C-9999", name="Sam Unknown")  # signed, not in the backend
CHANNELS = (ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.EMAIL)
CHANGES = {"tool.password_reset", "tool.subscription_cancel", "tool.refund_order"}

HANDOVERS = [
    ("I'm going to take legal action if this isn't fixed", "general"),
    ("the courier threw my parcel over the fence and was rude, I want to complain", "general"),
    ("I expect compensation for a week of waiting", "general"),
    ("my account was hacked", "technical"),
    ("someone got into my account and changed the address", "technical"),
    ("there is a payment on my card I never made", "billing"),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(("text", "queue"), HANDOVERS)
async def test_what_a_desk_hands_over_goes_to_a_person(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str, queue: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    handed = transfer(decision)
    assert handed is not None, reply_text(decision)
    assert handed.queue == queue
    assert not CHANGES & set(kinds(decision))  # never an automatic reset for a hacked account


# Disputes in wording that is in no exemplar: contested money goes to the billing team.
DISPUTES = [
    "there is a payment on my card I never made",
    "somebody withdrew 200 dollars from my account",
    "my credit card was stolen and used online",
    "I see a purchase on my statement I did not authorize",
    "charged me for a subscription without my permission",
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", DISPUTES)
async def test_a_contested_charge_goes_to_the_billing_team(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    handed = transfer(decision)
    assert handed is not None, reply_text(decision)
    assert handed.queue == "billing"
    assert not CHANGES & set(kinds(decision))


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", ["what did you charge me last month?", "show me my last invoice"])
async def test_a_billing_question_is_answered_not_disputed(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    assert transfer(decision) is None, reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("who", [ANON, UNKNOWN])
async def test_public_questions_are_answered_for_anyone(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, who: object
) -> None:
    chat = Chat(policy, ledger, who, channel)  # type: ignore[arg-type]
    decision = await chat.send("which payment methods do you accept?")
    assert transfer(decision) is None
    assert "Visa" in reply_text(decision) and "PayPal" in reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_refund_policy_question_is_answered_from_the_help_centre(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send("what's your refund policy?")
    assert transfer(decision) is None
    assert "30 days" in reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_unknown_account_gets_an_answer_not_a_failure(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    decision = await Chat(policy, ledger, UNKNOWN, channel).send("show me my last invoice")
    assert transfer(decision) is None
    assert reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_misspelt_password_request_is_understood(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    chat = Chat(policy, ledger, JANE, channel)
    decision = await chat.send("i cant get into my acount, help resetting the pwd")
    assert decision.intent == "password_reset" and transfer(decision) is None
    # Signed web chat: the link goes out; SMS and email first prove the sender (verify.py).
    sent = "tool.password_reset" in kinds(decision)
    assert sent == (channel is ChannelKind.WEBCHAT)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", ["cancelling purchase 1001", "help me cancel order 1002"])
async def test_order_cancellation_in_other_words(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    assert decision.intent in ("order_cancel", "handover.order_cancel"), reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", ["it arrived, all good, thanks!", "thank you so much"])
async def test_thanks_is_small_talk(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    assert decision.intent == "thanks" and transfer(decision) is None
    assert "order number" not in reply_text(decision)
    assert "tool.kb_search" not in kinds(decision)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", ["what's the weather like in Paris tomorrow", "tell me a joke"])
async def test_out_of_scope_is_said_so(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, text: str
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(text)
    assert decision.intent == "out_of_scope" and transfer(decision) is None


# ------------------------------------------------------------------ safe actions


@pytest.mark.parametrize("channel", CHANNELS)
async def test_another_customers_subscription_is_not_found_and_nothing_changes(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    chat = Chat(policy, ledger, JANE, channel)
    first = await chat.send("cancel subscription SUB-1005")
    assert "can't find subscription SUB-1005" in reply_text(first)
    second = await chat.send("yes")
    for decision in (first, second):
        assert "tool.subscription_cancel" not in kinds(decision)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_reset_for_someone_elses_address_sends_nothing(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    decision = await Chat(policy, ledger, JANE, channel).send(
        "reset the password for bob@example.com"
    )
    assert "tool.password_reset" not in kinds(decision)
    assert "can't find that email address" in reply_text(decision)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_newsletter_is_not_the_paid_plan(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    chat = Chat(policy, ledger, JANE, channel)
    first = await chat.send("cancel my subscription to the newsletter")
    second = await chat.send("yes")
    assert "unsubscribe" in reply_text(first)
    assert "Premium" not in reply_text(first)
    for decision in (first, second):
        assert "tool.subscription_cancel" not in kinds(decision)


async def test_the_confirmation_says_exactly_what_will_happen(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)  # signed web chat: no code needed
    offer = reply_text(await chat.send("please cancel my subscription"))
    assert "Cancel your Premium monthly plan, $9.99 a month, from " in offer
    done = await chat.send("yes")
    assert "tool.subscription_cancel" in kinds(done)


def test_the_matcher_places_paraphrases_it_was_not_given(matcher: Matcher) -> None:
    assert matcher.match("my parcel never turned up").family == "order_status"
    assert matcher.match("I'd like to stop paying for the premium membership").family in (
        "subscription_cancel",
    )
    assert matcher.match("what's the capital of peru").family == "out_of_scope"


@pytest.mark.parametrize("channel", CHANNELS)
async def test_out_of_scope_and_small_talk_never_hand_over(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind
) -> None:
    chat = Chat(policy, ledger, ANON, channel)
    for text in ("tell me a joke", "what's the weather tomorrow", "good morning, thanks!",
                 "good morning, hello", "play some music"):  # fmt: skip
        decision = await chat.send(text)
        assert transfer(decision) is None, (text, reply_text(decision))
