"""MkDocs hook: put the reference generated from `Settings` into configuration.md.

The table comes from gateway/settings_reference.py (tested in tests/test_docs.py),
so the published reference is always the code's own.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

# This checkout's `gateway`, even when another one is installed in the environment.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
settings_reference = importlib.import_module("gateway.settings_reference")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != "configuration.md":
        return markdown
    if settings_reference.MARKER not in markdown:
        raise PluginError(f"configuration.md lost its {settings_reference.MARKER} marker")
    missing = settings_reference.undocumented()
    if missing:
        raise PluginError(f"settings without a description: {', '.join(missing)}")
    rendered: str = settings_reference.render()
    return markdown.replace(settings_reference.MARKER, rendered)
