"""The rep console page (`GET /console`) and its static files, with the security
headers of everything under `/console`.

The page is plain HTML, CSS and JavaScript modules shipped as package data
(`gateway/routing/static/`): nothing to build, nothing fetched from elsewhere. The
reports page's charting library (Chart.js) is installed from the npm lock by
`gateway assets` into the ignored `static/vendor/` and served from here too; when it
is missing the page shows its figures as tables and the log says so at start.
It talks only to the JSON API and websocket of the same origin, so its
Content-Security-Policy allows nothing else: no inline script or style, no
other origin, no framing (also `X-Frame-Options: DENY`), no plugins. API
answers are `no-store`: a shared or back-button cache never keeps a
conversation.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from gateway import assets

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PAGE = "console.html"
# name -> content type: only these files are served (no directory listing, no traversal).
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "render.js": "text/javascript; charset=utf-8",
    "conversation.js": "text/javascript; charset=utf-8",
    "desk.js": "text/javascript; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "cost_gaps.js": "text/javascript; charset=utf-8",
    "work.js": "text/javascript; charset=utf-8",
    "desk_org.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
}
# package/file under static/vendor/ -> content type: what `gateway assets` installs
# (package.json's gatewayAssets) that the pages load.
VENDOR = {
    "chart.js/chart.umd.min.js": "text/javascript; charset=utf-8",
    "chart.js/LICENSE.md": "text/plain; charset=utf-8",
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        # 'self' covers the same-origin websocket (ws: and wss:) in CSP Level 3 browsers.
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def console_page(request: web.Request) -> web.FileResponse:
    """The console itself; it shows the login form until the API says who is in."""
    return _page(PAGE)


async def desk_page(request: web.Request) -> web.FileResponse:
    """Reports (supervisors, admins) and the admin screens (admins): gateway/desk/."""
    return _page("desk.html")


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(
        STATIC_DIR / name,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
        },
    )


async def console_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    # no-cache: revalidated on every load (cheap, ETag), so an upgrade is seen at once.
    return web.FileResponse(
        STATIC_DIR / name, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )


async def vendor_asset(request: web.Request) -> web.FileResponse:
    """A library file from static/vendor/ (FileResponse answers 404 until `gateway
    assets` installed it)."""
    name = f"{request.match_info['package']}/{request.match_info['name']}"
    content_type = VENDOR.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    # no-cache like the page's own files: the URL carries no version, so an update of
    # the lock must be seen at the next load (an ETag makes the check cheap).
    return web.FileResponse(
        assets.VENDOR_DIR / name,
        headers={"Content-Type": content_type, "Cache-Control": "no-cache"},
    )


def log_missing_assets(vendor_dir: Path = assets.VENDOR_DIR) -> list[str]:
    """At start: say which libraries are not installed and the command that installs
    them (the reports page then shows tables instead of charts)."""
    # Also without the checkout's npm lock (an installed package): a file not there.
    gone = {name.split("/")[0] for name in VENDOR if not (vendor_dir / name).is_file()}
    absent = sorted(set(assets.missing(vendor_dir)) | gone)
    if absent:
        log.warning(
            "console libraries not installed (%s): the reports page shows tables instead of"
            " charts; install them with: %s",
            ", ".join(absent),
            assets.INSTALL_HINT,
        )
    return absent


async def _check_assets(app: web.Application) -> None:
    await asyncio.to_thread(log_missing_assets)  # reads and hashes the files


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: headers for every answer under /console (errors too)."""
    path = request.path
    if not (path == "/console" or path.startswith("/console/")):
        return
    if isinstance(response, web.WebSocketResponse):
        return
    for name, value in _SECURITY.items():
        response.headers.setdefault(name, value)
    if not path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "no-store"
    if "Content-Security-Policy" not in response.headers:
        # JSON and errors: nothing in them may ever run or be framed.
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"


async def _to_page(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/console")


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/console", console_page)
    app.router.add_get("/console/", _to_page)
    app.router.add_get("/console/desk", desk_page)
    app.router.add_get("/console/static/{name}", console_asset)
    app.router.add_get("/console/static/vendor/{package}/{name}", vendor_asset)
    app.on_startup.append(_check_assets)
    app.on_response_prepare.append(security_headers)


__all__ = ["CSP", "VENDOR", "add_page_routes", "console_page", "log_missing_assets",
           "security_headers"]  # fmt: skip
