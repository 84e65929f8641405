"""The demo page (`GET /`) and the embeddable widget (`GET /widget.js`).

The demo page plays the part of a customer's website: a visitor can chat
anonymously, or pick one of the demo backend's accounts, in which case the page
embeds the widget with that user id signed by the server, as a real site that
knows its signed-in user would. It only signs while the identity secret is the
built-in demo one: with a real secret configured, signing arbitrary accounts
for anyone who asks would hand out every customer's chat.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from aiohttp import web

from channels.webchat.codec import MAX_USER_ID_CHARS
from channels.webchat.identity import sign_user_id
from channels.webchat.state import WEBCHAT
from gateway.keys import BACKEND

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_DEMO_ACCOUNTS = 50


class NamedAccount(Protocol):
    """What the demo page needs of an account (the agent's `Account` has both)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


@runtime_checkable
class AccountLookup(Protocol):
    """A backend that can look an account up by id (the agent's `Backend`)."""

    async def get_account(self, account_id: str) -> NamedAccount | None: ...


@runtime_checkable
class AccountDirectory(Protocol):
    """A backend that can also list its accounts, for a picker on the demo page."""

    async def list_accounts(self) -> Sequence[NamedAccount]: ...


class DemoAccounts:
    """The demo backend's accounts, as far as the backend can tell us."""

    def __init__(self, backend: object, enabled: bool) -> None:
        self._backend = backend if enabled else None

    async def listed(self) -> list[tuple[str, str]]:
        """(id, name) pairs for a picker; empty when the backend cannot list them."""
        if not isinstance(self._backend, AccountDirectory):
            return []
        try:
            items = await self._backend.list_accounts()
            return [(str(a.id), str(a.name)) for a in list(items)[:MAX_DEMO_ACCOUNTS]]
        except Exception:
            log.warning("the backend could not list demo accounts", exc_info=True)
            return []

    @property
    def can_look_up(self) -> bool:
        return isinstance(self._backend, AccountLookup)

    async def find(self, account_id: str) -> tuple[str, str] | None:
        """(id, name) of an existing account, else None."""
        if not account_id or len(account_id) > MAX_USER_ID_CHARS:
            return None
        if not isinstance(self._backend, AccountLookup):
            return None
        try:
            account = await self._backend.get_account(account_id)
        except Exception:
            log.warning("the backend could not look up a demo account", exc_info=True)
            return None
        return None if account is None else (str(account.id), str(account.name))


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def widget_tag(account: tuple[str, str] | None, secret: bytes) -> str:
    """The one script tag a site adds; signed for its signed-in user, if any."""
    if account is None:
        return '<script src="/widget.js" defer></script>'
    account_id, name = account
    return (
        f'<script src="/widget.js" data-user-id="{_attr(account_id)}"'
        f' data-user-name="{_attr(name)}"'
        f' data-user-signature="{sign_user_id(secret, account_id)}" defer></script>'
    )


def account_picker(
    listed: list[tuple[str, str]], chosen: tuple[str, str] | None, *, can_look_up: bool,
    demo_signing: bool,
) -> str:  # fmt: skip
    """The demo form's control: a select of listed accounts, an id field, or a note."""
    if listed:
        options = ['<option value="">Anonymous visitor</option>']
        for account_id, name in listed:
            selected = " selected" if chosen and chosen[0] == account_id else ""
            options.append(f'<option value="{_attr(account_id)}"{selected}>'
                           f"{html.escape(name)} ({html.escape(account_id)})</option>")  # fmt: skip
        return (
            '<label for="as">Signed-in user</label> <select id="as" name="as">'
            + "".join(options)
            + '</select> <button type="submit">Use</button>'
        )
    if can_look_up:
        value = _attr(chosen[0]) if chosen else ""
        return (
            '<label for="as">Signed-in account id (empty: anonymous)</label> '
            f'<input id="as" name="as" value="{value}" autocomplete="off"'
            ' placeholder="an account id of the demo backend">'
            ' <button type="submit">Use</button>'
        )
    if demo_signing:
        return "<p>The business backend offers no demo accounts: you chat anonymously.</p>"
    return (
        "<p>A real identity secret is configured, so this demo page signs no users:"
        " you chat as an anonymous visitor.</p>"
    )


async def index(request: web.Request) -> web.Response:
    """The demo page; `?as=<account id>` embeds the widget signed in as that account."""
    state = request.app[WEBCHAT]
    accounts = DemoAccounts(request.app.get(BACKEND), enabled=state.demo_identity_secret)
    listed = await accounts.listed()
    wanted = request.query.get("as", "").strip()
    chosen = next((a for a in listed if a[0] == wanted), None)
    if chosen is None and wanted:
        chosen = await accounts.find(wanted)
    picker = account_picker(listed, chosen, can_look_up=accounts.can_look_up,
                            demo_signing=state.demo_identity_secret)  # fmt: skip
    if wanted and chosen is None:
        picker += f"<p>No account {html.escape(wanted)} here: you chat anonymously.</p>"
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = template.replace("<!--account-picker-->", picker).replace(
        "<!--widget-tag-->", widget_tag(chosen, state.identity_secret)
    )
    return web.Response(
        text=page,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def widget_js(request: web.Request) -> web.FileResponse:
    """The widget; sites load it cross-origin with one script tag."""
    return web.FileResponse(
        STATIC_DIR / "widget.js",
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


__all__ = [
    "AccountDirectory",
    "AccountLookup",
    "DemoAccounts",
    "account_picker",
    "index",
    "widget_js",
    "widget_tag",
]
