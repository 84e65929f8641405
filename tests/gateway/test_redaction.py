"""Credentials in URL settings never reach what the gateway prints or logs:
`gateway check-config`, start-up errors, setting errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.bus_redis import RedisBus
from gateway.errors import ConfigError
from gateway.redaction import redact_url
from gateway.settings import load_settings
from gateway.store.urls import PgUrl
from tests.support.nodes import free_port

SECRETS = {
    "GATEWAY_DATABASE_URL": ("postgresql://gateway:pg-S3cret@db.internal/gateway", "pg-S3cret"),
    "GATEWAY_REDIS_URL": ("redis://:r3dis-Pw@redis.internal:6379/0", "r3dis-Pw"),
    "GATEWAY_EMAIL_RELAY": ("smtp://mailer:m4il-Pw@relay.internal:587", "m4il-Pw"),
    "GATEWAY_EMAIL_IMAP": ("imaps://support:1map-Pw@imap.internal/INBOX", "1map-Pw"),
    "GATEWAY_LLM_BASE_URL": ("https://bot:llm-Pw@llm.internal/v1", "llm-Pw"),
}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://gw:secret@db/gw", "postgresql://gw:***@db/gw"),
        ("postgresql://gw:p%40ss@db:5433/gw?sslmode=require",
         "postgresql://gw:***@db:5433/gw?sslmode=require"),
        ("postgresql://gw:p@ss@db/gw", "postgresql://gw:***@db/gw"),  # an unescaped @
        ("postgresql://gw@db/gw?password=secret&sslmode=require",
         "postgresql://gw@db/gw?password=***&sslmode=require"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:secret@cache/1", "rediss://default:***@cache/1"),
        ("imaps://me%40example.com:secret@imap.example.com/INBOX",
         "imaps://me%40example.com:***@imap.example.com/INBOX"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),  # nothing to hide
        ("sqlite:////var/lib/gateway/gw.sqlite3", "sqlite:////var/lib/gateway/gw.sqlite3"),
        ("not a url", "not a url"),
    ],
)  # fmt: skip
def test_a_url_keeps_everything_but_its_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_check_config_prints_no_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({name: url for name, (url, _) in SECRETS.items()})
    env.update(GATEWAY_DATA_DIR=str(tmp_path), GATEWAY_LLM_MODEL="some-model",
               GATEWAY_TWILIO_AUTH_TOKEN="twilio-T0ken-value")  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    printed = out.stdout + out.stderr
    for _, secret in SECRETS.values():
        assert secret not in printed
    assert "twilio-T0ken-value" not in printed
    shown = json.loads(out.stdout)
    assert shown["database_url"] == "postgresql://gateway:***@db.internal/gateway"
    assert shown["redis_url"] == "redis://:***@redis.internal:6379/0"
    assert shown["email_relay"] == "smtp://mailer:***@relay.internal:587"
    assert shown["email_imap"] == "imaps://support:***@imap.internal/INBOX"
    assert shown["llm_base_url"] == "https://bot:***@llm.internal/v1"
    assert shown["twilio_auth_token"] == "**********"


def test_a_rejected_url_setting_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_LLM_BASE_URL", "ftp://bot:llm-Pw@llm.internal/v1")
    with pytest.raises(ConfigError, match="GATEWAY_LLM_BASE_URL") as raised:
        load_settings()
    assert "llm-Pw" not in str(raised.value) and "llm.internal" in str(raised.value)


async def test_unreachable_services_are_named_without_their_password() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError, match="GATEWAY_REDIS_URL") as raised:
        await RedisBus.open(f"redis://:r3dis-Pw@127.0.0.1:{port}/0", "gwtest:redact", "n1")
    assert "r3dis-Pw" not in str(raised.value) and f"127.0.0.1:{port}" in str(raised.value)
    db = PgUrl.parse(f"postgresql://gw:pg-S3cret@127.0.0.1:{port}/gw")
    assert db.redacted == f"postgresql://gw:***@127.0.0.1:{port}/gw"
