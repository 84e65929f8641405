"""`gateway assets`: the console's browser libraries from the npm lock, downloaded
from a registry (here a local one speaking the same HTTP), checked against the
lock's sha512 and served by the gateway; and the committed lock itself."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import assets
from gateway.routing import page

LIB = b"/*! tiny chart library */ globalThis.Chart = function () {};\n"


def tarball(files: dict[str, bytes]) -> bytes:
    """An npm tarball: gzip'd tar with everything under package/."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


TGZ = tarball({"dist/chart.umd.min.js": LIB, "LICENSE.md": b"MIT\n", "src/big.js": b"x" * 999})
RESOLVED = "https://registry.npmjs.org/chart.js/-/chart.js-9.9.9.tgz"


def checkout(root: Path, *, integrity: str = sri(TGZ), files: object = None) -> Path:
    """package.json and package-lock.json as npm writes them (lockfileVersion 3)."""
    wanted = files if files is not None else ["dist/chart.umd.min.js", "LICENSE.md"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({
        "name": "console", "private": True, "dependencies": {"chart.js": "9.9.9"},
        "gatewayAssets": {"chart.js": wanted},
    }))  # fmt: skip
    (root / "package-lock.json").write_text(json.dumps({
        "name": "console", "lockfileVersion": 3, "requires": True,
        "packages": {"": {"dependencies": {"chart.js": "9.9.9"}},
                     "node_modules/chart.js": {"version": "9.9.9", "resolved": RESOLVED,
                                               "integrity": integrity, "license": "MIT"}},
    }))  # fmt: skip
    return root


class Registry:
    """A local npm registry: serves the tarball at the path the lock names."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.body = TGZ

    async def tgz(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.Response(body=self.body, content_type="application/octet-stream")


@pytest.fixture
async def registry() -> AsyncIterator[tuple[Registry, str]]:
    reg = Registry()
    app = web.Application()
    app.router.add_get("/chart.js/-/chart.js-9.9.9.tgz", reg.tgz)
    server = TestServer(app)
    await server.start_server()
    yield reg, str(server.make_url("/"))
    await server.close()


async def test_installs_only_the_named_files_and_skips_when_in_step(
    tmp_path: Path, registry: tuple[Registry, str]
) -> None:
    reg, url = registry
    root, dest = checkout(tmp_path / "repo"), tmp_path / "vendor"
    done = await asyncio.to_thread(assets.install, root, dest, url)
    assert done == ["chart.js 9.9.9: installed LICENSE.md, chart.umd.min.js"]
    assert (dest / "chart.js" / "chart.umd.min.js").read_bytes() == LIB
    assert sorted(p.name for p in (dest / "chart.js").iterdir()) == [
        "LICENSE.md",
        "chart.umd.min.js",
    ]
    assert reg.requests == ["/chart.js/-/chart.js-9.9.9.tgz"]
    assert assets.missing(dest, root) == []

    again = await asyncio.to_thread(assets.install, root, dest, url)
    assert again == ["chart.js 9.9.9: already installed"] and len(reg.requests) == 1

    # A file changed on disk no longer matches what was installed: fetched again.
    (dest / "chart.js" / "chart.umd.min.js").write_text("tampered")
    assert assets.missing(dest, root) == ["chart.js"]
    await asyncio.to_thread(assets.install, root, dest, url)
    assert (dest / "chart.js" / "chart.umd.min.js").read_bytes() == LIB
    assert len(reg.requests) == 2


async def test_a_tarball_not_matching_the_lock_writes_nothing(
    tmp_path: Path, registry: tuple[Registry, str]
) -> None:
    reg, url = registry
    reg.body = tarball({"dist/chart.umd.min.js": b"evil()", "LICENSE.md": b"MIT\n"})
    root, dest = checkout(tmp_path / "repo"), tmp_path / "vendor"
    with pytest.raises(assets.AssetError, match=r"sha512 does not match package-lock\.json"):
        await asyncio.to_thread(assets.install, root, dest, url)
    assert not (dest / "chart.js").exists()
    assert assets.missing(dest, root) == ["chart.js"]


async def test_a_missing_file_in_the_package_is_named(
    tmp_path: Path, registry: tuple[Registry, str]
) -> None:
    _, url = registry
    root = checkout(tmp_path / "repo", files=["dist/chart.esm.js"])
    with pytest.raises(assets.AssetError, match=r"chart.js 9.9.9 has no dist/chart.esm.js"):
        await asyncio.to_thread(assets.install, root, tmp_path / "vendor", url)


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ({"integrity": "sha1-abc"}, "no sha512 integrity hash"),
        ({"files": ["../../etc/passwd"]}, "relative file paths"),
        ({"files": ["/etc/passwd"]}, "relative file paths"),
    ],
)
async def test_a_lock_or_manifest_that_cannot_be_trusted_is_refused(
    tmp_path: Path, registry: tuple[Registry, str], lock: dict[str, object], message: str
) -> None:
    _, url = registry
    root = checkout(tmp_path / "repo", **lock)  # type: ignore[arg-type]
    with pytest.raises(assets.AssetError, match=message):
        await asyncio.to_thread(assets.install, root, tmp_path / "vendor", url)


def test_a_lock_without_resolved_urls_says_how_to_write_one(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo")
    lock = json.loads((root / "package-lock.json").read_text())
    del lock["packages"]["node_modules/chart.js"]["resolved"]
    (root / "package-lock.json").write_text(json.dumps(lock))
    with pytest.raises(assets.AssetError, match="--omit-lockfile-registry-resolved=false"):
        assets.wanted(root)


def test_an_unreachable_registry_is_one_clear_error(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo")
    with pytest.raises(assets.AssetError, match=r"cannot download http://127\.0\.0\.1:9/"):
        assets.install(root, tmp_path / "vendor", "http://127.0.0.1:9")


def test_the_committed_lock_pins_what_the_console_serves() -> None:
    (chart,) = assets.wanted()
    assert chart.name == "chart.js" and chart.resolved.startswith(assets.NPM_REGISTRY)
    assert chart.integrity.startswith("sha512-")
    served = {f"{chart.name}/{Path(f).name}" for f in chart.files}
    assert served == set(page.VENDOR)
    desk = (page.STATIC_DIR / "desk.html").read_text()
    assert '<script src="/console/static/vendor/chart.js/chart.umd.min.js">' in desk


def test_the_log_names_the_command_when_the_library_is_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert page.log_missing_assets(tmp_path / "empty") == ["chart.js"]
    assert "shows tables instead of charts" in caplog.text
    assert "gateway assets" in caplog.text
