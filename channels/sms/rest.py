"""Sending SMS through Twilio's REST API (the shared client in `channels.twilio.rest`).

`client.messages.create_async(to=, from_=, body=, status_callback=)` is
`POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json`; Twilio answers
with the new Message resource (`sid`, `status` "queued" or "accepted"). A
refusal (HTTP 4xx/5xx with Twilio's JSON error body) becomes `SendFailed`
with Twilio's error code (21610: the recipient has opted out; 21211: not a
valid number, ...); no answer in time becomes `SendFailed` with code `timeout`,
no connection `unreachable`, a connection lost after the request `broken`
(`SendFailed.not_accepted` says which of these Twilio surely did not take).
Nothing from the `twilio` package escapes this module.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from twilio.base.exceptions import TwilioException

from channels.twilio.rest import TwilioRest, describe
from gateway.errors import ChannelError
from gateway.models import DeliveryStatus
from gateway.settings import Settings

UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient"


@dataclass(frozen=True)
class Sent:
    """What Twilio said about a message it accepted."""

    sid: str
    status: DeliveryStatus
    segments: int | None


class SendFailed(ChannelError):
    """The message was not sent. `code`: Twilio's error code when it refused (as text;
    `refused` when it gave none), else `timeout` or `unreachable`."""

    def __init__(
        self, code: str, detail: str, *, twilio_code: int | None = None,
        http_status: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(detail)
        self.code = code
        self.twilio_code = twilio_code
        self.http_status = http_status

    @property
    def not_accepted(self) -> bool:
        """Twilio surely did not take the message and may later: it could not be reached,
        or it answered "too many requests" or a server error. (A timeout is not: Twilio
        may have created the message without our hearing of it.)"""
        status = self.http_status or 0
        return self.code == "unreachable" or status == 429 or status >= 500


class TwilioMessages(TwilioRest):
    """Sends SMS for the configured account. Create inside the event loop; close it."""

    def __init__(
        self, account_sid: str, auth_token: str, api_url: str, *, timeout_s: float = 10.0
    ) -> None:
        super().__init__(account_sid, auth_token, api_url, timeout_s=timeout_s)
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioMessages | None:
        """A client for the configured account, or None when the REST API cannot be used."""
        token = settings.twilio_auth_token
        if not settings.twilio_account_sid or token is None:
            return None
        return cls(
            settings.twilio_account_sid,
            token.get_secret_value(),
            settings.twilio_api_url,
            timeout_s=settings.sms_send_timeout_s,
        )

    async def send(self, *, to: str, from_: str, body: str, status_callback: str) -> Sent:
        """Ask Twilio to send `body` to `to`; SendFailed when it is not sent."""
        try:
            async with asyncio.timeout(self.timeout_s):
                created = await self.client.messages.create_async(
                    to=to, from_=from_, body=body, status_callback=status_callback
                )
        except TwilioException as exc:
            code, detail = describe(exc)
            status = getattr(exc, "status", None)
            raise SendFailed(
                str(code) if code is not None else "refused",
                f"Twilio refused an SMS to {to}: {detail}",
                twilio_code=code,
                http_status=status if isinstance(status, int) else None,
            ) from exc
        except TimeoutError as exc:
            raise SendFailed("timeout", f"Twilio did not answer in {self.timeout_s} s") from exc
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing was sent
            raise SendFailed("unreachable", f"cannot reach Twilio: {exc!r}") from exc
        except aiohttp.ClientError as exc:  # the request may have reached Twilio
            raise SendFailed("broken", f"Twilio's answer was lost: {exc!r}") from exc
        sid = str(created.sid or "")
        if not sid:
            raise SendFailed("refused", "Twilio answered without a message sid")
        raw = str(created.status or "queued").lower()
        status = _ACCEPTED.get(raw, DeliveryStatus.QUEUED)
        segments = int(created.num_segments) if str(created.num_segments or "").isdigit() else None
        return Sent(sid=sid, status=status, segments=segments)

    async def recent(self, *, to: str, from_: str, since: datetime) -> list[Created]:
        """The messages Twilio holds from `from_` to `to` (GET Messages.json with To and
        From, page by page, newest first) created since `since`; SendFailed when Twilio
        cannot be asked."""
        found: list[Created] = []
        try:
            async with asyncio.timeout(self.timeout_s * 3):
                pages = await self.client.messages.stream_async(to=to, from_=from_, page_size=100)
                async for m in pages:
                    if m.date_created is not None and m.date_created < since:
                        break  # newest first: the rest is older still
                    if m.sid:
                        found.append(Created(str(m.sid), str(m.body or ""), m.date_created))
        except TwilioException as exc:
            code, detail = describe(exc)
            raise SendFailed(str(code or "refused"), f"Twilio's message list: {detail}") from exc
        except TimeoutError as exc:
            raise SendFailed("timeout", "Twilio did not list messages in time") from exc
        except aiohttp.ClientError as exc:
            raise SendFailed("unreachable", f"cannot reach Twilio: {exc!r}") from exc
        return found


@dataclass(frozen=True)
class Created:
    """A message Twilio holds (for finding one whose creation we did not hear of)."""

    sid: str
    body: str
    created: datetime | None


_ACCEPTED = {
    "accepted": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
}

__all__ = ["UNSUBSCRIBED", "Created", "SendFailed", "Sent", "TwilioMessages"]
