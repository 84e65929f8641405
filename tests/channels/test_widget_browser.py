"""The widget in a real browser: Debian's chromium, driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect
from pytest_aiohttp import AiohttpServer

from channels.webchat import WEBCHAT
from tests.channels.chat import build_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS


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
            both = ["You: hello from the browser", "Support: echo: hello from the browser"]
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
                [*both, "You: are you still there?", "Support: echo: are you still there?"]
            )
            await expect(log.locator("li.pending")).to_have_count(0)
            await expect(page.get_by_role("status")).to_have_text("Online")

            await box.press("Escape")
            await expect(launcher).to_have_attribute("aria-expanded", "false")
            await expect(launcher).to_be_focused()
        finally:
            await browser.close()
