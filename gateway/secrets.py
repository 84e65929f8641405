"""The gateway's own signing key: configured, or generated once into DATA_DIR."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from gateway.errors import ConfigError
from gateway.settings import Settings


def load_secret_key(settings: Settings) -> bytes:
    """`GATEWAY_SECRET_KEY`, else DATA_DIR/secret.key (created with mode 0600)."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        if len(key) < 16:
            raise ConfigError("GATEWAY_SECRET_KEY: must be at least 16 characters")
        return key
    if not settings.store_url.startswith("sqlite:"):
        # Every node must sign (visitor tokens, console sessions, URLs) with the same key.
        raise ConfigError(
            "GATEWAY_SECRET_KEY: must be set, the same on every node, with a shared"
            " (PostgreSQL) store; a key generated into one node's data dir would not be"
            " the others'"
        )
    path = Path(settings.data_dir) / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def derive_key(master: bytes, purpose: str) -> bytes:
    """A separate key per purpose, so one leaked use cannot forge another."""
    return hmac.new(master, purpose.encode(), hashlib.sha256).digest()
