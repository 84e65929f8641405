"""The documentation site: the configuration reference generated from `Settings`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway import settings_reference
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _row(page: str, env: str) -> str:
    """The table row of one setting (the test fails when there is none, or several)."""
    rows = [line for line in page.splitlines() if f"`{env}` |" in line and line.startswith("| ")]
    assert len(rows) == 1, f"{env}: {len(rows)} rows on the configuration page"
    return rows[0]


def test_every_setting_has_a_description() -> None:
    missing = settings_reference.undocumented(Settings)
    assert missing == [], f"settings without description=: {', '.join(missing)}"


def test_every_setting_is_on_the_page_with_its_default_and_description() -> None:
    page = settings_reference.render(Settings)
    for name, info in Settings.model_fields.items():
        row = _row(page, f"GATEWAY_{name.upper()}")
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert len(cells) == 4, row
        # Each description's first words (before any code span or setting name) are shown.
        first_words = re.split(r"[`<>|*&]|GATEWAY_|[A-Z]{2,}_", info.description or "")[0]
        assert first_words.strip()[:20] in cells[3], (name, cells[3])
        default = info.default
        if isinstance(default, bool):
            assert cells[2] == f"`{str(default).lower()}`", (name, cells[2])
        elif isinstance(default, float):
            assert cells[2] == f"`{default:g}`", (name, cells[2])
        elif isinstance(default, (int, str)) and default != "":
            assert cells[2] == f"`{default}`", (name, cells[2])
        elif default is None:
            assert cells[2] == "*(unset)*", (name, cells[2])


def test_sections_follow_the_settings_source() -> None:
    page = settings_reference.render(Settings)
    headings = re.findall(r"^### (.+)$", page, flags=re.M)
    assert headings[0] == "Where it listens and how it is reached"
    assert "Human queues and the rep console" in headings
    assert "Other" not in headings  # every field sits under a `# --- ` comment
    assert page.index("`GATEWAY_SMS_HELP_TEXT`") > page.index("### SMS")


def test_secret_defaults_never_shown_and_missing_descriptions_found() -> None:
    class Sample(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="GATEWAY_")

        # --- a section
        token: SecretStr = Field(SecretStr("hunter2-default"), description="A secret.")
        plain: int = Field(3)
        listed: list[str] = Field(default_factory=lambda: ["a|b"], description="Pipes `a|b`.")

    assert settings_reference.undocumented(Sample) == ["GATEWAY_PLAIN"]
    page = settings_reference.render(Sample)
    assert "hunter2" not in page
    assert "*(set; hidden)*" in _row(page, "GATEWAY_TOKEN")
    assert _row(page, "GATEWAY_LISTED").count(" | ") == 3  # the pipe inside code splits nothing
    assert "### A section" in page


def test_names_of_other_settings_link_to_their_rows() -> None:
    page = settings_reference.render(Settings)
    row = _row(page, "GATEWAY_TRANSFER_CALLER_ID")
    assert "[`GATEWAY_TRANSFER_NUMBERS`](#gateway_transfer_numbers)" in row
    assert '<span id="gateway_transfer_numbers"></span>' in page
    assert "&lt;host&gt;-&lt;pid&gt;" in _row(page, "GATEWAY_NODE_ID")  # not eaten as HTML


def test_the_configuration_page_carries_the_marker_the_docs_hook_replaces() -> None:
    source = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert source.count(settings_reference.MARKER) == 1
    hooks = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "docs/hooks/settings_reference.py" in hooks
