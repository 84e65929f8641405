"""The rating link answers the widget's POST from the embedding site (another
origin) with CORS, for the origins GATEWAY_WEBCHAT_ALLOWED_ORIGINS allows."""

from __future__ import annotations

import re

from tests.gateway.routing.conftest import OpenDesk
from tests.gateway.routing.desk import Desk

SHOP = "https://shop.example"


async def _closed(desk: Desk) -> tuple[int, str]:
    """A conversation a rep closed, and its rating link's path."""
    rep = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    await desk.service.close(rep.id, conv.id, "resolved")
    match = re.search(r"(/rate/\S+)$", (await desk.texts(conv.id))[-1])
    assert match is not None
    return conv.id, match.group(1)


async def _ratings(desk: Desk, conversation_id: int) -> list[int]:
    events = await desk.store.events(conversation_id)
    return [e.data["score"] for e in events if e.kind == "rating"]


async def test_an_allowed_site_may_rate_across_origins(open_desk: OpenDesk) -> None:
    desk = await open_desk(webchat_allowed_origins=[SHOP, "https://www.shop.example"])
    conv_id, path = await _closed(desk)
    preflight = await desk.client.options(
        path,
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Origin" in preflight.headers["Vary"]

    rated = await desk.client.post(path, data={"score": "4"}, headers={"Origin": SHOP})
    assert rated.status == 200
    assert rated.headers["Access-Control-Allow-Origin"] == SHOP
    assert await _ratings(desk, conv_id) == [4]


async def test_a_site_not_allowed_may_not_rate(open_desk: OpenDesk) -> None:
    desk = await open_desk(webchat_allowed_origins=[SHOP])
    conv_id, path = await _closed(desk)
    evil = {"Origin": "https://evil.example"}
    preflight = await desk.client.options(
        path, headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    refused = await desk.client.post(path, data={"score": "1"}, headers=evil)
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert await _ratings(desk, conv_id) == []
    # The rating page's own form (the gateway's origin) still rates.
    own = str(desk.client.make_url("")).rstrip("/")
    assert (await desk.client.post(path, data={"score": "5"}, headers={"Origin": own})).ok
    assert await _ratings(desk, conv_id) == [5]


async def test_with_no_list_any_site_may_rate(desk: Desk) -> None:
    conv_id, path = await _closed(desk)
    rated = await desk.client.post(path, data={"score": "3"}, headers={"Origin": SHOP})
    assert rated.status == 200 and rated.headers["Access-Control-Allow-Origin"] == SHOP
    assert await _ratings(desk, conv_id) == [3]
