"""The console in headless Chromium: a first visit, a phone-sized screen, and a
conversation the rep just closed (issue 13's console items)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.gateway.routing.console_ui import WAIT_MS, RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain, build
from tests.support.browser import chromium, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]
MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def _desk(tmp_path: Path, client_of: MakeClient) -> tuple[Desk, str]:
    client = await client_of(build(tmp_path / "data", HandoverBrain()))
    return Desk(client, HandoverBrain()), str(client.make_url("")).rstrip("/")


async def test_a_first_visit_on_a_phone_shows_a_plain_login_and_log_out_fits(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    await desk.rep("ann")
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(base + "/console")
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    await expect(page.locator("#login-error")).to_have_text("")  # no "session ended"
    await page.get_by_label("Username").fill("ann")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Log in").click()
    logout = page.get_by_role("button", name="Log out")
    await expect(logout).to_be_in_viewport(ratio=1)
    box = await logout.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await context.close()


async def test_the_rep_who_closed_a_conversation_still_reads_it(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    rep = await RepConsole.logged_in(browser, base, "ann")
    await expect(rep.offers).to_have_count(1)
    await rep.accept_first_offer_with_the_keyboard()
    await rep.reply("Hello, I can help with that")
    await desk.service.close(ann.id, conv.id, "resolved")
    page = rep.page
    await expect(page.locator("#pane-notice")).to_have_text("Closed: read only.")
    await expect(rep.timeline.get_by_text("Hello, I can help with that")).to_be_visible()
    await expect(page.get_by_label("Reply to the customer")).to_be_hidden()
    assert await rep.api_status(f"/console/api/conversations/{conv.id}") == 200
    await rep.close()
