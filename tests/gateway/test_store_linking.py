"""`Store.link_identity` on both backends: link after proof; another record holding the identity
is merged (as auto-linking merges), unless the two are tied to different accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.errors import NotFoundError
from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
from gateway.protocols import LinkResult
from tests.support.stores import AnyStore, open_store

PHONE = Identity(kind=IdentityKind.PHONE, value="+15550004444", verified=Verification.OTP)


def web(n: int) -> Identity:
    return Identity(kind=IdentityKind.WEBCHAT, value=f"v-{n}", verified=Verification.SIGNED_TOKEN)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    db = await open_store(store_url)
    yield db
    await db.close()


async def say(store: AnyStore, identity: Identity, text: str = "hi", **kw: str) -> int:
    channel = ChannelKind.SMS if identity.kind is IdentityKind.PHONE else ChannelKind.WEBCHAT
    got = await store.ingest(InboundMessage(channel=channel, identity=identity, text=text, **kw))
    return got.customer.id


async def test_a_new_identity_is_linked_and_later_messages_join_the_customer(
    store: AnyStore,
) -> None:
    cid = await say(store, web(1))
    linked = await store.link_identity(cid, PHONE, account_ref="C-1001")
    assert linked.result is LinkResult.LINKED
    assert linked.customer.account_ref == "C-1001"
    assert PHONE in linked.customer.identities
    # The writer's caches know it at once: a text from that number is this customer's.
    assert await say(store, PHONE.model_copy(update={"verified": Verification.SENDER})) == cid
    again = await store.link_identity(cid, PHONE)
    assert again.result is LinkResult.ALREADY
    found = await store.find_customer(PHONE)
    assert found is not None and found.id == cid
    assert next(i for i in found.identities if i.key == PHONE.key).verified is Verification.OTP


async def test_linking_raises_a_weak_identity_to_otp(store: AnyStore) -> None:
    weak = PHONE.model_copy(update={"verified": Verification.SENDER})
    cid = await say(store, weak)
    linked = await store.link_identity(cid, PHONE, account_ref="C-1001")
    assert linked.result is LinkResult.ALREADY
    assert [i.verified for i in linked.customer.identities] == [Verification.OTP]
    assert (await store.get_customer(cid)).account_ref == "C-1001"


async def test_another_customers_identity_with_history_is_merged_after_the_survivors(
    store: AnyStore,
) -> None:
    texter = PHONE.model_copy(update={"verified": Verification.SENDER})
    owner = await say(store, texter, "first text")
    await say(store, texter, "second text")
    cid = await say(store, web(2), "chat one")
    await say(store, web(2), "chat two")
    before = await store.history(cid)
    merged = await store.link_identity(cid, PHONE)
    assert merged.result is LinkResult.MERGED
    assert merged.customer.id == cid
    assert {i.key for i in merged.customer.identities} == {web(2).key, PHONE.key}
    assert next(i for i in merged.customer.identities if i.key == PHONE.key).verified \
        is Verification.OTP  # fmt: skip
    # The survivor's numbers never change; the texts follow them in their own order.
    history = await store.history(cid)
    assert history[: len(before)] == before
    assert [(m.seq, m.text) for m in history] == [
        (1, "chat one"), (2, "chat two"), (3, "first text"), (4, "second text"),
    ]  # fmt: skip
    with pytest.raises(NotFoundError):
        await store.get_customer(owner)
    # The writer's caches know it at once: the next text is filed under the survivor.
    assert await say(store, texter, "third text") == cid
    assert [m.seq for m in await store.history(cid, after_seq=4)] == [5]
    found = await store.find_customer(PHONE)
    assert found is not None and found.id == cid


async def test_a_merged_record_brings_its_account(store: AnyStore) -> None:
    texter = PHONE.model_copy(update={"verified": Verification.SENDER})
    await say(store, texter, account_ref="C-1001")
    cid = await say(store, web(5))
    merged = await store.link_identity(cid, PHONE)
    assert merged.result is LinkResult.MERGED
    assert merged.customer.account_ref == "C-1001"


async def test_another_accounts_record_is_not_merged(store: AnyStore) -> None:
    texter = PHONE.model_copy(update={"verified": Verification.SENDER})
    owner = await say(store, texter, account_ref="C-1002")
    cid = await say(store, web(6), account_ref="C-1001")
    refused = await store.link_identity(cid, PHONE)
    assert refused.result is LinkResult.OTHER_ACCOUNT
    assert PHONE.key not in {i.key for i in refused.customer.identities}
    holder = await store.find_customer(PHONE)
    assert holder is not None and holder.id == owner
    assert len(await store.history(owner)) == 1 and len(await store.history(cid)) == 1


async def test_an_identity_of_an_empty_record_is_moved(store: AnyStore) -> None:
    empty = await store.open_session(PHONE, ChannelKind.PHONE)  # no message ever stored
    cid = await say(store, web(3))
    moved = await store.link_identity(cid, PHONE)
    assert moved.result is LinkResult.LINKED
    holder = await store.find_customer(PHONE)
    assert holder is not None and holder.id == cid
    assert (await store.get_customer(empty.customer.id)).identities == ()


async def test_a_customer_of_another_account_is_refused(store: AnyStore) -> None:
    cid = await say(store, web(4), account_ref="C-1001")
    refused = await store.link_identity(cid, PHONE, account_ref="C-1002")
    assert refused.result is LinkResult.OTHER_ACCOUNT
    assert await store.find_customer(PHONE) is None
    assert refused.customer.account_ref == "C-1001"


async def test_an_unknown_customer_is_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFoundError):
        await store.link_identity(999, PHONE)
