"""Twilio request signatures (`X-Twilio-Signature`), checked with the `twilio` package.

Shared by every Twilio channel (phone, SMS).

Twilio signs every request it makes to us with HMAC-SHA1 of the URL it called
(exactly as configured: scheme, host, path and query string) followed, for a
form POST, by each parameter name and value in sorted order, keyed with the
account's auth token. It signs the HTTP upgrade that opens a Media Stream the
same way, with the `wss://` URL from our TwiML and no parameters.

The URL Twilio called is rebuilt from `GATEWAY_PUBLIC_URL` plus the request's
path and query, never from the Host header a proxy may have rewritten. Without
an auth token nothing can be checked, so every request is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.errors import AuthError
from gateway.http_input import read_form
from gateway.metrics import Metrics
from gateway.settings import Settings

log = logging.getLogger("gateway.twilio.signature")

SIGNATURE_HEADER = "X-Twilio-Signature"


class TwilioSignatures:
    """Checks (and, for our own tools, computes) Twilio signatures for one account."""

    def __init__(self, auth_token: str | None, public_url: str, public_ws_base: str) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = public_url.rstrip("/")
        self.public_ws_base = public_ws_base.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSignatures:
        token = settings.twilio_auth_token
        return cls(
            token.get_secret_value() if token is not None else None,
            settings.public_url,
            settings.public_ws_base,
        )

    @property
    def configured(self) -> bool:
        """Whether an auth token is set (without one every request is refused)."""
        return self._validator is not None

    def http_url(self, request: web.Request) -> str:
        """The public URL Twilio called for this webhook."""
        return self.public_url + request.rel_url.raw_path_qs

    def ws_url(self, request: web.Request) -> str:
        """The public `wss://` URL Twilio opened for this stream."""
        return self.public_ws_base + request.rel_url.raw_path_qs

    def check_possible(self, signature: str | None) -> None:
        """Raise AuthError when no check could succeed (no token, no signature)."""
        if self._validator is None:
            raise AuthError("GATEWAY_TWILIO_AUTH_TOKEN is unset: Twilio requests cannot be checked")
        if not signature:
            raise AuthError(f"no {SIGNATURE_HEADER} header")

    def check(self, url: str, params: Mapping[str, Any], signature: str | None) -> None:
        """Raise AuthError unless `signature` is Twilio's for `url` and `params`."""
        self.check_possible(signature)
        assert self._validator is not None and signature is not None
        if not self._validator.validate(url, params, signature):
            raise AuthError(f"{SIGNATURE_HEADER} does not match {url}")

    async def check_form(self, request: web.Request) -> Mapping[str, str]:
        """Check a signed form POST (a webhook); returns its parameters. An unsigned
        request is refused before its body is read; a body that is no form is 400."""
        signature = request.headers.get(SIGNATURE_HEADER)
        self.check_possible(signature)
        form = await read_form(request)
        # Several values for one name are signed too; the validator reads getall().
        self.check(self.http_url(request), form, signature)
        return dict(form.items())

    def check_upgrade(self, request: web.Request) -> None:
        """Check the signed GET that opens a Media Stream websocket."""
        self.check(self.ws_url(request), {}, request.headers.get(SIGNATURE_HEADER))

    def sign(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """The signature Twilio would send for `url` and `params` (tools and tests)."""
        if self._validator is None:
            raise AuthError("GATEWAY_TWILIO_AUTH_TOKEN is unset: nothing to sign with")
        return str(self._validator.compute_signature(url, dict(params or {})))


def check_account(expected: str, got: str) -> None:
    """Raise AuthError for a webhook of another account than the configured one (if set)."""
    if expected and got != expected:
        raise AuthError(f"a webhook for another account ({got!r})")


def refuse(request: web.Request, exc: AuthError) -> web.HTTPForbidden:
    """The 403 for a request that failed its check (the reason is logged, not sent)."""
    log.warning("refused %s %s: %s", request.method, request.path, exc)
    return web.HTTPForbidden(text="invalid Twilio signature")


async def signed_form(
    request: web.Request,
    signatures: TwilioSignatures,
    account_sid: str,
    metrics: Metrics,
    channel: str,
) -> Mapping[str, str]:
    """The form of a webhook Twilio signed for our account (`account_sid`, if set): the
    one check every Twilio form endpoint makes. 403, counted as bad input on `channel`,
    otherwise."""
    try:
        form = await signatures.check_form(request)
        check_account(account_sid, form.get("AccountSid", ""))
    except AuthError as exc:
        metrics.bad_input.labels(channel, "signature").inc()
        raise refuse(request, exc) from None
    return form


__all__ = ["SIGNATURE_HEADER", "TwilioSignatures", "check_account", "refuse", "signed_form"]
