"""The agent's replies in the words and the form of each channel (table-driven)."""

from __future__ import annotations

import re

import pytest

from agent import replies
from agent.demo_backend import DemoBackend
from agent.policy import EmbeddedPolicy
from gateway.models import ChannelKind
from tests.agent.harness import Chat, MemoryLedger, customer, kinds, reply_text

JANE = customer(1, account="C-1001", name="Jane Doe")
PRIYA = customer(5, account="C-1005", name="Priya Patel")
ANON = customer(9, account=None, name=None)

# (who, what they write): together these reach every kind of reply the policy makes.
PROMPTS = [
    (JANE, "hi"),
    (JANE, "where is my order 1001?"),
    (JANE, "where is my order?"),
    (JANE, "how long does shipping take"),
    (JANE, "how do I return an item? I want my money back"),
    (JANE, "what are my recent charges?"),
    (JANE, "I want to speak to a human"),
    (JANE, "asdf qwerty"),
    (ANON, "where is my order 1001?"),
    (ANON, "I forgot my password"),
    (ANON, "what is my last invoice?"),
]
SPOKEN_OR_TEXTED = (ChannelKind.SMS, ChannelKind.PHONE)
NOT_CHAT = (ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.PHONE)


@pytest.mark.parametrize(("who", "text"), PROMPTS)
@pytest.mark.parametrize("channel", NOT_CHAT)
async def test_only_the_web_chat_is_called_a_chat(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, who: object, text: str
) -> None:
    chat = Chat(policy, ledger, JANE if who is JANE else ANON, channel)
    reply = reply_text(await chat.send(text))
    assert reply
    assert not re.search(r"\bchat", reply, re.IGNORECASE), reply


@pytest.mark.parametrize(("who", "text"), PROMPTS)
@pytest.mark.parametrize("channel", SPOKEN_OR_TEXTED)
async def test_sms_and_phone_replies_are_one_plain_paragraph(
    policy: EmbeddedPolicy, ledger: MemoryLedger, channel: ChannelKind, who: object, text: str
) -> None:
    chat = Chat(policy, ledger, JANE if who is JANE else ANON, channel)
    reply = reply_text(await chat.send(text))
    assert "\n" not in reply
    assert not re.search(r"\*\*|__|`|\[[^\]]*\]\(|^\s*[-*#]", reply), reply
    assert not reply.startswith("Hello") and "Best regards" not in reply
    if channel is ChannelKind.SMS:
        assert len(reply) <= 320, reply  # at most two GSM-7 segments: short


@pytest.mark.parametrize(("who", "text"), PROMPTS)
async def test_email_replies_are_letters(
    policy: EmbeddedPolicy, ledger: MemoryLedger, who: object, text: str
) -> None:
    named = who is JANE
    chat = Chat(policy, ledger, JANE if named else ANON, ChannelKind.EMAIL)
    reply = reply_text(await chat.send(text))
    hello = "Hello Jane,\n\n" if named else "Hello,\n\n"
    assert reply.startswith(hello), reply
    assert reply.endswith("\n\nBest regards,\nCustomer Support")
    assert reply.count("Hi Jane") == 0  # one salutation


@pytest.mark.parametrize(
    ("channel", "ask_for_a_person", "contact"),
    [
        (ChannelKind.WEBCHAT, 'say "agent"', "sign in to your account and chat with us"),
        (ChannelKind.PHONE, 'say "agent"', "call us from the phone number on your account"),
        (ChannelKind.SMS, 'reply "agent"', "text us from the phone number on your account"),
        (ChannelKind.EMAIL, 'reply "agent"', "write to us from the email address on your account"),
    ],
)
async def test_an_anonymous_customer_is_told_what_fits_their_channel(
    policy: EmbeddedPolicy,
    ledger: MemoryLedger,
    channel: ChannelKind,
    ask_for_a_person: str,
    contact: str,
) -> None:
    reply = reply_text(await Chat(policy, ledger, ANON, channel).send("where is my order 1001?"))
    assert ask_for_a_person in reply and contact in reply


def test_style_table() -> None:
    core, detail, closing = "Order 1001 has shipped.", "Items: headphones x1.", "Anything else?"
    expected = {
        ChannelKind.SMS: "Order 1001 has shipped. Anything else?",
        ChannelKind.PHONE: "Order 1001 has shipped. Anything else?",
        ChannelKind.WEBCHAT: "Order 1001 has shipped.\n\nItems: headphones x1.\n\nAnything else?",
        ChannelKind.EMAIL: "Hello Jane,\n\nOrder 1001 has shipped.\n\nItems: headphones x1.\n\n"
        "Anything else?\n\nBest regards,\nCustomer Support",
    }
    for channel, text in expected.items():
        assert replies.style(channel, core, detail=detail, closing=closing, name="Jane") == text
    listed = "Steps:\n\n- **Open** [Orders](https://x.example/orders)\n- Choose `Return`"
    assert replies.style(ChannelKind.SMS, listed) == "Steps: Open Orders Choose Return"
    masked = "I sent a code to s***@example.org and j***@example.com."
    assert replies.style(ChannelKind.SMS, masked) == masked  # masks are not emphasis


async def test_account_changes_asked_for_by_email_are_not_made_on_from_alone(
    policy: EmbeddedPolicy, ledger: MemoryLedger, backend: DemoBackend
) -> None:
    # Priya's address is on her account, so her mail is linked: she may read it, but a
    # forged From could ask as easily, so a change waits for a code sent to the contact
    # on record (agent/verify.py; tests/agent/test_verify.py). Without the code
    # machinery (this policy has no verifier) nothing changes, and it says why.
    mail = Chat(policy, ledger, PRIYA, ChannelKind.EMAIL)
    offer = await mail.send("I want to cancel my subscription")
    assert "without confirming it's you" in reply_text(offer)
    assert "chat with us" not in reply_text(offer)  # no web chat wording in a letter
    yes = await mail.send("yes")
    assert "tool.subscription_cancel" not in kinds(yes)
    sub = await backend.get_subscription("C-1005")
    assert sub is not None and sub.status == "active"
    reset = await Chat(policy, ledger, PRIYA, ChannelKind.EMAIL).send("I forgot my password")
    assert "without confirming it's you" in reply_text(reset)
    assert await backend.password_resets_sent("C-1005") == 0
    # Caller ID can be forged too: the phone asks for the same confirmation.
    call = await Chat(policy, ledger, PRIYA, ChannelKind.PHONE).send("I forgot my password")
    assert "tool.password_reset" not in kinds(call)
    assert "without confirming it's you" in reply_text(call)
