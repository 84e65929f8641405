"""The system prompt for each channel, from files a deployment can change.

The packaged prompts live in `agent/llm/prompts/`: `base.md` (rules for every
channel) and one style file per channel (`phone.md`, `sms.md`, `email.md`,
`chat.md`). A deployment overrides any of them by putting a file of the same
name in `GATEWAY_LLM_PROMPTS_DIR`; files it does not override keep the packaged text.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from gateway.errors import ConfigError
from gateway.models import ChannelKind

_STYLE = {
    ChannelKind.PHONE: "phone",
    ChannelKind.SMS: "sms",
    ChannelKind.EMAIL: "email",
    ChannelKind.WEBCHAT: "chat",
}
NAMES = ("base", "phone", "sms", "email", "chat")


class Prompts:
    """The prompt texts, read once at start-up (so a bad directory fails early)."""

    def __init__(self, override_dir: Path | None = None) -> None:
        if override_dir is not None and not override_dir.is_dir():
            raise ConfigError(f"GATEWAY_LLM_PROMPTS_DIR: no such directory: {override_dir}")
        self._texts = {name: _read(name, override_dir) for name in NAMES}

    def system(self, channel: ChannelKind) -> str:
        """The system prompt for a conversation on `channel` (others get chat style)."""
        style = self._texts[_STYLE.get(channel, "chat")]
        return f"{self._texts['base'].strip()}\n\n{style.strip()}\n"

    def all_system(self) -> list[str]:
        """Every channel's system prompt: text a reply must never repeat."""
        return [self.system(channel) for channel in _STYLE]


def _read(name: str, override_dir: Path | None) -> str:
    if override_dir is not None:
        custom = override_dir / f"{name}.md"
        if custom.is_file():
            return custom.read_text(encoding="utf-8")
    return _packaged(name)


@cache
def _packaged(name: str) -> str:
    return resources.files("agent.llm").joinpath("prompts", f"{name}.md").read_text("utf-8")


__all__ = ["NAMES", "Prompts"]
