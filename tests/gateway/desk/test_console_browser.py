"""The console in headless Chromium: a first visit, a phone-sized screen, a
conversation the rep just closed (issue 13's console items), and the reports and
admin page (charts checked on a screenshot; tables when the library is missing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from gateway import assets
from gateway.desk.state import DESK
from gateway.models import ChannelKind, Identity, IdentityKind
from gateway.routing.models import Role
from tests.gateway.routing.console_ui import WAIT_MS, RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain, build
from tests.support.browser import chromium, needs_chromium
from tests.support.png import count_colour

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


ACCENT = (0x1F, 0x5F, 0xBF)  # the bars' colour (console.css --accent)


async def test_the_reports_page_draws_its_charts_and_admins_add_reps(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    ann = await desk.rep("ann")
    await desk.rep("boss", role=Role.ADMIN, available=False)
    for visitor in ("v1", "v2", "v3"):
        await desk.say(visitor, "hello")
    conv = await desk.handover("v4")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, conv.id, "Hi")
    assert not assets.missing(), f"Chart.js is not installed: run {assets.INSTALL_HINT}"
    rep = await RepConsole.logged_in(browser, base, "boss")
    page = rep.page
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    link = page.get_by_role("link", name="Reports and admin")
    await expect(link).to_be_visible()
    await link.click()
    await expect(page.locator("#tiles")).to_contain_text("Conversations")
    await expect(page.locator("#tiles .tile").first).to_contain_text("4")
    chart = page.locator("#chart-channel canvas")
    await expect(chart).to_have_attribute(
        "aria-label", "Conversations by channel: Chat 4, SMS 0, Email 0, Call 0"
    )
    shot = await page.locator("#chart-channel").screenshot()
    assert count_colour(shot, ACCENT) > 200  # Chart.js drew the Chat bar on its canvas
    hours = await page.locator("#chart-hour canvas").screenshot()
    assert count_colour(hours, ACCENT) > 20  # four conversations in this hour
    empty = await page.locator("#chart-csat canvas").screenshot()
    assert count_colour(empty, ACCENT) == 0  # nothing rated: no bars
    # The extra figures: the handover's (empty) reason, messages by hour, CSAT rows.
    why = page.locator("#chart-why canvas")
    await expect(why).to_have_attribute("aria-label", "Handed over: why: unspecified 1")
    messages = await page.locator("#chart-messages-hour canvas").screenshot()
    assert count_colour(messages, ACCENT) > 20  # this hour's messages
    await expect(page.locator("#csat-by tbody")).to_contain_text("Chat")
    assert not violations, violations  # the library runs under the console's strict CSP
    csv_link = page.get_by_role("link", name="Download CSV")
    assert (await csv_link.get_attribute("href") or "").startswith(
        "/console/api/reports/summary.csv?"
    )
    speed = page.locator("#speed tbody")
    for measure in ("Next response by a rep", "Wait in queue", "Rep handle time"):
        await expect(speed).to_contain_text(measure)
    # Filters: ann's conversations only (the one she took), then SMS ones (none).
    await page.get_by_label("Rep", exact=True).select_option(label="Ann (ann)")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#tiles .tile").first).to_contain_text("1")
    await expect(speed.locator("tr").filter(has_text="Wait in queue")).to_contain_text("1")
    assert f"rep={ann.id}" in (await csv_link.get_attribute("href") or "")
    await page.get_by_label("Rep", exact=True).select_option(label="All")
    await page.get_by_label("Channel", exact=True).select_option(label="SMS")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#tiles .tile").first).to_contain_text("0")
    assert "channel=sms" in (await csv_link.get_attribute("href") or "")

    # Admin: add a rep with a skill from the list; a mistake is explained.
    await page.get_by_label("Username").fill("cara")
    await page.get_by_label("Password (8 characters or more)").fill("short")
    await page.get_by_role("button", name="Add rep").click()
    await expect(page.locator("#add-rep-result")).to_contain_text("at least 8")
    await page.get_by_label("Password (8 characters or more)").fill("long enough password")
    await page.get_by_label("billing", exact=True).check()
    await page.get_by_role("button", name="Add rep").click()
    await expect(page.locator("#add-rep-result")).to_have_text("Added cara.")
    row = page.locator("#reps tbody tr").filter(has_text="cara")
    await expect(row).to_contain_text("billing, general")
    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled")
    await page.get_by_label("New token's name").fill("BI")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#new-token .token-value")).to_contain_text("gwt_")
    await rep.close()


async def test_without_the_charting_library_the_reports_page_shows_tables(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    await desk.rep("boss", role=Role.ADMIN, available=False)
    for visitor in ("v1", "v2"):
        await desk.say(visitor, "hello")
    rep = await RepConsole.logged_in(browser, base, "boss")
    page = rep.page
    # As a gateway where `gateway assets` never ran answers: 404 for the library.
    await page.route("**/console/static/vendor/**", lambda route: route.fulfill(status=404))
    await page.goto(base + "/console/desk")
    table = page.locator("#chart-channel table")
    await expect(table.locator("tr").filter(has_text="Chat")).to_contain_text("2")
    await expect(table.locator("tr").filter(has_text="SMS")).to_contain_text("0")
    await expect(page.locator("#chart-outcome table tr")).to_have_count(3)
    assert await page.locator(".chart canvas").count() == 0
    await rep.close()


async def test_search_finds_a_closed_conversation_and_shortcuts_are_listed(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, conv.id, "The replacement kettle ships tomorrow")
    await desk.service.close(ann.id, conv.id, "resolved")
    rep = await RepConsole.logged_in(browser, base, "ann")
    page = rep.page
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Search conversations")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await page.keyboard.press("/")
    box = page.get_by_label("Search conversations")
    await expect(box).to_be_focused()
    await box.fill("kettle")
    await box.press("Enter")
    results = page.get_by_role("list", name="Search results").get_by_role("listitem")
    await expect(results).to_have_count(1)
    await expect(results.first).to_contain_text(f"#{conv.id}")
    await results.first.get_by_role("button").click()
    await expect(page.locator("#pane-notice")).to_have_text("Closed: read only.")
    await expect(rep.timeline.get_by_text("The replacement kettle ships tomorrow")).to_be_visible()
    await rep.close()


async def test_a_canned_response_is_inserted_filled_and_the_profile_shows(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    ann = await desk.rep("ann")
    boss = await desk.rep("boss", role=Role.ADMIN, available=False)
    mail = Identity(kind=IdentityKind.EMAIL, value="jo@example.com")
    conv = await desk.say("e1", "human general", ChannelKind.EMAIL, mail)
    await desk.app[DESK].ready()[0].add_canned("greeting", "Hello {first_name}, {rep_name} here.",
                                                 boss.id)  # fmt: skip
    rep = await RepConsole.logged_in(browser, base, "ann")
    await expect(rep.offers).to_have_count(1)
    await rep.accept_first_offer_with_the_keyboard()
    page = rep.page
    await expect(page.locator("#profile")).to_contain_text("jo@example.com")
    await page.get_by_label("Insert a canned response").focus()
    await page.get_by_label("Insert a canned response").select_option(label="greeting")
    await expect(page.get_by_label("Reply to the customer", exact=False)).to_have_value(
        "Hello there, Ann here."  # no name known for this customer
    )
    assert conv.id and ann.id
    await rep.close()


async def test_a_rep_takes_a_conversation_from_the_waiting_list(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    await desk.rep("ann", available=False)  # offline: nothing is offered to her
    conv = await desk.handover("v1")
    rep = await RepConsole.logged_in(browser, base, "ann")
    page = rep.page
    waiting = page.locator("#waiting > li")
    await expect(waiting).to_have_count(1)
    await waiting.get_by_role("button", name="Take").click()
    await expect(page.locator("#held > li")).to_have_count(1)
    await expect(page.locator("#waiting > li")).to_have_count(0)
    await expect(page.get_by_label("Reply to the customer")).to_be_visible()
    await expect(page.locator("#pane-meta")).to_contain_text(f"#{conv.id}")
    await rep.close()
