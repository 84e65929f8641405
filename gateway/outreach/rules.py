"""Outreach rules and templates, from a TOML file a deployment may replace.

The packaged `rules.toml` (next to this module) is used unless
`GATEWAY_OUTREACH_RULES_DIR` holds a `rules.toml`, as the agent's prompt files are
overridden (agent/llm/prompts.py). The file is read and checked once at start-up:
a bad file fails the start naming the setting. Texts are `string.Template`s, which
substitute `$names` and nothing else (no attribute access, no code): a business
event's data can never run anything.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from gateway.errors import ConfigError
from gateway.models import Frozen
from gateway.outreach.models import OutreachChannel

TEXTS = ("sms", "email_subject", "email_body", "webchat", "call_opening", "voicemail")
SETTING = "GATEWAY_OUTREACH_RULES_DIR"


class Rendered(Frozen):
    """One event's texts, filled in."""

    reason: str
    sms: str
    email_subject: str
    email_body: str
    webchat: str
    call_opening: str
    voicemail: str

    def text_for(self, channel: OutreachChannel) -> str:
        """The message stored in the conversation for `channel`."""
        match channel:
            case OutreachChannel.SMS:
                return self.sms
            case OutreachChannel.EMAIL:
                return self.email_body
            case OutreachChannel.WEBCHAT:
                return self.webchat
            case OutreachChannel.CALL:
                return self.call_opening


class Rule(Frozen):
    """What to do for one event type."""

    channels: tuple[OutreachChannel, ...] = Field(min_length=1)
    call: bool = False
    reason: str = Field(min_length=1)
    sms: str = Field(min_length=1)
    email_subject: str = Field(min_length=1)
    email_body: str = Field(min_length=1)
    webchat: str = Field(min_length=1)
    call_opening: str = Field(min_length=1)
    voicemail: str = Field(min_length=1)

    def fields(self) -> set[str]:
        """Every `$name` the texts use."""
        names: set[str] = set()
        for text in (self.reason, *(getattr(self, t) for t in TEXTS)):
            names.update(string.Template(text).get_identifiers())
        return names

    def render(self, values: Mapping[str, str]) -> Rendered:
        """The texts with `values` substituted; KeyError names a missing field."""
        done = {name: string.Template(getattr(self, name)).substitute(values)
                for name in ("reason", *TEXTS)}  # fmt: skip
        return Rendered(**done)

    def allowed(self, channel: OutreachChannel) -> bool:
        return channel is not OutreachChannel.CALL or self.call


class Rules:
    """Every event type's `Rule`, read once."""

    def __init__(self, override_dir: Path | None = None) -> None:
        if override_dir is not None and not override_dir.is_dir():
            raise ConfigError(f"{SETTING}: no such directory: {override_dir}")
        custom = override_dir / "rules.toml" if override_dir is not None else None
        if custom is not None and custom.is_file():
            text, where = custom.read_text("utf-8"), str(custom)
        else:
            text, where = _packaged(), "the packaged rules.toml"
        self.types = parse(text, where)

    def get(self, event_type: str) -> Rule | None:
        return self.types.get(event_type)


def parse(text: str, where: str) -> dict[str, Rule]:
    """The rules of a rules.toml text; ConfigError naming the setting and the type."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{SETTING}: {where} is not TOML: {exc}") from exc
    defaults: dict[str, Any] = dict(raw.get("defaults", {}))
    rules: dict[str, Rule] = {}
    for name, table in dict(raw.get("types", {})).items():
        try:
            rules[name] = Rule.model_validate({**defaults, **table})
        except ValidationError as exc:
            raise ConfigError(f"{SETTING}: {where}, type {name!r}: {exc}") from exc
        if OutreachChannel.CALL in rules[name].channels and not rules[name].call:
            raise ConfigError(f"{SETTING}: {where}, type {name!r}: call is listed but not allowed")
    if not rules:
        raise ConfigError(f'{SETTING}: {where} has no [types."..."] table')
    return rules


def template_values(data: Mapping[str, Any], name: str | None) -> dict[str, str]:
    """The values texts may use: the event's scalar data, and the customer's names."""
    values = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float)}
    values.setdefault("name", name or "")
    values.setdefault("first_name", (name or "").split(" ")[0] or "there")
    return values


@cache
def _packaged() -> str:
    return resources.files("gateway.outreach").joinpath("rules.toml").read_text("utf-8")


__all__ = ["TEXTS", "Rendered", "Rule", "Rules", "parse", "template_values"]
