"""The desk's search through each store's own reads, with more matching messages than
PostgreSQL's rare-word lookup takes (desk_sql.RARE): a common word is found newest
first up to the limit, a rare one among them exactly, filters apply either way."""

from __future__ import annotations

from gateway.desk.setup import open_desk_store
from gateway.desk.store import SearchQuery
from gateway.models import (
    ChannelKind,
    ConversationState,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.store import desk_sql
from tests.support.stores import open_store


def _chat(visitor: str, text: str) -> InboundMessage:
    who = Identity(kind=IdentityKind.WEBCHAT, value=visitor, verified=Verification.SIGNED_TOKEN)
    return InboundMessage(channel=ChannelKind.WEBCHAT, identity=who, text=text)


async def test_common_and_rare_words_are_found_newest_first(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        conversations = []
        for n in range(desk_sql.RARE + 20):  # every one says "parcel": a common word
            extra = " lost in Tromsø" if n % 100 == 7 else ""
            got = await store.ingest(_chat(f"v{n}", f"Where is parcel {n}?{extra}"))
            conversations.append(got.conversation.id)
        desk = open_desk_store(store)
        newest = conversations[::-1]

        common = await desk.search(SearchQuery(text="parcel", limit=30))
        assert [h.id for h in common] == newest[:30]
        rare = await desk.search(SearchQuery(text="Tromsø lost"))
        assert [h.id for h in rare] == [c for n, c in enumerate(conversations) if n % 100 == 7][
            ::-1
        ]
        assert [h.id for h in await desk.search(SearchQuery(text="parcel 107"))] == [
            conversations[107]
        ]
        closed = await desk.search(SearchQuery(text="parcel", state=ConversationState.CLOSED))
        assert closed == []
        assert await desk.search(SearchQuery(text="kettle")) == []
    finally:
        await store.close()
