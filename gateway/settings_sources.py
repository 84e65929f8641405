"""Where `Settings` come from besides the environment, and how their errors read.

The TOML file is `GATEWAY_CONFIG`, or `gateway.toml` in the working directory
when present. A rejected setting is reported by the environment variable an
operator would set, with its value unless it is a secret.
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

from gateway.errors import ConfigError
from gateway.redaction import redact_url

ENV_PREFIX = "GATEWAY_"


def is_secret(field: FieldInfo) -> bool:
    """A setting typed `SecretStr` (a key, a token, a URL with a password in it): its
    value is never echoed in an error message. Read from the type, so a new secret
    setting cannot be forgotten in a hand-kept list."""
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def secret_names(fields: dict[str, FieldInfo]) -> frozenset[str]:
    """The names of the secret settings among `fields` (a model's `model_fields`)."""
    return frozenset(name for name, field in fields.items() if is_secret(field))


def toml_path() -> Path | None:
    """The TOML file to read, if any; ConfigError when GATEWAY_CONFIG names none."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file: {path}")
        return path
    default = Path("gateway.toml")
    return default if default.is_file() else None


class EnvSource(EnvSettingsSource):
    """`GATEWAY_*` variables, written the way an operator would: a list setting
    takes `a,b,c` (or a JSON list), and a value that is not the JSON a setting
    needs is one ConfigError naming the variable and the form it expects, rather
    than pydantic-settings' SettingsError traceback."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and _is_list(field) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            env = f"{ENV_PREFIX}{field_name.upper()}"
            got = "***" if is_secret(field) else _shown(value)
            raise ConfigError(
                f"invalid configuration: {env}: expected {_expected_form(field)} (got {got})"
            ) from exc


def _is_list(field: FieldInfo) -> bool:
    return typing.get_origin(field.annotation) in (list, tuple, set, frozenset)


def _expected_form(field: FieldInfo) -> str:
    """How a complex setting is written in its variable, with an example."""
    if _is_list(field):
        return "a comma-separated list such as a,b (or a JSON list)"
    example = (field.examples or [None])[0] or field.get_default(call_default_factory=True)
    if typing.get_origin(field.annotation) is dict:
        return "a JSON object" + (f" such as {json.dumps(example)}" if example else "")
    return "JSON" + (f" such as {json.dumps(example)}" if example else "")


def config_error(
    exc: tomllib.TOMLDecodeError | ValidationError, secrets: frozenset[str] = frozenset()
) -> ConfigError:
    """The ConfigError an operator reads for a bad TOML file or bad settings; the values
    of the settings named in `secrets` are shown as ***."""
    if isinstance(exc, tomllib.TOMLDecodeError):
        where = os.environ.get(f"{ENV_PREFIX}CONFIG", "gateway.toml")
        return ConfigError(f"{ENV_PREFIX}CONFIG: {where} is not valid TOML: {exc}")
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a check across settings: its message names them; no input dump
            lines.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        name = ".".join(str(part) for part in err["loc"]) or "settings"
        env = f"{ENV_PREFIX}{name.split('.')[0].upper()}"
        got = "***" if name.split(".")[0] in secrets else _shown(err.get("input"))
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{env}: {msg} (got {got})")
    if len(lines) == 1:  # the common case reads as one line
        return ConfigError(f"invalid configuration: {lines[0]}")
    return ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def _shown(value: Any) -> str:
    """A rejected setting's value for an error message (a URL's password hidden)."""
    return repr(redact_url(value) if isinstance(value, str) else value)
