"""The rep's desk in headless Chromium: labels (added in the conversation, search
filtered by label), the admin screens for teams and queue SLA targets, a lead
assigning waiting work, and SLA timers on the work and the queue panel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Dialog, expect

from gateway.desk.state import DESK
from gateway.routing.models import Role
from tests.gateway.routing.console_ui import RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain, build, eventually
from tests.support.browser import chromium, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]
MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def _desk(tmp_path: Path, client_of: MakeClient, **settings: Any) -> tuple[Desk, str]:
    client = await client_of(build(tmp_path / "data", HandoverBrain(), **settings))
    return Desk(client, HandoverBrain()), str(client.make_url("")).rstrip("/")


async def test_a_rep_labels_a_conversation_and_finds_it_by_label(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client)
    await desk.rep("ann")
    store = desk.app[DESK].ready()[0]
    await store.add_label("vip", "#aa0000")
    await store.add_label("refund", None)
    conv = await desk.handover("v1")
    await desk.handover("v2")
    rep = await RepConsole.logged_in(browser, base, "ann")
    page = rep.page
    await expect(rep.offers).to_have_count(2)
    await rep.accept_first_offer_with_the_keyboard()
    labelled = int((await page.locator("#pane-meta").text_content() or "").split("#")[1].split()[0])
    await expect(page.locator("#labels-empty")).to_be_visible()
    await page.get_by_label("Add a label").select_option(label="vip")
    chips = page.locator("#labels .label-chip")
    await expect(chips).to_have_count(1)
    await expect(chips.first).to_contain_text("vip")
    await expect(page.locator("#labels-empty")).to_be_hidden()
    await expect(page.locator("#events")).to_contain_text("label.added")
    # The label is gone from what can be added; the other one is still there.
    options = page.get_by_label("Add a label").locator("option")
    await expect(options).to_have_text(["Add a label…", "refund"])

    await page.get_by_label("Label", exact=True).select_option("vip")
    await page.get_by_role("button", name="Search").click()
    results = page.get_by_role("list", name="Search results").get_by_role("listitem")
    await expect(results).to_have_count(1)
    await expect(results.first).to_contain_text(f"#{labelled}")
    await expect(results.first.locator(".label-chip")).to_have_text("vip")

    await page.get_by_role("button", name="Remove label vip").click()
    await expect(chips).to_have_count(0)
    await expect(page.locator("#labels-empty")).to_be_visible()
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#search-empty")).to_be_visible()
    kinds = [e.kind for e in await desk.store.events(labelled)]
    assert kinds.count("label.added") == 1 and kinds.count("label.removed") == 1
    assert conv.id
    await rep.close()


async def test_admins_keep_teams_and_set_queue_sla_targets_in_the_console(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(tmp_path, aiohttp_client, sla_resolution_s={"billing": 7200})
    ann = await desk.rep("ann", available=False)
    await desk.rep("boss", role=Role.ADMIN, available=False)
    store = desk.app[DESK].ready()[0]
    rep = await RepConsole.logged_in(browser, base, "boss")
    page = rep.page
    await page.goto(base + "/console/desk")

    await page.get_by_label("New team's name").fill("North")
    await page.get_by_role("button", name="Add team").click()
    team = page.locator("#teams > li").filter(has_text="North")
    await expect(team).to_contain_text("0 reps")
    await page.get_by_label("Team of ann").select_option(label="North")
    await expect(team).to_contain_text("1 rep")
    assert await store.team_rep_ids("North") == [ann.id]

    async def rename(dialog: Dialog) -> None:
        await dialog.accept("Nord")

    page.once("dialog", rename)
    await team.get_by_role("button", name="Rename team North").click()
    await expect(page.locator("#teams > li").filter(has_text="Nord")).to_contain_text("1 rep")
    assert await store.team_rep_ids("Nord") == [ann.id]
    await expect(page.get_by_label("Team of ann")).to_have_value(str((await store.teams())[0].id))

    # Queue targets: the settings' defaults shown, then a change saved while running.
    billing = page.locator("#queue-sla tr[data-queue='billing']")
    await expect(page.get_by_label("Resolution target of billing (hours)")).to_have_value("2")
    await expect(billing).to_contain_text("settings")
    await page.get_by_label("First response target of general (minutes)").fill("10")
    await page.get_by_label("Resolution target of general (hours)").fill("1.5")
    await page.get_by_role("button", name="Save targets of general").click()
    await expect(page.locator("#queue-sla-result")).to_have_text("Saved the targets of general.")
    general = page.locator("#queue-sla tr[data-queue='general']")
    await expect(general).to_contain_text("set here")
    (saved,) = await store.queue_targets()
    assert (saved.queue, saved.first_response_s, saved.resolution_s) == ("general", 600, 5400)
    assert saved.next_response_s is None
    await page.get_by_label("First response target of general (minutes)").fill("0")
    await page.get_by_role("button", name="Save targets of general").click()
    await expect(page.locator("#desk-error")).to_contain_text("greater than 0")
    await page.get_by_role("button", name="Reset targets of general").click()
    await expect(general).to_contain_text("settings")
    assert await store.queue_targets() == []

    await page.get_by_label("New label").fill("urgent")
    await page.get_by_role("button", name="Add label").click()
    await expect(page.locator("#label-set > li")).to_have_text(["urgent RenameDelete"])

    async def urgently(dialog: Dialog) -> None:
        await dialog.accept("very urgent")

    page.once("dialog", urgently)
    await page.get_by_role("button", name="Rename label urgent").click()
    await expect(page.locator("#label-set .label-chip")).to_have_text(["very urgent"])
    assert [(x.name, x.colour) for x in await store.labels()] == [("very urgent", "#1f5fbf")]
    await rep.close()


async def test_a_lead_assigns_waiting_work_and_timers_show_the_sla(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await _desk(
        tmp_path, aiohttp_client,
        sla_first_response_s={"general": 0.001}, sla_resolution_s={"general": 86400},
    )  # fmt: skip
    ann = await desk.rep("ann", available=False)  # nothing is offered to her
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    first = await desk.handover("v1")
    await desk.handover("v2")
    lead = await RepConsole.logged_in(browser, base, "lead")
    page = lead.page
    waiting = page.locator("#waiting > li")
    await expect(waiting).to_have_count(2)
    # Each waiting item shows its timer; the queue panel counts the breaches.
    await expect(waiting.locator(".sla.breached")).to_have_count(2)
    await expect(waiting.first.locator(".sla")).to_contain_text("SLA first response: overdue by")
    counts = page.locator("#queues li[data-queue='general'] .sla-counts")
    await expect(counts).to_have_text("0 at risk · 2 breached")

    item = page.locator(f"#waiting > li[data-conversation='{first.id}']")
    who = await item.locator(".who").text_content()
    await item.get_by_label(f"Assign {who} to").select_option(label="Ann (offline)")
    await item.get_by_role("button", name=f"Assign {who}").click()
    await expect(waiting).to_have_count(1)

    async def held() -> int | None:
        entry = desk.service.router.held.get(first.id)
        return None if entry is None else entry.rep_id

    assert await eventually(held) == ann.id
    await expect(counts).to_have_text("0 at risk · 2 breached")  # the lead's queue holds both
    await lead.close()

    # Ann sees it held, with its timer, in the list and in the pane.
    rep = await RepConsole.logged_in(browser, base, "ann")
    page = rep.page
    mine = page.locator("#held > li")
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".sla.breached")).to_contain_text("overdue")
    await mine.get_by_role("button", name="Open").click()
    await expect(page.locator("#pane-sla")).to_contain_text("SLA first response: overdue by")
    await rep.reply("Sorry for the wait")
    # Answered: the resolution target is the one that runs now (a day: ok).
    await expect(page.locator("#pane-sla")).to_contain_text("SLA resolution:")
    await expect(page.locator("#pane-sla")).to_have_class("sla ok")
    await rep.close()
