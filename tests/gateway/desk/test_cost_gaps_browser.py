"""The reports page's cost section and help-centre gaps in headless Chromium: the
cost chart is drawn (checked on a screenshot), and a gap's link opens its
conversation in the console."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from agent.turn import NOT_UNDERSTOOD
from gateway.routing.models import Role
from tests.gateway.desk.test_cost import RATES, MeteredBrain
from tests.gateway.desk.test_gaps import GapBrain, _real_wording
from tests.gateway.routing.console_ui import RepConsole
from tests.gateway.routing.desk import Desk, build
from tests.support.browser import chromium, needs_chromium
from tests.support.png import count_colour

pytestmark = [pytest.mark.browser, needs_chromium]
MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
ACCENT = (0x1F, 0x5F, 0xBF)  # the bars' colour (console.css --accent)


class Brain(GapBrain, MeteredBrain):
    """Hands over the real questions as not understood; `tokens ...` as MeteredBrain."""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_the_reports_page_shows_cost_and_gaps_linked_to_conversations(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    atm = _real_wording()["FindATM"][:3]
    brain = Brain({text: NOT_UNDERSTOOD for text in atm})
    client = await aiohttp_client(build(tmp_path / "data", brain, cost_rates=RATES))
    desk = Desk(client, brain)
    base = str(client.make_url("")).rstrip("/")
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.say("w0", "tokens 40000 8000 solved")  # 6 + 4.8 = 10.80 of LLM
    ids = [(await desk.say(f"w{n + 1}", text)).id for n, text in enumerate(atm)]

    rep = await RepConsole.logged_in(browser, base, "lead")
    page = rep.page
    await page.get_by_role("link", name="Reports and admin").click()
    await expect(page.locator("#cost-total")).to_contain_text("Total 10.80 USD")
    await expect(page.locator("#cost-resolved tbody tr").first).to_contain_text("10.80 USD")
    chart = page.locator("#chart-cost canvas")
    await expect(chart).to_have_attribute("aria-label", "Cost by kind (USD): LLM 10.8, STT 0, "
                                          "TTS 0, SMS 0, Calls 0, Reps 0")  # fmt: skip
    assert count_colour(await page.locator("#chart-cost").screenshot(), ACCENT) > 200

    gaps = page.locator("#gaps > li")
    await expect(gaps).to_have_count(1)
    await expect(gaps.first).to_contain_text("3 conversations")
    links = gaps.first.get_by_role("link")
    await expect(links).to_have_text([f"#{i}" for i in sorted(ids)])
    await links.first.click()
    await expect(page.locator("#console-view")).to_be_visible()
    await expect(rep.timeline.get_by_text(atm[0])).to_be_visible()
    await rep.close()
