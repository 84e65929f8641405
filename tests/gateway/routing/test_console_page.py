"""The console page and its files: served from the package, strict security headers,
nothing inline, nothing from elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from gateway import assets
from gateway.routing.page import ASSETS, STATIC_DIR, VENDOR
from tests.gateway.routing.desk import Desk


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


async def test_the_page_is_served_with_a_strict_policy(desk: Desk) -> None:
    resp = await desk.client.get("/console")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"

    page = _Tags()
    page.feed(await resp.text())
    assert not page.inline_script
    assert all(not any(k.startswith("on") for k in attrs) for _, attrs in page.tags)
    assert all("style" not in attrs for _, attrs in page.tags)
    linked = [a.get("src") or a.get("href") for t, a in page.tags if t in {"script", "link"}]
    assert linked and all(str(u).startswith("/console/static/") for u in linked)
    for url in linked:
        asset = await desk.client.get(str(url))
        assert asset.status == 200, url
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    # Each label names a control that exists (keyboard and screen-reader users need both).
    ids = {a.get("id") for _, a in page.tags}
    assert all(a.get("for") in ids for t, a in page.tags if t == "label")


async def test_every_module_the_page_imports_is_served(desk: Desk) -> None:
    imported = set()
    for path in STATIC_DIR.glob("*.js"):
        imported |= set(re.findall(r'from "\./([\w.]+)"', path.read_text(encoding="utf-8")))
    assert imported <= set(ASSETS)
    for name, content_type in ASSETS.items():
        resp = await desk.client.get(f"/console/static/{name}")
        assert resp.status == 200, name
        assert resp.headers["Content-Type"] == content_type


async def test_the_charting_library_is_served_by_the_gateway(desk: Desk) -> None:
    assert not assets.missing(), f"Chart.js is not installed: run {assets.INSTALL_HINT}"
    for name, content_type in VENDOR.items():
        resp = await desk.client.get(f"/console/static/vendor/{name}")
        assert resp.status == 200, name
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"]
    library = await desk.client.get("/console/static/vendor/chart.js/chart.umd.min.js")
    assert (await library.read()).startswith(b"/*!\n * Chart.js v")
    for path in (
        "/console/static/vendor/manifest.json",
        "/console/static/vendor/chart.js/chart.umd.js",
        "/console/static/vendor/chart.js/..%2F..%2Fconsole.js",
    ):
        assert (await desk.client.get(path)).status == 404, path


async def test_other_files_are_not_served(desk: Desk) -> None:
    for path in (
        "/console/static/console.html.bak",
        "/console/static/..%2Fpage.py",
        "/console/static/%2E%2E%2F%2E%2E%2Fsettings.py",
        "/console/static/",
    ):
        assert (await desk.client.get(path)).status == 404, path


async def test_api_answers_are_not_cached_nor_framed(desk: Desk) -> None:
    refused = await desk.client.get("/console/api/me")
    assert refused.status == 401
    assert refused.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in refused.headers["Content-Security-Policy"]
    await desk.rep("ann")
    await desk.login("ann")
    me = await desk.client.get("/console/api/me")
    assert me.status == 200 and me.headers["Cache-Control"] == "no-store"
    assert (await desk.client.get("/healthz")).headers.get("X-Frame-Options") is None


async def test_a_trailing_slash_goes_to_the_page(desk: Desk) -> None:
    resp = await desk.client.get("/console/", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "/console"
