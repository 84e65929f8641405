"""The widget in a real browser: Debian's chromium, driven by Playwright."""

from __future__ import annotations

import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import async_playwright, expect
from pytest_aiohttp import AiohttpServer

from channels.webchat import WEBCHAT
from gateway.routing.models import Presence, RepDraft
from tests.channels.chat import build_app
from tests.gateway.routing.desk import Desk, HandoverBrain, build, password_hash
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, chromium

GREETING = re.compile(r"^Hi! Our virtual assistant answers here, usually within a few seconds\.")


def said(who: str, text: str) -> re.Pattern[str]:
    """A message bubble as read out: who, the text, and the time it was stored."""
    return re.compile(rf"^{re.escape(who)}: {re.escape(text)}, at \d{{1,2}}:\d{{2}}")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_widget_chats_and_restores_history_after_reload(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    app = build_app(tmp_path)
    server = await aiohttp_server(app)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(10_000)
            await page.goto(str(server.make_url("/")))
            await expect(page.get_by_role("heading", name="Web chat demo")).to_be_visible()

            launcher = page.get_by_role("button", name="Chat with us")
            await launcher.click()
            await expect(launcher).to_have_attribute("aria-expanded", "true")
            log = page.get_by_role("log", name="Messages")
            await expect(page.get_by_role("status")).to_have_text("Online")

            box = page.get_by_label("Your message")
            await expect(box).to_be_focused()
            await box.fill("hello from the browser")
            await box.press("Enter")
            both = [
                GREETING,
                said("You", "hello from the browser"),
                said("Assistant", "echo: hello from the browser"),
            ]
            await expect(log.get_by_role("listitem")).to_have_text(both)
            await expect(log.locator("li.pending")).to_have_count(0)

            await page.reload()
            # Same visitor (token in localStorage), history shown again, panel still open.
            log = page.get_by_role("log", name="Messages")
            await expect(log.get_by_role("listitem")).to_have_text(both)

            # The server drops every socket; the widget reconnects by itself, and a message
            # typed meanwhile waits in its outbox and goes once the socket is back.
            await app[WEBCHAT].channel.close_all()
            box = page.get_by_label("Your message")
            await box.fill("are you still there?")
            await box.press("Enter")
            await expect(log.get_by_role("listitem")).to_have_text(
                [
                    *both,
                    said("You", "are you still there?"),
                    said("Assistant", "echo: are you still there?"),
                ]
            )
            await expect(log.locator("li.pending")).to_have_count(0)
            await expect(page.get_by_role("status")).to_have_text("Online")

            await box.press("Escape")
            await expect(launcher).to_have_attribute("aria-expanded", "false")
            await expect(launcher).to_be_focused()
        finally:
            await browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_widget_on_another_sites_page_shows_the_rep_and_rates(
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    aiohttp_server: AiohttpServer,
) -> None:
    # The shop's page (one port) embeds the widget from the gateway (another port):
    # two origins, as on a real site. Only the shop may embed the chat.
    port, shop_port = _free_port(), _free_port()
    gateway, shop_origin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{shop_port}"
    page_html = (
        "<!doctype html><html lang=en><title>Shop</title><h1>The shop</h1>"
        f"<script src='{gateway}/widget.js' defer></script></html>"
    )

    async def shop_page(_: web.Request) -> web.Response:
        return web.Response(text=page_html, content_type="text/html")

    shop = web.Application()
    shop.router.add_get("/", shop_page)
    await aiohttp_server(shop, port=shop_port)
    brain = HandoverBrain()
    app = build(tmp_path / "data", brain, public_url=gateway,
                webchat_allowed_origins=[shop_origin])  # fmt: skip
    desk = Desk(await aiohttp_client(app, server_kwargs={"port": port}), brain)
    ann = await desk.service.add_rep(
        RepDraft(username="annlee", display_name="Ann Lee", password_hash=password_hash(),
                 skills=("general",))
    )  # fmt: skip
    await desk.service.set_presence(ann.id, Presence.AVAILABLE)

    async with chromium() as browser:
        page = await browser.new_page()
        page.set_default_timeout(10_000)
        await page.goto(f"{shop_origin}/")
        await page.get_by_role("button", name="Chat with us").click()
        log = page.get_by_role("log", name="Messages")
        await expect(log.get_by_role("listitem")).to_have_text([GREETING])
        await expect(page.get_by_role("status")).to_have_text("Online")
        box = page.get_by_label("Your message")
        await box.fill("human")
        await box.press("Enter")
        await expect(log.get_by_role("listitem").nth(2)).to_have_text(
            said("Assistant", "connecting you")
        )

        offer_id, conv_id = await desk.offer_for(ann.id)
        await desk.service.accept(ann.id, offer_id)
        await desk.service.reply(ann.id, conv_id, "Hi, I'm Ann. Let me look.")
        from_ann = log.locator("li.rep")
        await expect(from_ann).to_have_text(said("Ann", "Hi, I'm Ann. Let me look."))
        await expect(from_ann.locator(".who")).to_be_visible()
        await expect(from_ann.locator("time")).to_have_attribute("datetime", re.compile("^20"))

        await desk.service.close(ann.id, conv_id, "resolved")
        rate = page.get_by_role("group", name="Rate this conversation from 1 to 5")
        await expect(rate).to_have_count(1)
        await expect(rate.get_by_role("button")).to_have_count(5)
        await expect(log).not_to_contain_text("/rate/")
        await expect(log).not_to_contain_text("http")
        await rate.get_by_role("button", name="4 out of 5").click()
        await expect(rate).to_have_text("Thank you for your rating!")

        events = await desk.store.events(conv_id)
        assert [e.data["score"] for e in events if e.kind == "rating"] == [4]

        # After a reload the closing message still shows no link, and the rating is done.
        await page.reload()
        log = page.get_by_role("log", name="Messages")
        await expect(log.locator("li.rep")).to_have_text(said("Ann", "Hi, I'm Ann. Let me look."))
        await expect(page.get_by_role("group", name=re.compile("^Rate"))).to_have_text(
            "Thank you for your rating!"
        )
        await expect(log).not_to_contain_text("/rate/")
