"""The campaigns screen in headless Chromium: a supervisor uploads a list, watches
its progress, pauses it (the Twilio stand-in stops getting texts) and reads the
recipients' states; the reports page shows the outreach figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from gateway.routing.models import Role
from tests.gateway.outreach.conftest import OpenGateway
from tests.gateway.routing.console_ui import RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain
from tests.support.browser import chromium, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only: the screen is the same on both stores (their SQL is tested apart)."""
    return f"sqlite:///{tmp_path / 'gw.sqlite3'}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_a_supervisor_uploads_a_list_watches_it_and_pauses_it(
    open_gateway: OpenGateway, browser: Browser
) -> None:
    gw = await open_gateway()
    await Desk(gw.client, HandoverBrain()).rep("sue", role=Role.SUPERVISOR, available=False)
    base = str(gw.client.make_url("")).rstrip("/")
    rep = await RepConsole.logged_in(browser, base, "sue")
    page = rep.page
    await page.get_by_role("link", name="Reports and admin").click()
    section = page.locator("#campaigns")
    await expect(section).to_be_visible()
    numbers = [f"+1202555{k:04d}" for k in range(6)]
    text = "phone,name\n" + "".join(f"{p},Ann {k}\n" for k, p in enumerate(numbers))
    await page.get_by_label("Campaign name").fill("Closed Monday")
    await page.set_input_files("#campaign-csv", files=[
        {"name": "list.csv", "mimeType": "text/csv", "buffer": text.encode()}])  # fmt: skip
    await page.get_by_label("Text message").fill("Hi $first_name, we are closed on Monday.")
    await page.get_by_label("Messages per second").fill("2")
    await page.get_by_role("button", name="Start campaign").click()
    await expect(page.locator("#campaign-result")).to_have_text(
        "Started Closed Monday: 6 recipients."
    )
    row = page.locator("#campaign-list tbody tr").filter(has_text="Closed Monday")
    await expect(row.locator(".campaign-state")).to_have_text("running")
    await expect(row.locator(".campaign-sent")).to_have_text("2", timeout=10_000)  # progress
    await row.get_by_role("button", name="Pause").click()
    await expect(row.locator(".campaign-state")).to_have_text("paused")
    held = len(gw.twilio.messages)
    await asyncio.sleep(1.5)  # three texts' worth at 2 a second
    assert len(gw.twilio.messages) <= held + 1 < 6
    await row.get_by_role("button", name="Recipients").click()
    recipients = page.locator("#campaign-recipients tbody tr")
    await expect(recipients).to_have_count(6)
    await expect(recipients.nth(5)).to_contain_text("queued")
    await expect(recipients.first).to_contain_text("sent")
    await expect(row.get_by_role("button", name="Resume")).to_be_visible()
    # The reports page counts the outreach sent so far.
    await page.get_by_role("button", name="Show").click()
    tiles = page.locator("#outreach-tiles")
    await expect(tiles).to_contain_text("Outreach sent")
    await rep.close()
