"""Twilio's REST API through the official `twilio` client on its async HTTP client.

`TwilioRest` owns one `twilio.rest.Client` for the configured account; the
phone channel completes calls with it, the SMS channel sends messages. The
client's `Api` domain takes its base URL from `GATEWAY_TWILIO_API_URL`
(`Domain.absolute_url` joins `base_url` and the version's relative URI), so a
regional edge or a local stand-in is reached with the same code. Edge and
region rewriting from `TWILIO_EDGE`/`TWILIO_REGION` is switched off: the
setting names the host.

Errors are not translated here (each channel knows what a code means to it);
`describe` words a client exception for a log line or a `ChannelError`.
"""

from __future__ import annotations

import base64
from typing import Any

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from gateway.errors import ConfigError

TIMEOUT_S = 10.0


class HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # untyped package
    """The stock async client, sending the credentials as an `Authorization` header:
    the `aiohttp.BasicAuth` object it would build is deprecated (gone in aiohttp 4)."""

    async def request(
        self, method: str, url: str, params: Any = None, data: Any = None,
        headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature we override
        allow_redirects: bool = False,
    ) -> Any:  # fmt: skip
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        return await super().request(
            method, url, params=params, data=data, headers=headers, auth=None,
            timeout=timeout, allow_redirects=allow_redirects,
        )  # fmt: skip


class TwilioRest:
    """One account's REST client. Create inside the event loop; close it."""

    def __init__(
        self, account_sid: str, auth_token: str, api_url: str, *, timeout_s: float = TIMEOUT_S
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("GATEWAY_TWILIO_ACCOUNT_SID and GATEWAY_TWILIO_AUTH_TOKEN are needed")
        self.account_sid = account_sid
        self._http = HeaderAuthHttpClient(timeout=timeout_s)
        self.client = Client(account_sid, auth_token, http_client=self._http)
        self.client.edge = None
        self.client.region = None
        self.client.api.base_url = api_url.rstrip("/")

    async def close(self) -> None:
        await self._http.close()


def describe(exc: Exception) -> tuple[int | None, str]:
    """(Twilio error code, `HTTP <status>, code <code>: <message>`) of a client exception."""
    code = getattr(exc, "code", None)
    detail = getattr(exc, "msg", None) or getattr(exc, "title", None) or type(exc).__name__
    status = getattr(exc, "status", "?")
    return (code if isinstance(code, int) else None), f"HTTP {status}, code {code}: {detail}"


__all__ = ["TIMEOUT_S", "HeaderAuthHttpClient", "TwilioRest", "describe"]
