"""Twilio's REST API, through the official client on its async HTTP client: hang-ups.

`client.calls(sid).update_async(status="completed")` is
`POST {api}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
`Status=completed`. A call that has already ended answers 404 with Twilio
error 20404, which is what we wanted anyway. Everything else the client can
raise is translated into `gateway.errors.ChannelError` here.

The client's `Api` domain takes its base URL from `GATEWAY_TWILIO_API_URL`
(`Domain.absolute_url` joins `base_url` and the version's relative URI), so a
regional edge or a local stand-in is reached with the same code. Edge and
region rewriting from `TWILIO_EDGE`/`TWILIO_REGION` is switched off: the
setting names the host.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from gateway.errors import ChannelError, ConfigError
from gateway.settings import Settings

log = logging.getLogger("gateway.phone.rest")

CALL_NOT_FOUND = 20404  # "The requested resource ... was not found": the call is over
TIMEOUT_S = 10.0


class _HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # untyped package
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


class TwilioCalls:
    """Completes calls through Twilio's REST API. Create inside the event loop; close it."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("GATEWAY_TWILIO_ACCOUNT_SID and GATEWAY_TWILIO_AUTH_TOKEN are needed")
        self._http = _HeaderAuthHttpClient(timeout=TIMEOUT_S)
        self.client = Client(account_sid, auth_token, http_client=self._http)
        self.client.edge = None
        self.client.region = None
        self.client.api.base_url = api_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioCalls | None:
        """A client for the configured account, or None when the REST API cannot be used."""
        token = settings.twilio_auth_token
        if not settings.twilio_account_sid or token is None:
            return None
        return cls(settings.twilio_account_sid, token.get_secret_value(), settings.twilio_api_url)

    async def complete(self, call_sid: str) -> bool:
        """End the call. True if Twilio ended it now, False if it had already ended."""
        try:
            await self.client.calls(call_sid).update_async(status="completed")
        except TwilioException as exc:
            code = getattr(exc, "code", None)
            if code == CALL_NOT_FOUND:
                log.info("call %s had already ended", call_sid)
                return False
            detail = getattr(exc, "msg", None) or getattr(exc, "title", None) or type(exc).__name__
            status = getattr(exc, "status", "?")
            raise ChannelError(
                f"Twilio refused to end call {call_sid}: HTTP {status}, code {code}: {detail}"
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(f"cannot reach Twilio to end call {call_sid}: {exc!r}") from exc
        return True

    async def close(self) -> None:
        await self._http.close()


__all__ = ["CALL_NOT_FOUND", "TwilioCalls"]
