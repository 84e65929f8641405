"""Calls through Twilio's REST API (the shared client in `channels.twilio.rest`):
hang-ups, and for a warm transfer, moving a live call to new TwiML and ringing a rep.

`client.calls(sid).update_async(status="completed")` is
`POST {api}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
`Status=completed`. A call that has already ended answers 404 with Twilio
error 20404, which is what we wanted anyway. Everything else the client can
raise is translated into `gateway.errors.ChannelError` here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException

from channels.twilio.rest import TIMEOUT_S, TwilioRest, describe
from gateway.errors import ChannelError
from gateway.settings import Settings

log = logging.getLogger("gateway.phone.rest")

CALL_NOT_FOUND = 20404  # "The requested resource ... was not found": the call is over


class TwilioCalls(TwilioRest):
    """Completes calls through Twilio's REST API. Create inside the event loop; close it."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str) -> None:
        super().__init__(account_sid, auth_token, api_url, timeout_s=TIMEOUT_S)

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
            code, detail = describe(exc)
            if code == CALL_NOT_FOUND:
                log.info("call %s had already ended", call_sid)
                return False
            raise ChannelError(f"Twilio refused to end call {call_sid}: {detail}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(f"cannot reach Twilio to end call {call_sid}: {exc!r}") from exc
        return True

    async def redirect(self, call_sid: str, twiml: str) -> bool:
        """Run `twiml` on the live call now (what it was doing stops, a Media Stream
        included). True if done, False if the call had already ended."""
        try:
            await self.client.calls(call_sid).update_async(twiml=twiml)
        except TwilioException as exc:
            code, detail = describe(exc)
            if code == CALL_NOT_FOUND:
                log.info("call %s had already ended", call_sid)
                return False
            raise ChannelError(f"Twilio refused to update call {call_sid}: {detail}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(f"cannot reach Twilio to update call {call_sid}: {exc!r}") from exc
        return True

    async def dial(
        self,
        to: str,
        from_: str,
        twiml: str,
        *,
        status_callback: str,
        events: Sequence[str] = ("initiated", "ringing", "answered", "completed"),
        timeout_s: int = 20,
    ) -> str:
        """Place an outbound call running `twiml` once answered; its SID. Progress is
        posted to `status_callback` (signed, like every Twilio webhook)."""
        return await self._create_call(
            to=to, from_=from_, twiml=twiml, status_callback=status_callback,
            status_callback_event=list(events), status_callback_method="POST",
            timeout=timeout_s,
        )  # fmt: skip

    async def call_out(
        self,
        to: str,
        from_: str,
        *,
        url: str,
        status_callback: str,
        machine_detection: str = "DetectMessageEnd",
        timeout_s: int = 25,
    ) -> str:
        """Place an outbound call whose TwiML is fetched from `url` once answered, after
        answering-machine detection (`AnsweredBy` in that request); its SID. Progress
        (ringing, answered, completed, no-answer, busy, failed) is posted to
        `status_callback`. ChannelError when Twilio refuses or cannot be reached."""
        return await self._create_call(
            to=to, from_=from_, url=url, method="POST", status_callback=status_callback,
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            status_callback_method="POST", machine_detection=machine_detection,
            timeout=timeout_s,
        )  # fmt: skip

    async def _create_call(self, *, to: str, **params: Any) -> str:
        """Create the call; its SID. Twilio's refusal or silence becomes ChannelError."""
        try:
            call = await self.client.calls.create_async(to=to, **params)
        except TwilioException as exc:
            _, detail = describe(exc)
            raise ChannelError(f"Twilio refused to call {to}: {detail}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(f"cannot reach Twilio to call {to}: {exc!r}") from exc
        sid = getattr(call, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise ChannelError(f"Twilio answered the call to {to} without a call SID")
        return sid


__all__ = ["CALL_NOT_FOUND", "TwilioCalls"]
