"""Credentials kept out of what the gateway prints or logs.

Several settings are URLs that may carry a password (GATEWAY_DATABASE_URL,
GATEWAY_REDIS_URL, GATEWAY_EMAIL_RELAY, GATEWAY_EMAIL_IMAP, and any other URL an
operator writes as `scheme://user:pass@host`). `redact_url` hides the password
(and password-like query parameters such as libpq's `?password=`) and keeps the
rest, so a message still says which server was meant. `printable_settings` is
what `gateway check-config` prints: every setting, secrets hidden, URLs redacted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from gateway.settings import Settings

MASK = "***"
# Query parameters that carry a credential in the URLs drivers take.
_SECRET_PARAMS = frozenset({"password", "passwd", "pass", "sslpassword", "token", "secret"})
# Secret settings that are URLs: shown with only their credentials hidden.
_SECRET_URLS = frozenset({"redis_url", "email_relay", "email_imap"})


def redact_url(url: str) -> str:
    """`url` with its password (and password-like query parameters) replaced by ***.
    A value that is not a URL with a network location comes back unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # not parseable as a URL (a bad port, a stray bracket)
        return url
    netloc = parts.netloc
    if has_password:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            masked = [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            query = urlencode(masked, safe="*", quote_via=quote)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide: as written (urlunsplit would re-spell sqlite:////)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def printable_settings(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON-ready values: secrets as `**********`, except secret URLs
    (Redis, mail relay, IMAP), shown with only their password hidden, and every URL
    with its password hidden."""
    shown: dict[str, Any] = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown[name] = redact_url(value.get_secret_value()) if name in _SECRET_URLS else "*" * 10
        elif isinstance(shown[name], str):
            shown[name] = redact_url(shown[name])
    return shown


__all__ = ["MASK", "printable_settings", "redact_url"]
