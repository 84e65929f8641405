"""One-time codes in the embedded policy (agent/verify.py): linking another number or
address, and confirming account actions asked for where the sender can be forged.

The policy runs against the real demo backend and a real SQLite store (which links
identities); codes are read from the `Notify` action, which is what the dispatcher
hands to the SMS or email channel (the channels' side: tests/channels/test_codes.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.codes import CodeBook, find_code
from agent.demo_backend import DemoBackend
from agent.intents import Intent, parse
from agent.kb import KnowledgeBase
from agent.policy import EmbeddedPolicy
from agent.verify import Verifier, find_target
from gateway.models import (
    ChannelKind,
    Customer,
    Identity,
    IdentityKind,
    InboundMessage,
    Notify,
    Verification,
)
from gateway.protocols import Decision
from gateway.store.sqlite import SqliteStore
from tests.agent.harness import Chat, MemoryLedger, reply_text

SECRET = b"test-secret-key-0123456789"
OTHER_NUMBER = "+15550004444"  # on no account


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    db = SqliteStore.open(tmp_path / "gateway.sqlite3")
    yield db
    await db.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def coded(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase, store: SqliteStore, clock: Clock
) -> EmbeddedPolicy:
    verifier = Verifier(CodeBook(SECRET, ttl_s=600, attempts=3), store, sends_per_hour=3)
    return EmbeddedPolicy(backend, ledger, kb, clock=clock, verifier=verifier)


async def stored_customer(store: SqliteStore, identity: Identity, channel: ChannelKind) -> Customer:
    """A customer the store knows, with one message of their own."""
    got = await store.ingest(InboundMessage(channel=channel, identity=identity, text="hello"))
    return got.customer


def visitor(n: int) -> Identity:
    return Identity(kind=IdentityKind.WEBCHAT, value=f"v-{n}", verified=Verification.SIGNED_TOKEN)


def notice(decision: Decision) -> Notify:
    found = [a for a in decision.actions if isinstance(a, Notify)]
    assert len(found) == 1, decision.actions
    return found[0]


def code_of(decision: Decision) -> str:
    code = find_code(notice(decision).text)
    assert code is not None
    return code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def kinds(decision: Decision) -> list[str]:
    return [e.kind for e in decision.events]


async def test_a_code_sent_to_a_number_links_it_once_it_comes_back(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    anon = await stored_customer(store, visitor(1), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    asked = await chat.send("Can you text me a code at +1 (555) 000-4444?")
    sent = notice(asked)
    assert sent.to == Identity(kind=IdentityKind.PHONE, value=OTHER_NUMBER)
    code = code_of(asked)
    assert "ending 4444" in reply_text(asked) and code not in reply_text(asked)
    assert code not in json.dumps(asked.agent_state) and code not in str(asked.events)
    assert "verify.code_sent" in kinds(asked)
    # A claim and a sent code link nothing.
    assert await store.find_customer(sent.to) is None

    miss = await chat.send(f"it's {wrong(code)}")
    assert "doesn't match" in reply_text(miss) and "2 tries left" in reply_text(miss)
    assert await store.find_customer(sent.to) is None

    done = await chat.send(code)
    assert "now linked" in reply_text(done)
    linked = await store.find_customer(sent.to)
    assert linked is not None and linked.id == anon.id
    assert next(i for i in linked.identities if i.key == sent.to.key).verified is Verification.OTP
    again = await chat.send(code)
    assert "already been used" in reply_text(again)


async def test_an_expired_code_is_refused(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore, clock: Clock
) -> None:
    anon = await stored_customer(store, visitor(2), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    code = code_of(await chat.send("email me a code at Sam@Example.org"))
    clock.now += timedelta(minutes=10, seconds=1)
    late = await chat.send(code)
    assert "expired" in reply_text(late)
    # Long after, six digits are no longer taken for that code.
    clock.now += timedelta(minutes=10)
    assert "expired" not in reply_text(await chat.send(code))
    assert await store.find_customer(Identity(kind=IdentityKind.EMAIL, value="sam@example.org")) \
        is None  # fmt: skip


async def test_too_many_wrong_tries_lock_the_code(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    anon = await stored_customer(store, visitor(3), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    code = code_of(await chat.send("text me a code at 555-000-4444"))
    for _ in range(3):
        last = await chat.send(wrong(code))
    assert "too many wrong tries" in reply_text(last)
    refused = await chat.send(code)  # the right code, too late
    assert "too many wrong tries" in reply_text(refused)
    assert await store.find_customer(Identity(kind=IdentityKind.PHONE, value=OTHER_NUMBER)) \
        is None  # fmt: skip


async def test_code_sends_are_rate_limited_per_customer_and_per_target(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    anon = await stored_customer(store, visitor(4), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    for n in range(3):
        notice(await chat.send(f"text me a code at +1555000{n:04d}"))
    refused = await chat.send("text me a code at +15550009999")
    assert not [a for a in refused.actions if isinstance(a, Notify)]
    assert "most codes" in reply_text(refused)
    # The per-customer count lives in the store's events (here the ledger): a new
    # conversation of the same customer is refused too.
    later = await Chat(coded, ledger, anon).send("text me a code at +15550009999")
    assert "most codes" in reply_text(later)
    # Many throw-away visitors cannot flood one number either (one code went to it above).
    for n in range(5, 7):
        other = await stored_customer(store, visitor(n), ChannelKind.WEBCHAT)
        notice(await Chat(coded, ledger, other).send("text me a code at +15550000000"))
    other = await stored_customer(store, visitor(7), ChannelKind.WEBCHAT)
    first = await Chat(coded, ledger, other).send("text me a code at +15550001234")
    last = await Chat(coded, ledger, other).send("text me a code at +15550000000")
    # Nothing is sent, and the answer is that of a sent code: no oracle of others' asks.
    assert not [a for a in last.actions if isinstance(a, Notify)]
    assert reply_text(last) == reply_text(first).replace("1234", "0000")
    [sent] = [e for e in last.events if e.kind == "verify.code_sent"]
    assert sent.data["withheld"] == "target_limit"


async def test_code_sends_to_one_target_are_capped_per_day(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase, store: SqliteStore, clock: Clock
) -> None:
    verifier = Verifier(CodeBook(SECRET, ttl_s=600, attempts=3), store, sends_per_hour=3,
                        target_sends_per_day=4)  # fmt: skip
    policy = EmbeddedPolicy(backend, ledger, kb, clock=clock, verifier=verifier)
    sent = []
    for n in range(8):  # a new throw-away visitor every two hours, all asking for one number
        clock.now += timedelta(hours=2)
        anon = await stored_customer(store, visitor(100 + n), ChannelKind.WEBCHAT)
        asked = await Chat(policy, ledger, anon).send("text me a code at +15550004321")
        assert "I've sent a 6-digit code" in reply_text(asked)
        sent.append(any(isinstance(a, Notify) for a in asked.actions))
    assert sent == [True] * 4 + [False] * 4  # four in the day; the fifth 8 hours later...
    clock.now += timedelta(hours=10)  # ... a day after the first, one more may go
    anon = await stored_customer(store, visitor(200), ChannelKind.WEBCHAT)
    notice(await Chat(policy, ledger, anon).send("text me a code at +15550004321"))


async def test_a_number_of_another_customer_with_history_is_merged_after_the_code(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    owner = await stored_customer(
        store, Identity(kind=IdentityKind.PHONE, value=OTHER_NUMBER), ChannelKind.SMS
    )
    anon = await stored_customer(store, visitor(10), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    sent = await chat.send("text me a code at +15550004444")
    # Before the proof nothing tells whether the number is someone's.
    assert "another" not in reply_text(sent) and "earlier" not in reply_text(sent)
    done = await chat.send(code_of(sent))
    assert "earlier messages" in reply_text(done)
    assert "never merged" not in reply_text(done)
    holder = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=OTHER_NUMBER))
    assert holder is not None and holder.id == anon.id
    assert [m.text for m in await store.history(anon.id)] == ["hello", "hello"]
    assert [e.data["result"] for e in done.events if e.kind == "identity.link"] == ["merged"]
    assert owner.id != anon.id


async def test_a_number_on_record_for_another_account_is_not_linked(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    got = await store.ingest(InboundMessage(channel=ChannelKind.WEBCHAT, identity=visitor(11),
                                            text="hi", account_ref="C-1001"))  # fmt: skip
    chat = Chat(coded, ledger, got.customer)
    code = code_of(await chat.send("text me a code at +1 555 987 6543"))  # Bob's number
    done = await chat.send(code)
    assert "different account" in reply_text(done)
    assert await store.find_customer(Identity(kind=IdentityKind.PHONE, value="+15559876543")) \
        is None  # fmt: skip


async def test_linking_a_number_on_record_ties_the_account(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    anon = await stored_customer(store, visitor(12), ChannelKind.WEBCHAT)
    chat = Chat(coded, ledger, anon)
    code = code_of(await chat.send("please send me a verification code to +15551234567"))
    await chat.send(code)
    assert (await store.get_customer(anon.id)).account_ref == "C-1001"


async def test_a_forged_email_cannot_reset_a_password(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    sender = Identity(kind=IdentityKind.EMAIL, value="jane@example.com",
                      verified=Verification.SENDER)  # fmt: skip
    who = await stored_customer(store, sender, ChannelKind.EMAIL)
    chat = Chat(coded, ledger, who, ChannelKind.EMAIL)
    asked = await chat.send("I forgot my password, please reset it")
    assert "tool.password_reset" not in kinds(asked)
    assert notice(asked).to == Identity(kind=IdentityKind.EMAIL, value="jane@example.com")
    assert "j***@example.com" in reply_text(asked)
    guessed = await chat.send(wrong(code_of(asked)))
    assert "tool.password_reset" not in kinds(guessed)
    done = await chat.send(code_of(asked))
    assert "tool.password_reset" in kinds(done)
    assert "reset link" in reply_text(done)
    # The proof tied the sender to the account; confirmed for a while, a second
    # request (the gateway reads the customer afresh each turn) needs no new code.
    chat.customer = await store.get_customer(who.id)
    assert chat.customer.account_ref == "C-1001"
    assert "tool.password_reset" in kinds(await chat.send("reset my password again"))


async def test_a_cancellation_by_sms_is_confirmed_through_the_number_on_record(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    got = await store.ingest(InboundMessage(
        channel=ChannelKind.SMS, text="hi", account_ref="C-1001",
        identity=Identity(kind=IdentityKind.PHONE, value="+15551234567",
                          verified=Verification.SENDER),
    ))  # fmt: skip
    chat = Chat(coded, ledger, got.customer, ChannelKind.SMS)
    asked = await chat.send("cancel my subscription")
    assert notice(asked).to == Identity(kind=IdentityKind.PHONE, value="+15551234567")
    offered = await chat.send(code_of(asked))
    assert offered.agent_state["pending"] == "confirm_cancel"
    done = await chat.send("yes")
    assert "tool.subscription_cancel" in kinds(done)


async def test_without_codes_a_weak_channel_does_no_account_action(
    policy: EmbeddedPolicy, ledger: MemoryLedger
) -> None:
    jane = Customer(id=1, account_ref="C-1001", created_at=datetime.now(UTC), identities=(
        Identity(kind=IdentityKind.EMAIL, value="jane@example.com", verified=Verification.SENDER),
    ))  # fmt: skip
    decision = await Chat(policy, ledger, jane, ChannelKind.EMAIL).send("reset my password")
    assert "tool.password_reset" not in kinds(decision)
    assert "confirming" in reply_text(decision)
    web = await Chat(policy, ledger, jane, ChannelKind.WEBCHAT).send("reset my password")
    assert "tool.password_reset" in kinds(web)  # a signed-in chat needs no code


def test_codes_are_found_only_on_their_own() -> None:
    assert find_code("my code is 123 456") == "123456"
    assert find_code("one two three four five six") == "123456"
    for text in ("+1 555 123 4567", "order 1001", "1234567", "123456 or 654321"):
        assert find_code(text) is None


async def test_a_caller_reads_back_the_texted_code(
    coded: EmbeddedPolicy, ledger: MemoryLedger, store: SqliteStore
) -> None:
    got = await store.ingest(InboundMessage(
        channel=ChannelKind.PHONE, text="hi", account_ref="C-1001",
        identity=Identity(kind=IdentityKind.PHONE, value="+15551234567",
                          verified=Verification.CALLER_ID),
    ))  # fmt: skip
    chat = Chat(coded, ledger, got.customer, ChannelKind.PHONE)
    asked = await chat.send("I can't log in, I need a new password")
    assert notice(asked).to.key == "phone:+15551234567"  # texted to the number on record
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    spoken = ", ".join(words[int(d)] for d in code_of(asked))  # as the recogniser writes it
    assert "tool.password_reset" in kinds(await chat.send(spoken))


def test_asking_for_a_code_is_its_own_intent() -> None:
    for text in ("text me a code at +1 555 123 4567", "my email is jane@example.com, send me a"
                 " code", "can you link my phone number", "verify my email please"):  # fmt: skip
        assert parse(text).intent is Intent.LINK_IDENTITY, text
    assert parse("send me a code to reset my password").intent is Intent.PASSWORD_RESET
    assert parse("I want to add a new card to my account").intent is not Intent.LINK_IDENTITY
    assert parse("I can't connect to my account").intent is not Intent.LINK_IDENTITY
    assert find_target("my email is Jane@Example.com, send me a code") == Identity(
        kind=IdentityKind.EMAIL, value="jane@example.com"
    )
    assert find_target("text me at (555) 123-4567 not jane@example.com") == Identity(
        kind=IdentityKind.PHONE, value="+15551234567"
    )
