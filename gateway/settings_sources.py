"""Where `Settings` come from besides the environment, and how their errors read.

The TOML file is `GATEWAY_CONFIG`, or `gateway.toml` in the working directory
when present. A rejected setting is reported by the environment variable an
operator would set, with its value unless it is a secret.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.redaction import redact_url

ENV_PREFIX = "GATEWAY_"
# Never echoed in an error message (a relay URL carries its password).
_SECRET_SETTINGS = frozenset(
    {
        "secret_key",
        "webchat_identity_secret",
        "twilio_auth_token",
        "email_relay",
        "email_imap",
        "llm_api_key",
        "redis_url",
    }
)


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


def config_error(exc: tomllib.TOMLDecodeError | ValidationError) -> ConfigError:
    """The ConfigError an operator reads for a bad TOML file or bad settings."""
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
        got = "***" if name.split(".")[0] in _SECRET_SETTINGS else _shown(err.get("input"))
        lines.append(f"{env}: {err['msg']} (got {got})")
    return ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def _shown(value: Any) -> str:
    """A rejected setting's value for an error message (a URL's password hidden)."""
    return repr(redact_url(value) if isinstance(value, str) else value)
