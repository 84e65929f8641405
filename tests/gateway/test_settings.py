"""Settings: environment, TOML file, defaults, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./gateway.toml


def test_defaults() -> None:
    s = load_settings()
    assert (s.host, s.port, s.public_url) == ("127.0.0.1", 8080, "http://localhost:8080")
    assert load_settings(port=9000).public_url == "http://localhost:9000"
    assert s.data_dir == Path("./data")
    assert s.store_url.startswith("sqlite:///") and s.store_url.endswith("data/gateway.sqlite3")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9090")
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://support.example.com/")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GATEWAY_WEBCHAT_ALLOWED_ORIGINS", '["https://shop.example.com"]')
    s = load_settings()
    assert s.port == 9090
    assert s.public_url == "https://support.example.com"
    assert s.public_ws_base == "wss://support.example.com"
    assert s.data_dir == tmp_path / "state"
    assert s.webchat_allowed_origins == ["https://shop.example.com"]


def test_toml_file_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('port = 7000\nhost = "0.0.0.0"\nhandover_threshold = 0.6\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    monkeypatch.setenv("GATEWAY_HOST", "127.0.0.2")  # the environment wins over the file
    s = load_settings()
    assert (s.port, s.host, s.handover_threshold) == (7000, "127.0.0.2", 0.6)


def test_gateway_toml_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text("port = 7100\n")
    assert load_settings().port == 7100


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("GATEWAY_PORT", "eighty", "GATEWAY_PORT"),
        ("GATEWAY_PORT", "70000", "GATEWAY_PORT"),
        ("GATEWAY_PUBLIC_URL", "support.example.com", "GATEWAY_PUBLIC_URL"),
        ("GATEWAY_SQLITE_SYNCHRONOUS", "sometimes", "GATEWAY_SQLITE_SYNCHRONOUS"),
        ("GATEWAY_HANDOVER_THRESHOLD", "2", "GATEWAY_HANDOVER_THRESHOLD"),
    ],
)
def test_errors_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_a_bad_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every SecretStr setting is masked in errors, read from its type (the API token was
    # added later than the others and was once echoed in clear).
    monkeypatch.setenv("GATEWAY_API_TOKEN", "tiny-secret")
    with pytest.raises(ConfigError, match="GATEWAY_API_TOKEN") as caught:
        load_settings()
    assert "tiny-secret" not in str(caught.value) and "***" in str(caught.value)


def test_unknown_key_in_toml_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("prot = 1\n")
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="GATEWAY_PROT"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="GATEWAY_CONFIG"):
        load_settings()


def test_broken_toml_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("port = = 1\n")
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="GATEWAY_CONFIG"):
        load_settings()


def test_email_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().email_address == ""  # the email channel is off by default
    monkeypatch.setenv("GATEWAY_EMAIL_ADDRESS", "Support@Example.com")
    monkeypatch.setenv("GATEWAY_EMAIL_LISTEN", "0.0.0.0:2525")
    monkeypatch.setenv("GATEWAY_EMAIL_RELAY", "smtps://user:p%40ss@smtp.example.com:465")
    s = load_settings()
    assert (s.email_address, s.email_listen) == ("support@example.com", "0.0.0.0:2525")
    assert s.email_relay is not None and "p%40ss" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email_address", "not-an-address"),
        ("email_address", "support+x@example.com"),
        ("email_listen", "2525"),
        ("email_listen", "host:99999"),
        ("email_relay", "http://smtp.example.com"),
        ("email_relay", "smtp://user:secret@smtp.example.com:nope"),
        ("email_imap", "imap://user:secret@mail.example.com/INBOX"),  # plain IMAP, remote
        ("email_imap", "https://user:secret@mail.example.com/INBOX"),
        ("email_imap", "imaps://mail.example.com/INBOX"),  # no user
    ],
)
def test_bad_email_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**{name: value})
    assert f"GATEWAY_{name.upper()}" in str(err.value)
    assert "secret" not in str(err.value)  # a relay's password is never echoed


def test_transfer_numbers_by_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GATEWAY_TRANSFER_NUMBERS", "+1 (555) 000-1111, +15550002222; Billing=+15550003333"
    )
    monkeypatch.setenv("GATEWAY_TRANSFER_CALLER_ID", "+1 555 000 9999")
    settings = load_settings()
    assert settings.transfer_targets == {
        "*": ("+15550001111", "+15550002222"),
        "billing": ("+15550003333",),
    }
    assert settings.transfer_caller_id == "+15550009999"
    assert load_settings().transfer_numbers == settings.transfer_numbers  # normalized, stable
    assert load_settings(transfer_numbers="").transfer_targets == {}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"transfer_numbers": "+15550001111"}, "GATEWAY_TRANSFER_CALLER_ID"),  # no caller id
        ({"transfer_numbers": "billing=call-bob", "transfer_caller_id": "+15550009999"},
         "GATEWAY_TRANSFER_NUMBERS"),
        ({"transfer_caller_id": "555"}, "GATEWAY_TRANSFER_CALLER_ID"),
        ({"transfer_hold_music_url": "music.mp3"}, "GATEWAY_TRANSFER_HOLD_MUSIC_URL"),
        ({"transfer_ring_timeout_s": 2}, "GATEWAY_TRANSFER_RING_TIMEOUT_S"),
    ],
)  # fmt: skip
def test_bad_transfer_settings_are_named(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**values)
