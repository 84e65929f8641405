"""The checks behind `Settings`' validators, as plain functions.

Each takes a setting's value and returns it normalized, or raises ValueError with
the message an operator sees after the setting's variable name (`load_settings`
adds the name). The two cross-setting checks take the whole `Settings`; their
messages name every variable involved, since no single one is at fault.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationInfo

from gateway.phone_numbers import to_e164
from gateway.store.urls import is_postgres

if TYPE_CHECKING:
    from gateway.settings import Settings

# --------------------------------------------------------- across settings


def llm_pairing(settings: Settings) -> Settings:
    """An LLM needs both a base URL and a model, and its budgets must leave the
    fallback answer time within the agent's timeout."""
    if bool(settings.llm_base_url) != bool(settings.llm_model):
        missing = "GATEWAY_LLM_MODEL" if settings.llm_base_url else "GATEWAY_LLM_BASE_URL"
        raise ValueError(f"{missing} must be set too (the LLM needs a base URL and a model)")
    slowest = max(
        settings.llm_budget_phone_s,
        settings.llm_budget_sms_s,
        settings.llm_budget_email_s,
        settings.llm_budget_chat_s,
    )
    if settings.llm_base_url and slowest >= settings.agent_timeout_s:
        raise ValueError(
            "GATEWAY_LLM_BUDGET_*_S must be below GATEWAY_AGENT_TIMEOUT_S, so the fallback"
            " answer still fits in the agent's time"
        )
    return settings


def email_tls(settings: Settings) -> Settings:
    """STARTTLS needs a certificate and its key, both or neither."""
    if (settings.email_tls_cert is None) != (settings.email_tls_key is None):
        missing = "KEY" if settings.email_tls_key is None else "CERT"
        raise ValueError(
            f"GATEWAY_EMAIL_TLS_{missing} must be set too (STARTTLS needs a certificate"
            " and its private key)"
        )
    if settings.email_require_starttls and settings.email_tls_cert is None:
        raise ValueError(
            "GATEWAY_EMAIL_REQUIRE_STARTTLS needs GATEWAY_EMAIL_TLS_CERT and"
            " GATEWAY_EMAIL_TLS_KEY (there is no STARTTLS to require without them)"
        )
    return settings


def default_public_url(data: Any) -> Any:
    """Unset, the public URL is where `gateway serve` listens on this machine."""
    if isinstance(data, dict) and not data.get("public_url"):
        data = {**data, "public_url": f"http://localhost:{data.get('port', 8080)}"}
    return data


# ------------------------------------------------------------------ URLs


def public_url(value: str) -> str:
    """An absolute http(s) URL, without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL such as https://support.example.com")
    return value.rstrip("/")


def database_url(value: str) -> str:
    """Empty (SQLite in the data dir), sqlite:///PATH or a PostgreSQL URL."""
    value = value.strip()
    if value and not (value.startswith("sqlite:///") or is_postgres(value)):
        raise ValueError(
            f"unsupported database {value.split(':', 1)[0]!r}; use sqlite:///PATH or"
            " postgresql://USER@HOST[:PORT]/DATABASE"
        )
    return value


def llm_url(value: str) -> str:
    """Empty, or an absolute http(s) URL without a trailing slash."""
    value = value.strip()
    parts = urlsplit(value)
    if value and (parts.scheme not in {"http", "https"} or not parts.netloc):
        raise ValueError("must be an absolute http(s) URL such as http://localhost:8000/v1")
    return value.rstrip("/")


def twilio_api_url(value: str) -> str:
    """An absolute http(s) URL, without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL such as https://api.twilio.com")
    return value.rstrip("/")


def hold_music_url(value: str) -> str:
    """Empty, or an absolute http(s) URL."""
    parts = urlsplit(value)
    if value and (parts.scheme not in {"http", "https"} or not parts.netloc):
        raise ValueError("must be an absolute http(s) URL")
    return value


def redis_url(value: SecretStr | None) -> SecretStr | None:
    """A redis:// or rediss:// URL; empty is unset."""
    if value is None or not value.get_secret_value():
        return None
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ValueError("must be redis://[:password@]host[:port][/db] or rediss://...")
    return value


# ----------------------------------------------------------------- email


def email_address(value: str) -> str:
    """Empty, or one plain address (no `+` tag), lower-cased."""
    value = value.strip().lower()
    if value and (value.count("@") != 1 or "+" in value or " " in value):
        raise ValueError("must be a plain address such as support@example.com")
    return value


def host_port(value: str) -> str:
    """Empty, or host:port with a port in 0..65535."""
    value = value.strip()
    if value:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port such as 0.0.0.0:2525")
    return value


def smtp_url(value: SecretStr | None) -> SecretStr | None:
    """An smtp:// or smtps:// URL; empty is unset."""
    if value is None or not value.get_secret_value():
        return None
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("must be smtp://[user:pass@]host[:port] or smtps://...")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError("has a bad port") from exc
    return value


def imap_url(value: SecretStr | None) -> SecretStr | None:
    """An imaps:// URL with a user (imap:// only for this machine); empty is unset."""
    if value is None or not value.get_secret_value():
        return None
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in {"imap", "imaps"} or not parts.hostname or not parts.username:
        raise ValueError("must be imaps://user:pass@host[:port]/MAILBOX")
    if parts.scheme == "imap" and parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
        raise ValueError("must use imaps:// (TLS) for a server on another machine")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError("has a bad port") from exc
    return value


# ------------------------------------------------------- phone and SMS


def sms_sender(value: str) -> str:
    """An E.164 number (normalized), a short code or an alphanumeric sender id: all
    are valid senders."""
    value = value.strip()
    if value.startswith("+") or value[:1] == "(":
        number = to_e164(value)
        if number is None:
            raise ValueError("must be a phone number in E.164 such as +15557654321")
        return number
    return value


def transfer_numbers(value: str) -> str:
    """`parse_transfer_numbers`' groups written back in one canonical form."""
    groups = parse_transfer_numbers(value)
    return "; ".join(f"{queue}={','.join(numbers)}" for queue, numbers in groups.items())


def transfer_caller_id(value: str, info: ValidationInfo) -> str:
    """Empty unless transfer numbers are set; otherwise a number in E.164."""
    value = value.strip()
    if not value:
        if info.data.get("transfer_numbers"):
            raise ValueError("is needed with GATEWAY_TRANSFER_NUMBERS (a Twilio number)")
        return value
    number = to_e164(value)
    if number is None:
        raise ValueError("must be a phone number in E.164 such as +15557654321")
    return number


def caller_id(value: str) -> str:
    """Empty, or a number in E.164 (normalized)."""
    value = value.strip()
    if not value:
        return value
    number = to_e164(value)
    if number is None:
        raise ValueError("must be a phone number in E.164 such as +15557654321")
    return number


def parse_transfer_numbers(value: str) -> dict[str, tuple[str, ...]]:
    """`+1555...,+1555...` or `billing=+1555...; *=+1555...` as {queue: numbers}; a
    group without `queue=` is `*` (every queue). ValueError names a bad number."""
    groups: dict[str, tuple[str, ...]] = {}
    for group in value.split(";"):
        if not group.strip():
            continue
        queue, sep, numbers = group.rpartition("=")
        queue = queue.strip().lower() if sep else "*"
        if not queue or any(ch.isspace() for ch in queue):
            raise ValueError(f"bad queue name {queue!r} (write queue=+1555...,+1555...)")
        found: list[str] = list(groups.get(queue, ()))
        for raw in numbers.split(","):
            if not raw.strip():
                continue
            number = to_e164(raw.strip())
            if number is None:
                raise ValueError(f"{raw.strip()!r} is not a phone number (E.164: +15551234567)")
            if number not in found:
                found.append(number)
        if found:
            groups[queue] = tuple(found)
    return groups


def compute_type(value: str) -> str:
    """A CTranslate2 compute type that runs on CPU, lower-cased."""
    value = value.lower()
    if value not in {"int8", "int8_float32", "int16", "float32"}:
        raise ValueError("must be one of int8, int8_float32, int16, float32")
    return value


# ------------------------------------------------------- queues and hours


def queues(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """At least one queue, each with a name of at most 50 characters and skills."""
    if not value:
        raise ValueError("needs at least one queue")
    for name, skills in value.items():
        if not name or len(name) > 50 or not skills:
            raise ValueError(f"queue {name!r} needs a name (<= 50 chars) and skills")
    return value


def sla_targets(value: dict[str, float]) -> dict[str, float]:
    """Queue -> a positive number of seconds."""
    for queue, seconds in value.items():
        if seconds <= 0:
            raise ValueError(f"queue {queue!r}: the target must be more than 0 seconds")
    return value


COST_RATE_NAMES = (
    "llm_prompt_per_1k_tokens", "llm_completion_per_1k_tokens", "stt_per_minute",
    "tts_per_minute", "sms_segment", "call_minute", "rep_minute",
)  # fmt: skip


def cost_rates(value: dict[str, float]) -> dict[str, float]:
    """Known rate names, each a finite amount of 0 or more."""
    for name, amount in value.items():
        if name not in COST_RATE_NAMES:
            raise ValueError(f"unknown rate {name!r}; the rates are {', '.join(COST_RATE_NAMES)}")
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"rate {name!r} must be a finite amount of 0 or more")
    return value


def currency(value: str) -> str:
    """Three capital letters (ISO 4217)."""
    if len(value) != 3 or not value.isascii() or not value.isupper() or not value.isalpha():
        raise ValueError("must be an ISO 4217 code such as USD or EUR")
    return value


def api_token(value: SecretStr | None) -> SecretStr | None:
    """At least 16 characters; empty is unset."""
    if value is None or not value.get_secret_value():
        return None
    if len(value.get_secret_value()) < 16:
        raise ValueError("must be at least 16 characters")
    return value


def time_zone(value: str) -> str:
    """An IANA time zone name."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Europe/Paris") from exc
    return value


def business_hours(value: dict[str, str]) -> dict[str, str]:
    """Open hours per weekday, as `routing.policy.parse_hours` reads them."""
    from gateway.routing.policy import parse_hours

    parse_hours(value)  # raises ValueError naming the bad day
    return value


# ------------------------------------------------------------- plumbing


def sqlite_synchronous(value: str) -> str:
    """An SQLite `synchronous` level, upper-cased."""
    value = value.upper()
    if value not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError("must be one of OFF, NORMAL, FULL, EXTRA")
    return value


def log_level(value: str) -> str:
    """A logging level name, upper-cased."""
    value = value.upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return value
