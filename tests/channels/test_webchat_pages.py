"""The demo page, the widget script and shutdown of live sockets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient

from channels.webchat import WEBCHAT, sign_user_id
from gateway.app import BACKEND
from tests.channels.chat import Chat, build_app

SIGNED_TAG = re.compile(
    r'<script src="/widget.js" data-user-id="([^"]*)" data-user-name="([^"]*)"'
    r' data-user-signature="([0-9a-f]{64})" defer></script>'
)


@dataclass(frozen=True)
class FakeAccount:
    id: str
    name: str


class LookupBackend:
    """A business backend double that can look accounts up but not list them."""

    accounts: ClassVar[dict[str, FakeAccount]] = {"C-7": FakeAccount("C-7", 'Zoë "<b>" O\'Hara')}

    async def get_account(self, account_id: str) -> FakeAccount | None:
        return self.accounts.get(account_id)


class ListingBackend(LookupBackend):
    async def list_accounts(self) -> Sequence[FakeAccount]:
        return list(self.accounts.values())


async def test_widget_js_is_served(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    resp = await client.get("/widget.js")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/javascript")
    body = await resp.text()
    assert "webchat/ws" in body and "localStorage" in body


async def test_demo_page_anonymous_without_a_backend(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    resp = await client.get("/", params={"as": "C-7"})
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<script src="/widget.js" defer></script>' in page
    assert 'data-user-id="' not in page and "anonymous" in page


async def test_demo_page_signs_a_looked_up_account(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    app = build_app(tmp_path)
    app[BACKEND] = LookupBackend()
    client = await aiohttp_client(app)
    page = await (await client.get("/")).text()
    assert '<input id="as" name="as"' in page and 'data-user-id="' not in page

    page = await (await client.get("/", params={"as": "C-7"})).text()
    match = SIGNED_TAG.search(page)
    assert match is not None, page
    assert match.group(1) == "C-7"
    assert match.group(2) == "Zoë &quot;&lt;b&gt;&quot; O&#x27;Hara"  # escaped, no markup
    assert match.group(3) == sign_user_id(app[WEBCHAT].identity_secret, "C-7")
    # The signature the page embeds is what the websocket accepts.
    chat = await Chat.open(client)
    welcome, _ = await chat.hello(user={"id": "C-7", "name": "Zoë", "signature": match.group(3)})
    assert welcome["customer"] == {"name": "Zoë", "user_id": "C-7"}

    page = await (await client.get("/", params={"as": "C-404<x>"})).text()
    assert 'data-user-id="' not in page and "C-404&lt;x&gt;" in page


async def test_demo_page_lists_accounts_when_the_backend_can(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    app = build_app(tmp_path)
    app[BACKEND] = ListingBackend()
    client = await aiohttp_client(app)
    page = await (await client.get("/", params={"as": "C-7"})).text()
    assert '<option value="C-7" selected>' in page
    assert SIGNED_TAG.search(page) is not None


async def test_demo_page_never_signs_with_a_real_identity_secret(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    app = build_app(tmp_path, webchat_identity_secret="the-real-shared-secret")
    app[BACKEND] = ListingBackend()
    client = await aiohttp_client(app)
    page = await (await client.get("/", params={"as": "C-7"})).text()
    assert 'data-user-id="' not in page and "<option" not in page
    assert "real identity secret" in page


async def test_shutdown_closes_live_sockets(tmp_path: Path) -> None:
    server = TestServer(build_app(tmp_path))
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application] = TestClient(server)
    await client.start_server()
    try:
        chat = await Chat.open(client)
        await chat.hello()
        await server.close()
        msg = await chat.ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        await client.close()
