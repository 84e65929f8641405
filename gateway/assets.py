"""The browser libraries the console serves itself (`gateway assets`): Chart.js for
the reports page's charts.

Versions and hashes come from the committed npm lock (`package-lock.json`,
lockfileVersion 3: each package's `resolved` tarball URL and its `integrity`
hash); `package.json`'s `gatewayAssets` names the files wanted from each package.
No node or npm is needed: the tarball is downloaded from the registry, checked
against the lock's sha512 before anything is extracted, and only the named files
are written, into the ignored `gateway/routing/static/vendor/<package>/`. A
`manifest.json` there records what was installed, so a second run with the same
lock and untouched files downloads nothing. Browsers only ever fetch these files
from the gateway (`/console/static/vendor/...`): no CDN at run time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gateway.errors import GatewayError

ROOT = Path(__file__).resolve().parent.parent  # the checkout: package.json lives here
VENDOR_DIR = Path(__file__).resolve().parent / "routing" / "static" / "vendor"
MANIFEST = "manifest.json"
MAX_TARBALL = 20 * 1024 * 1024  # Chart.js's is under 1.5 MB: anything far larger is wrong
INSTALL_HINT = "gateway assets (or scripts/dev.sh setup)"
NPM_REGISTRY = "https://registry.npmjs.org/"


class AssetError(GatewayError):
    """The lock is unusable, a download failed or did not match its hash."""


@dataclass(frozen=True)
class Wanted:
    """One package of the lock and the files taken from its tarball."""

    name: str
    version: str
    resolved: str
    integrity: str
    files: tuple[str, ...]


def wanted(root: Path = ROOT) -> list[Wanted]:
    """The packages `package.json`'s `gatewayAssets` names, as the lock pins them."""
    manifest = _read_json(root / "package.json")
    lock = _read_json(root / "package-lock.json")
    if lock.get("lockfileVersion") != 3:
        raise AssetError("package-lock.json: lockfileVersion 3 expected (npm 9 or newer)")
    assets = manifest.get("gatewayAssets")
    if not isinstance(assets, dict) or not assets:
        raise AssetError("package.json: no gatewayAssets (package name -> files to serve)")
    packages = lock.get("packages", {})
    out = []
    for name, files in sorted(assets.items()):
        entry = packages.get(f"node_modules/{name}")
        if not isinstance(entry, dict):
            raise AssetError(f"package-lock.json: {name} is not locked (npm install {name})")
        resolved, integrity = entry.get("resolved"), entry.get("integrity")
        if not isinstance(resolved, str) or not isinstance(integrity, str):
            raise AssetError(
                f"package-lock.json: {name} has no resolved URL or integrity hash (lock it with"
                " npm install --omit-lockfile-registry-resolved=false)"
            )
        if not resolved.startswith("https://"):
            raise AssetError(f"package-lock.json: {name} resolves to {resolved!r}, not https")
        if not isinstance(files, list) or not all(_safe(f) for f in files):
            raise AssetError(f"package.json: gatewayAssets.{name} must list relative file paths")
        out.append(Wanted(name, str(entry.get("version")), resolved, integrity, tuple(files)))
    return out


def install(root: Path = ROOT, dest: Path = VENDOR_DIR, registry: str | None = None) -> list[str]:
    """Bring `dest` in step with the lock; returns one line per package saying what
    was done. Nothing is written for a package whose tarball fails its hash.

    `registry` (a mirror, as npm's `--registry`) replaces the lock's
    `https://registry.npmjs.org/`; the sha512 check is the same either way."""
    dest.mkdir(parents=True, exist_ok=True)
    installed = _installed(dest)
    report = []
    for want in wanted(root):
        if _current(dest, installed.get(want.name), want):
            report.append(f"{want.name} {want.version}: already installed")
            continue
        tarball = _download(_from(registry, want.resolved))
        check_integrity(tarball, want.integrity, want.name)
        files = _extract(tarball, want, dest / want.name)
        installed[want.name] = {"version": want.version, "integrity": want.integrity,
                                "files": files}  # fmt: skip
        _write(dest / MANIFEST, json.dumps(installed, indent=2, sort_keys=True).encode())
        report.append(f"{want.name} {want.version}: installed {', '.join(sorted(files))}")
    return report


def check_integrity(data: bytes, integrity: str, name: str) -> None:
    """Subresource-integrity check as npm does it: the sha512 entry must match."""
    for entry in integrity.split():
        algorithm, _, expected = entry.partition("-")
        if algorithm == "sha512":
            actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
            if actual != expected:
                raise AssetError(f"{name}: the tarball's sha512 does not match package-lock.json")
            return
    raise AssetError(f"{name}: package-lock.json has no sha512 integrity hash")


def missing(dest: Path = VENDOR_DIR, root: Path = ROOT) -> list[str]:
    """The served files that are not installed (or not as installed): the log names them."""
    try:
        wants = wanted(root)
    except AssetError:
        wants = []
    installed = _installed(dest)
    return [w.name for w in wants if not _current(dest, installed.get(w.name), w)]


def _current(dest: Path, record: Any, want: Wanted) -> bool:
    if not isinstance(record, dict) or record.get("integrity") != want.integrity:
        return False
    files = record.get("files")
    if not isinstance(files, dict) or set(files) != {PurePosixPath(f).name for f in want.files}:
        return False
    for name, digest in files.items():
        path = dest / want.name / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True


def _extract(tarball: bytes, want: Wanted, target: Path) -> dict[str, str]:
    """The named files (npm tarballs hold them under `package/`), flat in `target`."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for path in want.files:
            try:
                member = tar.getmember(f"package/{path}")
            except KeyError:
                raise AssetError(f"{want.name} {want.version} has no {path}") from None
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                raise AssetError(f"{want.name} {want.version}: {path} is not a plain file")
            out[PurePosixPath(path).name] = handle.read()
    target.mkdir(parents=True, exist_ok=True)
    for name, data in out.items():
        _write(target / name, data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in out.items()}


def _from(registry: str | None, resolved: str) -> str:
    if registry is None or not resolved.startswith(NPM_REGISTRY):
        return resolved
    return registry.rstrip("/") + "/" + resolved.removeprefix(NPM_REGISTRY)


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "support-gateway assets"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            data: bytes = response.read(MAX_TARBALL + 1)
    except OSError as exc:
        raise AssetError(f"cannot download {url}: {exc}") from exc
    if len(data) > MAX_TARBALL:
        raise AssetError(f"{url}: larger than {MAX_TARBALL} bytes")
    return data


def _installed(dest: Path) -> dict[str, Any]:
    try:
        data = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise AssetError(f"{path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise AssetError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise AssetError(f"{path}: a JSON object expected")
    return data


def _safe(path: object) -> bool:
    if not isinstance(path, str) or not path:
        return False
    parts = PurePosixPath(path).parts
    return not PurePosixPath(path).is_absolute() and ".." not in parts


def _write(path: Path, data: bytes) -> None:
    """Written whole or not at all (a served file is never seen half written)."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = [
    "INSTALL_HINT", "VENDOR_DIR", "AssetError", "Wanted", "check_integrity", "install",
    "missing", "wanted",
]  # fmt: skip
