"""Browser-side helpers for the console tests: a rep's console page and a customer's
chat widget, each in its own browser context (own cookies and storage)."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.gateway.routing.desk import PASSWORD

LAPTOP = {"width": 1366, "height": 768}
WAIT_MS = 10_000


@dataclass
class RepConsole:
    """A rep's browser on /console."""

    context: BrowserContext
    page: Page
    base: str

    @classmethod
    async def open(cls, browser: Browser, base: str) -> RepConsole:
        context = await browser.new_context(viewport=LAPTOP)
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        await page.goto(base + "/console")
        return cls(context, page, base)

    @classmethod
    async def logged_in(cls, browser: Browser, base: str, username: str) -> RepConsole:
        rep = await cls.open(browser, base)
        await rep.log_in(username)
        return rep

    async def log_in(self, username: str, password: str = PASSWORD) -> None:
        page = self.page
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click()
        await expect(self.connection).to_have_text("Live")

    @property
    def connection(self) -> Locator:
        return self.page.locator("#connection")

    @property
    def offers(self) -> Locator:
        return self.page.locator("#offers > li")

    @property
    def timeline(self) -> Locator:
        return self.page.get_by_role("log", name="Timeline")

    @property
    def login_form(self) -> Locator:
        return self.page.get_by_role("button", name="Log in")

    def section(self, title: str) -> Locator:
        return self.page.locator("section").filter(
            has=self.page.get_by_role("heading", name=title, exact=True)
        )

    async def accept_first_offer_with_the_keyboard(self) -> None:
        accept = self.page.locator("#offers").get_by_role("button", name="Accept").first
        await accept.focus()
        await expect(accept).to_be_focused()
        await self.page.keyboard.press("Enter")
        await expect(self.page.get_by_label("Reply to the customer")).to_be_focused()

    async def reply(self, text: str) -> None:
        box = self.page.get_by_label("Reply to the customer")
        await box.fill(text)
        await box.press("Enter")
        await expect(box).to_have_value("")

    async def note(self, text: str) -> None:
        await self.page.get_by_label("Private note").fill(text)
        await self.page.get_by_role("button", name="Add note").click()
        await expect(self.page.get_by_label("Private note")).to_have_value("")

    async def api_status(self, path: str) -> int:
        """The status the page's own fetch gets (its cookies, its origin)."""
        status = await self.page.evaluate(
            "async (p) => (await fetch(p, {credentials: 'same-origin'})).status", path
        )
        return int(status)

    async def close(self) -> None:
        await self.context.close()


@dataclass
class Customer:
    """A visitor chatting in the widget on the demo page."""

    context: BrowserContext
    page: Page

    @classmethod
    async def open(cls, browser: Browser, base: str, path: str = "/") -> Customer:
        context = await browser.new_context()
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        await page.goto(base + path)
        await page.get_by_role("button", name="Chat with us").click()
        await expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
        return cls(context, page)

    @property
    def log(self) -> Locator:
        return self.page.get_by_role("log", name="Messages")

    async def say(self, text: str) -> None:
        box = self.page.get_by_label("Your message")
        await box.fill(text)
        await box.press("Enter")
        sent = self.log.get_by_role("listitem").filter(has_text=text).last
        await expect(sent).to_be_visible()
        await expect(self.log.locator("li.pending")).to_have_count(0)  # stored by the gateway

    async def sees(self, text: str) -> None:
        await expect(self.log.get_by_role("listitem").filter(has_text=text)).to_have_count(1)

    async def close(self) -> None:
        await self.context.close()


__all__ = ["LAPTOP", "Customer", "RepConsole"]
