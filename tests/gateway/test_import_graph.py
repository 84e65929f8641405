"""The composition root stays a root: only `gateway.app` knows every channel.

Channels and gateway parts read shared resources through `gateway.keys`; were
one of them to import `gateway.app` again, the import circle through the root
(every channel imports the root, the root imports every channel) would be back.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("channels", "agent", "gateway")
# The composition root itself, and the command line that starts it.
ALLOWED = {Path("gateway/app.py"), Path("gateway/cli.py")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path, text: str | None = None) -> set[str]:
    """Every module an import statement in `path` names (relative ones resolved),
    including `from package import submodule` spelled as `package.submodule`.
    `text` stands in for the file's contents (the detector's own test)."""
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_sources_are_found() -> None:
    names = {p.relative_to(ROOT) for p in _sources()}
    assert Path("gateway/app.py") in names
    assert Path("channels/webchat/transport.py") in names
    assert len(names) > 50


def test_only_the_root_and_cli_import_the_composition_root() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources()
        if path.relative_to(ROOT) not in ALLOWED and "gateway.app" in _imported_modules(path)
    ]
    assert offenders == [], f"import gateway.keys instead of gateway.app in: {offenders}"


def test_the_detector_sees_each_spelling() -> None:
    # The check above is only as good as the parser: each way of writing the
    # import is seen (relative imports resolved against the file's package).
    spellings = {
        "gateway/routing/x.py": "from gateway.app import STORE\n",
        "gateway/routing/y.py": "from .. import app\n",
        "gateway/z.py": "from .app import create_app\n",
        "gateway/routing/__init__.py": "from ..app import create_app\n",
        "channels/w.py": "def f():\n    import gateway.app\n",
        "channels/v.py": "from gateway import app as root\n",
    }
    for rel, text in spellings.items():
        assert "gateway.app" in _imported_modules(ROOT / rel, text), rel
    assert "gateway.app" not in _imported_modules(
        ROOT / "gateway/z.py", "from .keys import STORE\n"
    )


def test_keys_module_imports_no_channel() -> None:
    imported = _imported_modules(ROOT / "gateway" / "keys.py")
    assert not any(m.startswith(("channels", "gateway.app")) for m in imported), imported
