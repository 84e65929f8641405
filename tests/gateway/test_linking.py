"""Linking senders to backend accounts, and merging customers that turn out to be one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.backend import Account, LookupKind
from agent.demo_backend import DemoBackend
from gateway.errors import BackendError, NotFoundError
from gateway.linking import AccountLinker, link_channels
from gateway.models import (
    ChannelKind,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.protocols import OutboundDraft, TurnRecord
from gateway.store.sqlite import SqliteStore

JANE_PHONE = "+15551234567"
JANE_EMAIL = "jane@example.com"
ALL = link_channels(sms=True, email=True)


class FlakyBackend:
    """The demo backend behind a link that fails (or hangs) while `down` is set."""

    def __init__(self, real: DemoBackend) -> None:
        self.real = real
        self.down: str | None = None  # "error" or "hang"
        self.lookups = 0

    async def find_account(self, kind: LookupKind, value: str) -> Account | None:
        self.lookups += 1
        if self.down == "error":
            raise BackendError("backend unreachable")
        if self.down == "hang":
            await asyncio.sleep(30)
        return await self.real.find_account(kind, value)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "gw.sqlite3")
    yield s
    await s.close()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FlakyBackend]:
    demo = DemoBackend(tmp_path / "backend.sqlite3")
    yield FlakyBackend(demo)
    await demo.close()


def sms(text: str, number: str = JANE_PHONE, ext: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.SMS,
        identity=Identity(kind=IdentityKind.PHONE, value=number, verified=Verification.SENDER),
        text=text,
        external_id=ext,
    )


def email(text: str, sender: str = JANE_EMAIL, **kw: object) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        identity=Identity(kind=IdentityKind.EMAIL, value=sender, verified=Verification.SENDER),
        text=text,
        new_conversation=True,
        **kw,  # type: ignore[arg-type]
    )


async def answer(store: SqliteStore, conversation_id: int, text: str) -> None:
    conv = await store.get_conversation(conversation_id)
    await store.record_turn(
        TurnRecord(
            conversation_id=conversation_id,
            expected_version=conv.version,
            outbound=(OutboundDraft(text=text, channel=conv.channel),),
        )
    )


async def test_a_text_and_a_mail_join_the_callers_account_customer(
    store: SqliteStore, backend: FlakyBackend
) -> None:
    linker = AccountLinker(store, backend, ALL)
    caller = Identity(kind=IdentityKind.PHONE, value=JANE_PHONE, verified=Verification.CALLER_ID)
    call = await store.open_session(caller, ChannelKind.PHONE, account_ref="C-1001")
    text = await store.ingest(await linker.link(sms("any news?")))
    linked = await linker.link(email("Hello"))
    assert (linked.account_ref, linked.display_name) == ("C-1001", "Jane Doe")  # from the account
    mail = await store.ingest(linked)
    assert text.customer.id == mail.customer.id == call.customer.id
    keys = {i.key: i.verified for i in mail.customer.identities}
    # Linking does not vouch for the sender: each identity keeps its channel's verification.
    assert keys == {
        f"phone:{JANE_PHONE}": Verification.CALLER_ID,
        f"email:{JANE_EMAIL}": Verification.SENDER,
    }
    # A linked sender's next message needs no lookup.
    lookups = backend.lookups
    await store.ingest(await linker.link(sms("thanks")))
    assert backend.lookups == lookups


async def test_a_sender_on_no_account_and_channels_left_off_are_not_linked(
    store: SqliteStore, backend: FlakyBackend
) -> None:
    stranger = await store.ingest(
        await AccountLinker(store, backend, ALL).link(email("hi", "nobody@example.org"))
    )
    assert stranger.customer.account_ref is None
    sms_off = AccountLinker(store, backend, link_channels(sms=False, email=True))
    event = sms("hello")
    assert await sms_off.link(event) is event
    assert backend.lookups == 1
    # A stranger is not looked up on every message, until the miss expires.
    linker = AccountLinker(store, backend, ALL, miss_ttl_s=0.2)
    for _ in range(3):
        await store.ingest(await linker.link(sms("hello?", "+15550009999")))
    assert backend.lookups == 2
    await asyncio.sleep(0.25)
    await linker.link(sms("hello?", "+15550009999"))
    assert backend.lookups == 3


@pytest.mark.parametrize("failure", ["error", "hang"])
async def test_a_backend_failure_stores_unlinked_and_a_later_message_merges(
    store: SqliteStore, backend: FlakyBackend, failure: str
) -> None:
    linker = AccountLinker(store, backend, ALL, timeout_s=0.2)
    # Jane phones (linked at once) and the agent answers.
    caller = Identity(kind=IdentityKind.PHONE, value=JANE_PHONE, verified=Verification.CALLER_ID)
    call = await store.open_session(caller, ChannelKind.PHONE, account_ref="C-1001")
    said = await store.ingest(InboundMessage(channel=ChannelKind.PHONE, identity=caller,
                                             text="where is order 1001"))  # fmt: skip
    await answer(store, call.conversation.id, "Order 1001 has shipped.")
    # Her mail arrives while the backend is down: stored, on a customer of its own.
    backend.down = failure
    first = await store.ingest(await linker.link(email("Hello, about my order", external_id="m1")))
    assert first.customer.id != call.customer.id and first.customer.account_ref is None
    await answer(store, first.conversation.id, "Hello, which order?")
    assert linker.failures == 1
    # The backend is back: her next mail links, and the two customers become one.
    backend.down = None
    second = await store.ingest(await linker.link(email("It's order 1001", external_id="m2")))
    jane = second.customer
    assert jane.id == call.customer.id and jane.account_ref == "C-1001"
    assert {i.key for i in jane.identities} == {f"phone:{JANE_PHONE}", f"email:{JANE_EMAIL}"}
    history = await store.history(jane.id)
    # Her numbering stays gap-free and unique: the merged messages follow hers, in order.
    assert [m.seq for m in history] == [1, 2, 3, 4, 5]
    assert [m.text for m in history] == [
        "where is order 1001", "Order 1001 has shipped.",
        "Hello, about my order", "Hello, which order?", "It's order 1001",
    ]  # fmt: skip
    assert history[0].id == said.message.id and history[0].seq == said.message.seq
    # Messages keep their conversation, which now belongs to her.
    assert history[2].conversation_id == first.conversation.id
    moved = await store.get_conversation(first.conversation.id)
    assert moved.customer_id == jane.id
    events = {e.kind: e.data for e in await store.events(first.conversation.id)}
    assert events["customer.merged"] == {
        "account_ref": "C-1001", "identity": f"email:{JANE_EMAIL}", "from_customer":
        first.customer.id, "into_customer": jane.id, "messages": 2, "seqs": [3, 4],
    }  # fmt: skip
    with pytest.raises(NotFoundError):
        await store.get_customer(first.customer.id)
    # A retry of the first mail is still recognised, under her.
    again = await store.ingest(email("Hello, about my order", external_id="m1"))
    assert again.duplicate and again.customer.id == jane.id
    # The file agrees: no orphan rows, seqs unique per customer.
    conn = sqlite3.connect(store.path)
    orphans = conn.execute(
        "SELECT COUNT(*) FROM messages WHERE customer_id NOT IN (SELECT id FROM customers)"
    ).fetchone()
    conn.close()
    assert orphans == (0,)


async def test_a_number_already_linked_elsewhere_is_not_relinked(store: SqliteStore) -> None:
    linked = await store.ingest(sms("hi").model_copy(update={"account_ref": "C-1002"}))
    other = await store.ingest(email("hi").model_copy(update={"account_ref": "C-1001"}))
    again = await store.ingest(sms("hello").model_copy(update={"account_ref": "C-1001"}))
    assert again.customer.id == linked.customer.id != other.customer.id
    assert again.customer.account_ref == "C-1002"
