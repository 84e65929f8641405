"""The store on both backends (SQLite and PostgreSQL, see `store_url`): schema
migrations, ingest/turn semantics, durability."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from gateway.errors import ConflictError, NotFoundError, StoreError
from gateway.models import (
    Attachment,
    AuthorKind,
    ChannelKind,
    ConversationState,
    DeliveryStatus,
    Direction,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
    VoiceTiming,
)
from gateway.protocols import EventDraft, OutboundDraft, TurnRecord
from gateway.store import migrate
from gateway.store.schema import metadata
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import PgUrl
from tests.support import services
from tests.support.stores import AnyStore, open_store

ROOT = Path(__file__).resolve().parents[2]


def chat(visitor: str, text: str, ext: str | None = None, **kw: object) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.WEBCHAT,
        identity=Identity(
            kind=IdentityKind.WEBCHAT, value=visitor, verified=Verification.SIGNED_TOKEN
        ),
        text=text,
        external_id=ext,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    s = await open_store(store_url)
    yield s
    await s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without tables, as a sync SQLAlchemy URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    request.getfixturevalue("pg_template")
    name = services.fresh_database(empty=True)
    yield PgUrl.parse(services.database_url(name)).sqlalchemy
    services.drop_database(name)


def test_migrations_match_the_schema_and_go_both_ways(empty_db_url: str) -> None:
    url = empty_db_url
    migrate.upgrade(url)
    assert {
        "customers",
        "identities",
        "conversations",
        "messages",
        "events",
    } <= migrate.current_tables(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        # Full-text search of messages (0009) is raw SQL per store, not in schema.py.
        raw = ("messages_fts", "ix_messages_text_search")
        opts = {"include_name": lambda name, kind, _: not (name or "").startswith(raw)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    engine.dispose()
    assert diff == [], f"migrations and schema.py disagree: {diff}"
    migrate.downgrade(url, "base")
    assert migrate.current_tables(url) <= {"alembic_version"}
    migrate.upgrade(url)
    assert "messages" in migrate.current_tables(url)


async def test_first_contact_creates_customer_identity_and_conversation(store: AnyStore) -> None:
    got = await store.ingest(chat("v1", "hello", "e1", display_name="Jane"))
    assert got.created_customer and not got.duplicate
    assert got.customer.display_name == "Jane"
    assert [i.key for i in got.customer.identities] == ["webchat:v1"]
    assert got.conversation.state is ConversationState.BOT
    assert got.message.seq == 1 and got.message.direction is Direction.INBOUND
    again = await store.ingest(chat("v1", "second", "e2"))
    assert again.customer.id == got.customer.id and not again.created_customer
    assert again.conversation.id == got.conversation.id
    assert again.message.seq == 2
    events = await store.events(got.conversation.id)
    assert [e.kind for e in events] == ["conversation.started"]


async def test_retried_external_id_is_stored_once(store: AnyStore) -> None:
    first = await store.ingest(chat("v1", "hello", "same"))
    retry = await store.ingest(chat("v1", "hello", "same"))
    assert retry.duplicate and retry.message.id == first.message.id and not retry.handled
    assert len(await store.conversation_messages(first.conversation.id)) == 1
    # The same external id on another channel is a different message.
    sms = InboundMessage(
        channel=ChannelKind.SMS,
        identity=Identity(kind=IdentityKind.PHONE, value="+15551234567"),
        text="hi",
        external_id="same",
    )
    assert not (await store.ingest(sms)).duplicate


async def test_turns_number_messages_and_move_state(store: AnyStore) -> None:
    got = await store.ingest(chat("v1", "refund please", "e1"))
    turn = TurnRecord(
        conversation_id=got.conversation.id,
        expected_version=0,
        handled_message_id=got.message.id,
        outbound=(OutboundDraft(text="A person will help", channel=ChannelKind.WEBCHAT),),
        events=(EventDraft(kind="tool.refund_lookup", data={"ok": True}),),
        agent_state={"pending": None},
        state=ConversationState.QUEUED,
        queue="billing",
    )
    stored = await store.record_turn(turn)
    assert (
        stored.conversation.version == 1 and stored.conversation.state is ConversationState.QUEUED
    )
    assert stored.conversation.queue == "billing"
    assert [m.seq for m in stored.messages] == [2] and stored.messages[0].author is AuthorKind.AGENT
    assert await store.unhandled_messages() == []
    kinds = [e.kind for e in await store.events(got.conversation.id)]
    assert kinds == ["conversation.started", "tool.refund_lookup", "state.changed"]
    with pytest.raises(ConflictError):
        await store.record_turn(turn)  # stale version
    dup = await store.ingest(chat("v1", "refund please", "e1"))
    assert dup.duplicate and dup.handled


async def test_closed_conversation_is_followed_by_a_new_one(store: AnyStore) -> None:
    got = await store.ingest(chat("v1", "bye", "e1"))
    await store.record_turn(
        TurnRecord(
            conversation_id=got.conversation.id, expected_version=0, state=ConversationState.CLOSED
        )
    )
    nxt = await store.ingest(chat("v1", "hello again", "e2"))
    assert nxt.conversation.id != got.conversation.id
    assert nxt.message.seq == 2  # numbering is per customer, across conversations
    assert [m.text for m in await store.history(got.customer.id)] == ["bye", "hello again"]


async def test_channels_join_one_conversation_and_account_links(store: AnyStore) -> None:
    signed = InboundMessage(
        channel=ChannelKind.WEBCHAT,
        identity=Identity(kind=IdentityKind.ACCOUNT, value="C-1001", verified=Verification.HMAC),
        text="hi",
        account_ref="C-1001",
    )
    first = await store.ingest(signed)
    assert first.customer.account_ref == "C-1001"
    sms = InboundMessage(
        channel=ChannelKind.SMS,
        identity=Identity(
            kind=IdentityKind.PHONE, value="+15551234567", verified=Verification.BACKEND
        ),
        text="texting now",
        account_ref="C-1001",
    )
    second = await store.ingest(sms)
    assert second.customer.id == first.customer.id
    assert second.conversation.id == first.conversation.id
    assert second.conversation.channel is ChannelKind.SMS
    assert second.conversation.channels == (ChannelKind.WEBCHAT, ChannelKind.SMS)
    customer = await store.get_customer(first.customer.id)
    assert {i.key for i in customer.identities} == {"account:C-1001", "phone:+15551234567"}
    found = await store.find_customer(Identity(kind=IdentityKind.PHONE, value="+15551234567"))
    assert found is not None and found.id == first.customer.id


async def test_open_session_finds_or_starts_a_conversation_without_a_message(
    store: AnyStore,
) -> None:
    caller = Identity(
        kind=IdentityKind.PHONE, value="+15550000042", verified=Verification.CALLER_ID
    )
    first = await store.open_session(caller, ChannelKind.PHONE)
    assert first.created_customer and first.created_conversation
    assert first.conversation.channel is ChannelKind.PHONE and first.conversation.version == 0
    assert await store.conversation_messages(first.conversation.id) == []
    again = await store.open_session(caller, ChannelKind.PHONE)
    assert (again.customer.id, again.conversation.id) == (first.customer.id, first.conversation.id)
    assert not again.created_customer and not again.created_conversation
    # The first words then land in the same conversation.
    said = await store.ingest(InboundMessage(channel=ChannelKind.PHONE, identity=caller, text="hi"))
    assert said.conversation.id == first.conversation.id and said.message.seq == 1

    # A caller whose number the business lists joins that account's customer and
    # conversation, which moves to the phone.
    web = await store.ingest(
        InboundMessage(
            channel=ChannelKind.WEBCHAT,
            identity=Identity(kind=IdentityKind.ACCOUNT, value="C-7", verified=Verification.HMAC),
            text="hello from the web",
            account_ref="C-7",
        )
    )
    phone = Identity(kind=IdentityKind.PHONE, value="+15550000077", verified=Verification.CALLER_ID)
    joined = await store.open_session(
        phone, ChannelKind.PHONE, display_name="Ana Lima", account_ref="C-7"
    )
    assert joined.customer.id == web.customer.id and not joined.created_customer
    assert joined.conversation.id == web.conversation.id and not joined.created_conversation
    assert joined.conversation.channels == (ChannelKind.WEBCHAT, ChannelKind.PHONE)
    assert joined.customer.display_name is None  # as `ingest`: a link does not rename
    assert {i.key for i in joined.customer.identities} == {"account:C-7", "phone:+15550000077"}
    events = [e.kind for e in await store.events(web.conversation.id)]
    assert events == ["conversation.started"]


async def test_amend_message_cuts_text_and_sets_voice_timing(store: AnyStore) -> None:
    got = await store.ingest(chat("v9", "hello", "a1"))
    stored = await store.record_turn(
        TurnRecord(
            conversation_id=got.conversation.id,
            expected_version=0,
            outbound=(OutboundDraft(text="One. Two. Three.", channel=ChannelKind.PHONE),),
        )
    )
    [reply] = stored.messages
    timed = await store.amend_message(reply.id, timing=VoiceTiming(start_ms=100, end_ms=900))
    assert (timed.text, timed.timing) == ("One. Two. Three.", VoiceTiming(start_ms=100, end_ms=900))
    assert [e.kind for e in await store.events(got.conversation.id)] == ["conversation.started"]

    cut = await store.amend_message(
        reply.id, text="One. Two.", timing=VoiceTiming(start_ms=100, end_ms=700), reason="barge_in"
    )
    assert (cut.text, cut.timing, cut.seq) == ("One. Two.", VoiceTiming(start_ms=100, end_ms=700),
                                               reply.seq)  # fmt: skip
    [event] = [e for e in await store.events(got.conversation.id) if e.kind == "message.cut"]
    assert event.data == {"message_id": reply.id, "original": "One. Two. Three.",
                          "text": "One. Two.", "reason": "barge_in"}  # fmt: skip
    history = await store.history(got.customer.id)
    assert [m.text for m in history] == ["hello", "One. Two."]  # what the agent remembers
    unchanged = await store.amend_message(reply.id, text="One. Two.", reason="barge_in")
    assert unchanged.text == "One. Two."
    assert len([e for e in await store.events(got.conversation.id) if e.kind == "message.cut"]) == 1
    with pytest.raises(NotFoundError):
        await store.amend_message(999_999, text="x")


async def test_verification_only_gets_stronger(store: AnyStore) -> None:
    weak = Identity(kind=IdentityKind.PHONE, value="+15550000001", verified=Verification.CALLER_ID)
    strong = weak.model_copy(update={"verified": Verification.OTP})
    base = {"channel": ChannelKind.SMS, "text": "x"}
    await store.ingest(InboundMessage(identity=weak, **base))  # type: ignore[arg-type]
    got = await store.ingest(InboundMessage(identity=strong, **base))  # type: ignore[arg-type]
    assert got.customer.identities[0].verified is Verification.OTP
    got = await store.ingest(InboundMessage(identity=weak, **base))  # type: ignore[arg-type]
    assert got.customer.identities[0].verified is Verification.OTP


async def test_verification_gets_stronger_in_the_message_that_merges_two_records(
    store: AnyStore,
) -> None:
    # A texter known only by caller id, with history of their own...
    weak = Identity(kind=IdentityKind.PHONE, value="+15550000077", verified=Verification.SENDER)
    texter = await store.ingest(InboundMessage(channel=ChannelKind.SMS, identity=weak, text="hi"))
    # ...and the account's own record, from a signed-in web chat.
    signed = Identity(kind=IdentityKind.ACCOUNT, value="C-1001", verified=Verification.HMAC)
    account = await store.ingest(InboundMessage(
        channel=ChannelKind.WEBCHAT, identity=signed, text="hello", account_ref="C-1001"
    ))  # fmt: skip
    assert texter.customer.id != account.customer.id
    # The backend now vouches for the number: one message merges the two records and
    # raises the number's verification.
    vouched = weak.model_copy(update={"verified": Verification.BACKEND})
    got = await store.ingest(InboundMessage(
        channel=ChannelKind.SMS, identity=vouched, text="me again", account_ref="C-1001"
    ))  # fmt: skip
    assert got.customer.id == account.customer.id
    number = {i.key: i.verified for i in got.customer.identities}["phone:+15550000077"]
    assert number is Verification.BACKEND
    stored = await store.get_customer(account.customer.id)
    assert {i.key: i.verified for i in stored.identities} == {
        "account:C-1001": Verification.HMAC,
        "phone:+15550000077": Verification.BACKEND,
    }
    assert [m.text for m in await store.history(stored.id)] == ["hello", "hi", "me again"]


async def test_voice_timing_and_confidence_are_kept(store: AnyStore) -> None:
    msg = InboundMessage(
        channel=ChannelKind.PHONE,
        identity=Identity(kind=IdentityKind.PHONE, value="+15551230000"),
        text="where is my order",
        confidence=0.82,
        timing=VoiceTiming(start_ms=1200, end_ms=2900),
    )
    got = await store.ingest(msg)
    [stored] = await store.conversation_messages(got.conversation.id)
    assert stored.confidence == pytest.approx(0.82)
    assert stored.timing == VoiceTiming(start_ms=1200, end_ms=2900)


async def test_concurrent_writes_are_group_committed_and_gap_free(store: AnyStore) -> None:
    await asyncio.gather(*(store.ingest(chat(f"v{i % 10}", f"m{i}", f"e{i}")) for i in range(500)))
    if isinstance(store, SqliteStore):
        batches, writes = store.commit_stats
        assert writes == 500 and batches < writes  # several writes shared a commit
    for visitor in range(10):
        customer = await store.find_customer(
            Identity(kind=IdentityKind.WEBCHAT, value=f"v{visitor}")
        )
        assert customer is not None
        seqs = [m.seq for m in await store.history(customer.id, limit=1000)]
        assert seqs == list(range(1, 51))
        tail = await store.history(customer.id, after_seq=45)
        assert [m.seq for m in tail] == [46, 47, 48, 49, 50]


async def test_count_events_window(store: AnyStore) -> None:
    got = await store.ingest(chat("v1", "reset", "e1"))
    await store.record_turn(
        TurnRecord(
            conversation_id=got.conversation.id,
            expected_version=0,
            events=(EventDraft(kind="tool.password_reset"), EventDraft(kind="tool.password_reset")),
        )
    )
    since = datetime.now(UTC) - timedelta(days=1)
    assert await store.count_events(got.customer.id, "tool.password_reset", since) == 2
    future = datetime.now(UTC) + timedelta(minutes=1)
    assert await store.count_events(got.customer.id, "tool.password_reset", future) == 0


async def test_a_second_process_cannot_open_the_same_sqlite_file(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "gw.sqlite3")
    try:
        with pytest.raises(StoreError, match="another gateway process"):
            SqliteStore.open(store.path)
    finally:
        await store.close()


async def test_reopened_store_has_everything(store_url: str) -> None:
    s = await open_store(store_url)
    got = await s.ingest(chat("v1", "hello", "e1"))
    await s.record_turn(
        TurnRecord(
            conversation_id=got.conversation.id,
            expected_version=0,
            handled_message_id=got.message.id,
            outbound=(OutboundDraft(text="hi there", channel=ChannelKind.WEBCHAT),),
            agent_state={"pending": "order_number"},
        )
    )
    await s.close()
    s2 = await open_store(store_url)
    try:
        conv = await s2.get_conversation(got.conversation.id)
        assert conv.agent_state == {"pending": "order_number"} and conv.version == 1
        assert [m.text for m in await s2.history(got.customer.id)] == ["hello", "hi there"]
        nxt = await s2.ingest(chat("v1", "1001", "e2"))
        assert nxt.message.seq == 3 and nxt.conversation.id == conv.id
    finally:
        await s2.close()


def test_killed_process_loses_no_acknowledged_message(store_url: str) -> None:
    """A writer killed with SIGKILL mid-stream: every message it acknowledged is there."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from tests.support.stores import open_store
        from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage

        async def main() -> None:
            store = await open_store({store_url!r})
            i = 0
            while True:
                batch = [
                    store.ingest(InboundMessage(channel=ChannelKind.WEBCHAT,
                        identity=Identity(kind=IdentityKind.WEBCHAT, value=f"v{{(i + k) % 7}}"),
                        text="m", external_id=f"e{{i + k}}"))
                    for k in range(20)
                ]
                for got in await asyncio.gather(*batch):
                    print(got.message.external_id, flush=True)
                i += 20

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    acked: list[str] = []
    for line in proc.stdout:
        acked.append(line.strip())
        if len(acked) >= 400:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 400

    async def check() -> set[str]:
        store = await open_store(store_url)  # an SQLite lock died with the process
        try:
            found: set[str] = set()
            for visitor in range(7):
                c = await store.find_customer(
                    Identity(kind=IdentityKind.WEBCHAT, value=f"v{visitor}")
                )
                assert c is not None
                found |= {m.external_id or "" for m in await store.history(c.id, limit=100_000)}
            return found
        finally:
            await store.close()

    stored = asyncio.run(check())
    missing = set(acked) - stored
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"


async def test_delivery_status_moves_forward_only_and_failures_are_events(
    store: AnyStore,
) -> None:
    got = await store.ingest(chat("v1", "hi", "e1"))
    stored = await store.record_turn(
        TurnRecord(
            conversation_id=got.conversation.id,
            expected_version=0,
            outbound=(OutboundDraft(text="hello", channel=ChannelKind.SMS),),
        )
    )
    out = stored.messages[0]
    sent = await store.set_delivery(out.id, DeliveryStatus.QUEUED, external_id="SM123")
    assert sent.status is DeliveryStatus.QUEUED and sent.external_id == "SM123"
    found = await store.find_message(ChannelKind.SMS, "SM123")
    assert found is not None and found.id == out.id
    # Callbacks out of order: "sent" after "undelivered" does not step back.
    failed = await store.update_delivery(
        ChannelKind.SMS, "SM123", DeliveryStatus.UNDELIVERED, error_code="30003"
    )
    assert failed is not None and failed.status is DeliveryStatus.UNDELIVERED
    late = await store.update_delivery(ChannelKind.SMS, "SM123", DeliveryStatus.SENT)
    assert late is not None and late.status is DeliveryStatus.UNDELIVERED
    assert late.error_code == "30003"
    assert await store.update_delivery(ChannelKind.SMS, "SMnope", DeliveryStatus.SENT) is None
    events = [e for e in await store.events(got.conversation.id) if e.kind == "delivery.failed"]
    assert len(events) == 1 and events[0].data["error_code"] == "30003"
    [reread] = [m for m in await store.history(got.customer.id) if m.id == out.id]
    assert reread.status is DeliveryStatus.UNDELIVERED


async def test_opt_out_is_remembered(store: AnyStore) -> None:
    phone = Identity(kind=IdentityKind.PHONE, value="+15557654321")
    assert not await store.set_opt_out(phone, True)  # unknown identity
    await store.ingest(InboundMessage(channel=ChannelKind.SMS, identity=phone, text="STOP"))
    assert await store.set_opt_out(phone, True)
    assert await store.is_opted_out(phone)
    assert await store.set_opt_out(phone, False)
    assert not await store.is_opted_out(phone)


async def test_attachments_are_kept(store: AnyStore) -> None:
    pic = Attachment(url="https://api.twilio.com/media/ME1", content_type="image/jpeg")
    got = await store.ingest(
        InboundMessage(
            channel=ChannelKind.SMS,
            identity=Identity(kind=IdentityKind.PHONE, value="+15550001111"),
            text="see photo",
            attachments=(pic,),
        )
    )
    assert got.message.attachments == (pic,)
    [stored] = await store.conversation_messages(got.conversation.id)
    assert stored.attachments == (pic,)


async def test_a_message_can_start_or_continue_a_given_conversation(store: AnyStore) -> None:
    first = await store.ingest(chat("v1", "thread one", "t1"))
    second = await store.ingest(chat("v1", "thread two", "t2", new_conversation=True))
    assert second.conversation.id != first.conversation.id
    # Without a target, the newest open conversation continues.
    assert (await store.ingest(chat("v1", "more", "t3"))).conversation.id == second.conversation.id
    # A target of the same customer continues that one.
    first_id = first.conversation.id
    back = await store.ingest(chat("v1", "back to one", "t4", conversation_id=first_id))
    assert back.conversation.id == first.conversation.id
    # Another customer's conversation, or an unknown one, is never a target.
    other = await store.ingest(chat("v2", "not yours", "t5", conversation_id=first.conversation.id))
    assert other.conversation.id != first.conversation.id
    assert other.conversation.customer_id != first.customer.id
    unknown = await store.ingest(chat("v1", "who", "t6", conversation_id=99_999))
    assert unknown.conversation.id == second.conversation.id
    # A closed target is not reopened: a new conversation starts.
    await store.record_turn(
        TurnRecord(
            conversation_id=first.conversation.id,
            expected_version=first.conversation.version,
            state=ConversationState.CLOSED,
        )
    )
    late = await store.ingest(
        chat("v1", "late", "t7", conversation_id=first.conversation.id, new_conversation=True)
    )
    assert late.conversation.id not in {first.conversation.id, second.conversation.id}
