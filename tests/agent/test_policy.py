"""The embedded policy end to end, on the real demo backend and knowledge base."""

from __future__ import annotations

from agent.demo_backend import DemoBackend
from agent.policy import EmbeddedPolicy
from gateway.models import ChannelKind, Hangup, Sentiment
from tests.agent.harness import (
    Chat,
    MemoryLedger,
    brief,
    customer,
    kinds,
    refusals,
    reply_text,
    transfer,
)

JANE = customer(1, account="C-1001", name="Jane Doe")
PRIYA = customer(5, account="C-1005", name="Priya Patel")
ANON = customer(9, account=None, name=None)


# ------------------------------------------------------------------ orders


async def test_order_status_asks_for_the_number_then_answers(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    first = await chat.send("Where is my order?")
    assert transfer(first) is None
    assert first.intent == "order_status"
    assert first.agent_state["pending"] == "order_number"
    assert "order number" in reply_text(first).lower()
    assert not [k for k in kinds(first) if k.startswith("tool.")]  # nothing looked up yet

    second = await chat.send("it's 1001")
    text = reply_text(second)
    assert "shipped" in text and "UPS" in text and "1Z999AA10123456784" in text
    assert second.agent_state["pending"] is None
    lookup = [e for e in second.events if e.kind == "tool.order_lookup"]
    assert lookup and lookup[0].data["status"] == "shipped"
    assert lookup[0].data["account"] == "C-1001"
    assert second.confidence >= policy.threshold


async def test_order_number_given_up_front(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    decision = await Chat(policy, ledger, JANE).send("what's the status of order #1002?")
    assert "1002" in reply_text(decision)
    assert "not shipped" in reply_text(decision)
    assert [e.data["status"] for e in decision.events if e.kind == "tool.order_lookup"] == [
        "processing"
    ]


async def test_spoken_order_number_on_the_phone(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE, ChannelKind.PHONE)
    await chat.send("where is my package")
    decision = await chat.send("one zero zero one")
    assert "1Z999AA10123456784" in reply_text(decision)
    assert "Items:" not in reply_text(decision)  # the phone gets the short answer only


async def test_dont_know_the_number_lists_own_orders(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("where is my order")
    decision = await chat.send("I don't know it")
    text = reply_text(decision)
    assert "1001" in text and "1002" in text and "2001" not in text
    assert decision.agent_state["pending"] == "order_number"


async def test_another_customers_order_is_refused(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, JANE).send("where is order 2001? it's for Bob Smith")
    text = reply_text(decision)
    for secret in ("771234567890", "FedEx", "grinder", "delivered", "89.50"):
        assert secret not in text
    assert "2001" in text  # only that it is not on her account
    assert refusals(decision) == ["other_customer"]
    assert "tool.order_lookup" not in kinds(decision)
    assert transfer(decision) is None


async def test_repeated_unknown_orders_hand_over(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("where is order 2001")
    decision = await chat.send("2002")
    handoff = brief(decision)
    assert refusals(decision) == ["other_customer"]
    assert handoff.queue == "general"
    assert any("order number" in m for m in handoff.missing)
    assert "2002" not in reply_text(decision) or "cancel" not in reply_text(decision)


async def test_anonymous_customer_cannot_look_up_orders(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, ANON)
    decision = await chat.send("where is my order 1001")
    assert refusals(decision) == ["unverified"]
    assert "1Z999AA10123456784" not in reply_text(decision)
    assert "sign in" in reply_text(decision)
    assert transfer(decision) is None
    # Without a number it does not ask for one it could not use.
    decision = await chat.send("where is my order")
    assert decision.agent_state["pending"] is None
    assert "sign in" in reply_text(decision)


async def test_cancel_an_order_that_has_not_shipped_goes_to_a_person(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, JANE).send("please cancel order 1002")
    handoff = brief(decision)
    assert handoff.queue == "general"
    assert "1002" in handoff.next_step


# ------------------------------------------------------------------ password


async def test_password_reset_limit(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    chat = Chat(policy, ledger, JANE)
    for _ in range(3):
        decision = await chat.send("I forgot my password")
        assert "tool.password_reset" in kinds(decision)
        assert "j***@example.com" in reply_text(decision)
    fourth = await chat.send("I forgot my password, send it again")
    assert refusals(fourth) == ["rate_limit"]
    assert "tool.password_reset" not in kinds(fourth)
    assert await backend.password_resets_sent("C-1001") == 3
    # Another account has its own allowance.
    other = await Chat(policy, ledger, PRIYA).send("reset my password")
    assert "tool.password_reset" in kinds(other)


async def test_password_reset_needs_an_account(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    decision = await Chat(policy, ledger, ANON).send("I can't log in")
    assert refusals(decision) == ["unverified"]
    assert "Forgot password" in reply_text(decision)
    assert await backend.password_resets_sent("C-1001") == 0


# ------------------------------------------------------------------ subscriptions


async def test_cancel_subscription_confirm_then_act(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    chat = Chat(policy, ledger, PRIYA)
    offer = await chat.send("I want to cancel my subscription")
    assert offer.agent_state["pending"] == "confirm_cancel"
    assert "Family plan" in reply_text(offer)
    assert "tool.subscription_cancel" not in kinds(offer)
    sub = await backend.get_subscription("C-1005")
    assert sub is not None and sub.status == "active"  # nothing happens before the yes

    done = await chat.send("yes please")
    assert "tool.subscription_cancel" in kinds(done)
    sub = await backend.get_subscription("C-1005")
    assert sub is not None and sub.status == "cancelled" and sub.access_until is not None
    assert done.agent_state["pending"] is None


async def test_cancel_subscription_declined(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("cancel my premium membership")
    decision = await chat.send("no, keep it")
    assert "tool.subscription_cancel" not in kinds(decision)
    sub = await backend.get_subscription("C-1001")
    assert sub is not None and sub.status == "active"
    assert decision.agent_state["pending"] is None


async def test_cancel_subscription_unclear_answer_changes_nothing(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("cancel my subscription")
    decision = await chat.send("hmm blah")
    assert decision.agent_state["pending"] == "confirm_cancel"
    sub = await backend.get_subscription("C-1001")
    assert sub is not None and sub.status == "active"


async def test_no_active_subscription(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    wei = customer(4, account="C-1004", name="Wei Chen")
    decision = await Chat(policy, ledger, wei).send("cancel my subscription")
    assert decision.agent_state["pending"] is None
    assert "tool.subscription_cancel" not in kinds(decision)


# ------------------------------------------------------------------ billing and refunds


async def test_refund_goes_to_billing_with_a_brief(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, JANE).send("I want a refund for order 1001")
    t = transfer(decision)
    assert t is not None and t.queue == "billing"
    assert t.brief.queue == "billing"
    assert "refund" in t.brief.need.lower() and "1001" in t.brief.need
    assert any("1001" in step for step in t.brief.tried)
    assert t.brief.next_step
    assert t.brief.confidence >= 0.45
    assert t.brief.sentiment is Sentiment.NEUTRAL
    assert reply_text(decision)  # the customer is told a person takes over


async def test_refund_without_order_notes_what_is_missing(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    handoff = brief(await Chat(policy, ledger, JANE).send("I want my money back"))
    assert handoff.queue == "billing"
    assert any("which order" in m for m in handoff.missing)


async def test_billing_question_answered_from_the_account(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, JANE).send("what are my recent charges?")
    assert transfer(decision) is None
    assert "Visa ending 4242" in reply_text(decision)
    assert "tool.billing_summary" in kinds(decision)


async def test_disputed_charge_goes_to_billing(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    handoff = brief(await Chat(policy, ledger, JANE).send("I was charged twice this month"))
    assert handoff.queue == "billing"
    assert any("Order 1001" in step for step in handoff.tried)


# ------------------------------------------------------------------ handover


async def test_asking_for_a_person_hands_over(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    decision = await Chat(policy, ledger, JANE).send("I want a real person please")
    t = transfer(decision)
    assert t is not None and t.queue == "general"
    assert decision.intent == "handover.requested"
    assert reply_text(decision)


async def test_person_request_is_routed_by_topic(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, JANE).send("can I talk to someone about my bill")
    assert brief(decision).queue == "billing"


async def test_person_request_after_tries_keeps_them(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("where is my order 1001")
    handoff = brief(await chat.send("agent"))
    assert any("1001" in step for step in handoff.tried)


async def test_strong_anger_hands_over_at_once(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    decision = await chat.send("THIS IS RIDICULOUS!!! Where is my order, you useless idiots")
    t = transfer(decision)
    assert t is not None
    assert t.brief.sentiment is Sentiment.ANGRY
    assert not [k for k in kinds(decision) if k.startswith("tool.")]  # nothing else first


async def test_gibberish_twice_hands_over(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    chat = Chat(policy, ledger, ANON)
    first = await chat.send("asdkjh qwe zxcv")
    assert transfer(first) is None
    assert first.intent == "clarify" and first.confidence < policy.threshold
    second = await chat.send("blorp flibber")
    t = transfer(second)
    assert t is not None and t.queue == "general"
    assert t.brief.confidence < policy.threshold
    assert t.brief.missing


async def test_understood_turn_resets_the_failure_count(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    await chat.send("asdkjh qwe")
    await chat.send("how long does shipping take?")
    decision = await chat.send("blorp flibber")
    assert transfer(decision) is None


async def test_pii_is_masked_in_the_brief(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    decision = await Chat(policy, ledger, JANE).send(
        "I want a refund, card 4111 1111 1111 1111 was charged. My password is hunter2"
        " and the code is 493021"
    )
    handoff = brief(decision)
    dumped = handoff.model_dump_json()
    for secret in ("4111 1111 1111 1111", "hunter2", "493021"):
        assert secret not in dumped
    assert "ending 1111" in handoff.need


async def test_backend_failure_hands_over(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    await backend.close()
    decision = await Chat(policy, ledger, JANE).send("where is order 1001")
    assert decision.intent == "handover.backend"
    assert "tool.failed" in kinds(decision)


# ------------------------------------------------------------------ knowledge and small talk


async def test_knowledge_base_answer(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    decision = await Chat(policy, ledger, ANON).send("How long does shipping take?")
    assert transfer(decision) is None
    assert decision.intent == "knowledge_base"
    assert decision.confidence >= policy.threshold
    assert "3 to 5 working days" in reply_text(decision)
    assert "tool.kb_search" in kinds(decision)


async def test_refund_policy_question_is_answered_not_handed_over(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    decision = await Chat(policy, ledger, ANON).send("How long do refunds take?")
    assert transfer(decision) is None
    assert "working days" in reply_text(decision)


async def test_replies_fit_the_channel(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    question = "how long does shipping take"
    sms = reply_text(await Chat(policy, ledger, JANE, ChannelKind.SMS).send(question))
    web = reply_text(await Chat(policy, ledger, JANE, ChannelKind.WEBCHAT).send(question))
    email = reply_text(await Chat(policy, ledger, JANE, ChannelKind.EMAIL).send(question))
    assert len(sms) < len(web) < len(email)
    assert email.startswith("Hello Jane")
    for text in (sms, web, email):
        assert "**" not in text and "#" not in text


async def test_small_talk(policy: EmbeddedPolicy, ledger: MemoryLedger) -> None:
    chat = Chat(policy, ledger, JANE)
    hello = await chat.send("Hi there")
    assert hello.intent == "greeting" and "Jane" in reply_text(hello)
    thanks = await chat.send("thanks!")
    assert thanks.intent == "thanks" and transfer(thanks) is None
    bye = await chat.send("bye")
    assert bye.intent == "goodbye"
    assert not [a for a in bye.actions if isinstance(a, Hangup)]
    call = await Chat(policy, ledger, JANE, ChannelKind.PHONE).send("goodbye")
    assert [a for a in call.actions if isinstance(a, Hangup)]


async def test_corrupt_agent_state_starts_afresh(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    chat = Chat(policy, ledger, JANE)
    chat.state = {"pending": "launch_rockets", "failures": "many"}
    decision = await chat.send("hello")
    assert decision.intent == "greeting"


async def test_high_threshold_hands_over_instead_of_guessing(
    backend: DemoBackend, ledger: MemoryLedger, policy: EmbeddedPolicy
) -> None:
    strict = EmbeddedPolicy(backend, ledger, policy.kb, handover_threshold=0.99)
    chat = Chat(strict, ledger, JANE)
    first = await chat.send("how long does shipping take")
    assert first.intent == "clarify"  # the article scores below 0.99: not used
    second = await chat.send("how long does shipping take")
    assert transfer(second) is not None


async def test_the_same_question_is_answered_alike_in_any_conversation_state(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    """One text, one answer: neither a fresh conversation, a greeting or a miss before
    it, an answer already given, the channel nor a repeat changes how it is understood."""
    question = "do you ship internationally"
    fresh = await Chat(policy, ledger, ANON).send(question)
    assert fresh.intent == "knowledge_base" and "40 countries" in reply_text(fresh)
    chats = {
        "after hello": ["hello"],
        "after a miss": ["asdkjh qwe zxcv"],
        "after an answer": ["how long does shipping take?"],
        "asked before": [question, question],
    }
    for n, (state, before) in enumerate(chats.items(), start=20):
        for channel in (ChannelKind.WEBCHAT, ChannelKind.SMS):
            chat = Chat(policy, ledger, customer(n, account=None, name=None), channel)
            for text in before:
                await chat.send(text)
            got = await chat.send(question)
            assert transfer(got) is None, state
            assert (got.intent, got.confidence) == (fresh.intent, fresh.confidence), state
            assert "40 countries" in reply_text(got), state
    greeted = await Chat(policy, ledger, ANON).send(f"hi, {question}")
    assert "40 countries" in reply_text(greeted)
