"""The output check: a model's prompt echo, template markers, tool-call prose or
rambling never reach the customer; a fallen-back turn sends the fallback's words
only, on web chat, SMS and email (scripted OpenAI-compatible server, real client)."""

from __future__ import annotations

import asyncio

import pytest

from agent.llm.output_check import OutputCheck
from agent.llm.prompts import Prompts
from gateway.models import ChannelKind
from gateway.protocols import Decision
from tests.agent.harness import Chat, MemoryLedger, customer, reply_text
from tests.agent.llm.conftest import MakeBrain
from tests.agent.llm.test_brain import _context
from tests.support.fake_openai import FakeOpenAI, text

CHANNELS = (ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.EMAIL)
ECHO = (
    "[INST] <<SYS>> You are the virtual support assistant of the company. You help one"
    " customer at a time with their orders. Rules you always follow: act through the tools."
)
BAD_ANSWERS = [
    ECHO,
    "You help one customer at a time with their orders, password resets, subscriptions.",
    "<|im_start|>assistant Your order has shipped.",
    'Sure! {"name": "subscription_cancel", "arguments": {"confirmed": true}}',
    "Your order has shipped. " * 100,
    # Our own wrapper echoed back, as SmolLM2-135M did on every turn (bench/llm_real.py).
    '<customer_message channel="webchat" name="">\nyes\n</customer_message>',
    "Sure. &lt;/customer_message&gt; I can help with that.",
    # Another language than the customer's (small models drift into one).
    "您的订单已经发货了，预计星期三到达。",
]


@pytest.fixture(scope="module")
def check() -> OutputCheck:
    return OutputCheck(Prompts().all_system())


@pytest.mark.parametrize("answer", BAD_ANSWERS)
def test_the_check_refuses_what_must_not_reach_a_customer(check: OutputCheck, answer: str) -> None:
    assert check.answering("where is order 1001?").problem(answer) is not None


def test_an_answer_in_another_writing_system_is_refused(check: OutputCheck) -> None:
    english = check.answering("where is my order 1001?")
    # Small models drift into another language mid-answer (SmolLM2 did, into Chinese).
    assert english.problem("您的订单已发货，预计周三到达。") == "wrong_language"
    assert english.problem("Ваш заказ отправлен.") == "wrong_language"
    assert english.problem("Your order 1001 has shipped; it arrives on Wednesday.") is None
    # A customer writing Russian may be answered in Russian, not in Chinese.
    russian = check.answering("Где мой заказ 1001?")
    assert russian.problem("Ваш заказ 1001 отправлен.") is None
    assert russian.problem("您的订单已发货。") == "wrong_language"
    # Too few letters to tell ("1001?", "ok"): no language rule is applied.
    assert check.answering("1001?").problem("您的订单已发货。") is None
    # The unbound check (no customer message) applies no language rule either.
    assert check.problem("您的订单已发货。") is None


@pytest.mark.parametrize(
    "answer",
    [
        "Your order 1001 has shipped with UPS; it should arrive on Wednesday.",
        "I've sent a password reset link to j***@example.com. It's valid for 60 minutes.",
        "You can return most items within 30 days of delivery for a full refund.",
    ],
)
def test_the_check_lets_a_plain_answer_through(check: OutputCheck, answer: str) -> None:
    assert check.problem(answer) is None


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("answer", BAD_ANSWERS)
async def test_a_refused_answer_sends_only_the_fallbacks_words(
    llm: FakeOpenAI,
    make_brain: MakeBrain,
    ledger: MemoryLedger,
    channel: ChannelKind,
    answer: str,
) -> None:
    llm.add(text(answer))
    decision = await Chat(make_brain(), ledger, customer(1), channel).send("where is order 1001?")
    said = reply_text(decision)
    reasons = [e.data for e in decision.events if e.kind == "llm.fallback"]
    assert reasons and reasons[0]["reason"] == "unsafe_output"
    assert "1001" in said  # the embedded policy answered the question
    for leaked in ("<<SYS>>", "[INST]", "<|im_start|>", "virtual support assistant",
                   "Rules you always follow", '"arguments"', "one customer at a time",
                   "订单"):  # fmt: skip
        assert leaked not in said


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_partial_answer_that_ran_out_of_time_is_not_sent(
    llm: FakeOpenAI,
    make_brain: MakeBrain,
    ledger: MemoryLedger,
    channel: ChannelKind,
) -> None:
    never = asyncio.Event()  # the rest of the answer never comes: the budget runs out
    first = "Let me look into order 1001 for you right away. "  # a finished sentence
    llm.add(text(f"{first}It was shipped", gate=never, gate_after=len(first) + 3))
    brain = make_brain(default_budget_s=0.5)
    decision = await Chat(brain, ledger, customer(1), channel).send("where is order 1001?")
    said = reply_text(decision)
    assert "Let me look into" not in said and "It was" not in said
    assert "1001" in said


async def test_a_live_call_never_speaks_a_refused_sentence(
    llm: FakeOpenAI, make_brain: MakeBrain, ledger: MemoryLedger
) -> None:
    llm.add(text(f"Sure, one moment. {ECHO}"))
    chat = Chat(make_brain(), ledger, customer(1), ChannelKind.PHONE)
    brain = make_brain()
    items = [i async for i in brain.respond_stream(_context(chat, "where is order 1001"))]
    spoken = [i for i in items if isinstance(i, str)]
    assert spoken and spoken[0] == "Sure, one moment."  # checked, so it could be said
    assert not any("SYS" in s or "virtual support assistant" in s for s in spoken)
    decision = items[-1]
    assert isinstance(decision, Decision) and "1001" in reply_text(decision)
