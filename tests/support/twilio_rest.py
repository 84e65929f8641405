"""A local server speaking the parts of Twilio's REST API the gateway uses, recording
what it was asked: completing and redirecting calls and placing outbound calls
(phone, warm transfers) and sending messages (SMS).

Point the real `twilio` client at it with `GATEWAY_TWILIO_API_URL`. It checks the
account in the path and the Basic credentials like Twilio (401, error 20003), answers
a created message with a realistic Message resource (`sid` SM..., `status` queued),
and can be scripted to refuse the next sends with Twilio's JSON error body
(`refuse_next(400, 21610, ...)`), or to answer slowly after accepting a message
(`answer_delay_s`: a crash in between leaves the sender not knowing). A created
call gets a Call resource (`sid` CA..., `status` queued) and is live until
completed; a call update with `Twiml` is recorded in `redirects` and reported to
`on_redirect` (as Twilio would then run that TwiML: a test plays what happens next).
Created messages are listed (GET Messages.json, by `To` and `From`) as Twilio does.

A call created with a `Url` (an outbound call) can then be played out against the
gateway as Twilio would: `answer_call` posts the signed answer webhook with what
machine detection found (`AnsweredBy`); for a person, the `<Connect><Stream>` it gets
back is opened as Twilio opens it (a `TwilioSimulator` is the callee's phone); for a
machine, the `<Play>` audio is fetched. `report_status` posts a signed status
callback (`no-answer`, `busy`, `completed`, ...). Public URLs in the gateway's
answers are reached at the test server's address, signed over the public URL.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from channels.phone.tools.simulator import TwilioSimulator
from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
API_VERSION = "2010-04-01"


def _local(gateway_url: str, public: str) -> str:
    """A public URL of the gateway at the test server's address."""
    parts = urlsplit(public)
    return gateway_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def twilio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


@dataclass(frozen=True)
class CreatedCall:
    """An outbound call the gateway placed: its SID and the form it posted."""

    sid: str
    form: dict[str, str]
    status_callback_events: tuple[str, ...]


@dataclass
class AnsweredCall:
    """What the gateway answered when a created call was picked up."""

    twiml: str
    phone: TwilioSimulator | None = None  # a person: the callee's side of the stream
    played: list[bytes] | None = None  # a machine: the audio of each <Play>
    hung_up: bool = False  # the TwiML ends with <Hangup>


class FakeTwilioRest:
    """Calls (`live`, `requests`, `on_completed`, `created`, `redirects`, `on_redirect`)
    and Messages (`messages`, `refuse_next`)."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.live: set[str] = set()
        self.requests: list[tuple[float, str, dict[str, str]]] = []  # call updates
        self.on_completed: Callable[[str], None] | None = None
        self.messages: list[dict[str, str]] = []  # accepted message creations (the form)
        self.message_times: list[float] = []  # time.monotonic() of each accepted creation
        self.refused: list[dict[str, str]] = []  # message creations answered with an error
        self._refusals: list[tuple[int, int, str]] = []
        self.answer_delay_s = 0.0  # accept a message at once, answer only after this
        self.resources: list[dict[str, object]] = []  # created Message resources, in order
        self.lookups = 0  # message list reads
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))
        self.created: list[CreatedCall] = []  # accepted call creations
        self.redirects: list[tuple[str, str]] = []  # (call SID, TwiML) of accepted updates
        self.on_redirect: Callable[[str, str], None] | None = None
        self._call_refusals: list[tuple[int, int, str]] = []
        self._call_sids = (f"CA{n:032x}" for n in itertools.count(0xC0FFEE))
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{account}}"
        app.router.add_post(base + "/Calls/{call}.json", self._update_call)
        app.router.add_post(base + "/Messages.json", self._create_message)
        app.router.add_get(base + "/Messages.json", self._list_messages)
        app.router.add_post(base + "/Calls.json", self._create_call)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def refuse_next(self, status: int, code: int, message: str, times: int = 1) -> None:
        """Answer the next `times` message creations with this Twilio error."""
        self._refusals.extend([(status, code, message)] * times)

    def refuse_next_call(self, status: int, code: int, message: str, times: int = 1) -> None:
        """Answer the next `times` call creations with this Twilio error."""
        self._call_refusals.extend([(status, code, message)] * times)

    async def wait_until(self, check: Callable[[], bool], within_s: float = 10.0) -> None:
        """Wait until `check()` holds after some request (or already does)."""
        async with asyncio.timeout(within_s):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    async def wait_messages(self, count: int, within_s: float = 10.0) -> list[dict[str, str]]:
        """Wait until `count` messages have been accepted (or refused); the accepted ones."""
        async with asyncio.timeout(within_s):
            while len(self.messages) + len(self.refused) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    # ---------------------------------------------- playing out an outbound call

    def call(self, sid: str) -> CreatedCall:
        return next(c for c in self.created if c.sid == sid)

    async def signed_post(
        self, gateway_url: str, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> tuple[int, str]:
        """POST `params` to the public `url` as Twilio does (at the gateway's address,
        signed over `url` unless `signature` is given); (status, body)."""
        signer = TwilioSignatures(self.auth_token, "", "")
        headers = {SIGNATURE_HEADER: signature or signer.sign(url, params)}
        async with (
            aiohttp.ClientSession() as session,
            session.post(_local(gateway_url, url), data=params, headers=headers) as response,
        ):
            return response.status, await response.text()

    def _call_params(self, call: CreatedCall, status: str) -> dict[str, str]:
        return {
            "CallSid": call.sid, "AccountSid": self.account_sid, "From": call.form["From"],
            "To": call.form["To"], "CallStatus": status, "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
        }  # fmt: skip

    async def answer_call(
        self, sid: str, gateway_url: str, answered_by: str = "human"
    ) -> AnsweredCall:
        """The callee picks up and machine detection says `answered_by`: Twilio fetches
        the call's `Url` and runs the TwiML (see the module docstring)."""
        call = self.call(sid)
        params = {**self._call_params(call, "in-progress"), "AnsweredBy": answered_by}
        status, text = await self.signed_post(gateway_url, call.form["Url"], params)
        assert status == 200, (status, text)
        root = ET.fromstring(text)
        answered = AnsweredCall(text, hung_up=root.find("./Hangup") is not None)
        stream = root.find("./Connect/Stream")
        if stream is not None:
            parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
            phone = TwilioSimulator(
                gateway_url, TwilioSignatures(self.auth_token, "", ""), call_sid=sid,
                account_sid=self.account_sid, caller=call.form["To"], called=call.form["From"],
            )  # fmt: skip
            await phone.connect(stream.get("url", ""), parameters)
            answered.phone = phone
        plays = [p.text or "" for p in root.iter("Play")]
        if plays:
            answered.played = []
            async with aiohttp.ClientSession() as session:
                for url in plays:  # Twilio's GET of a <Play> URL is not signed
                    async with session.get(_local(gateway_url, url)) as response:
                        assert response.status == 200, (url, response.status)
                        answered.played.append(await response.read())
        return answered

    async def report_status(
        self, sid: str, gateway_url: str, status: str, *, answered_by: str = "",
        signature: str | None = None,
    ) -> int:  # fmt: skip
        """Post the call's status callback (`no-answer`, `completed`, ...); the HTTP status."""
        call = self.call(sid)
        params = self._call_params(call, status)
        if answered_by:
            params["AnsweredBy"] = answered_by
        if status in ("completed", "no-answer", "busy", "failed", "canceled"):
            self.live.discard(sid)
        code, _ = await self.signed_post(
            gateway_url, call.form["StatusCallback"], params, signature=signature
        )
        return code

    def _authorized(self, request: web.Request) -> bool:
        expected = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)
        return (
            request.match_info["account"] == self.account_sid
            and request.headers.get("Authorization") == expected
        )

    async def _form(self, request: web.Request) -> dict[str, str]:
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}

    async def _update_call(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        call = request.match_info["call"]
        self.requests.append((asyncio.get_running_loop().time(), call, form))
        if not self._authorized(request):
            return twilio_error(401, 20003, "Authenticate")
        if call not in self.live:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if form.get("Status") == "completed":
            self.live.discard(call)
            if self.on_completed is not None:
                self.on_completed(call)
        elif "Twiml" in form:
            self.redirects.append((call, form["Twiml"]))
            if self.on_redirect is not None:
                self.on_redirect(call, form["Twiml"])
        self._changed.set()
        return web.json_response(
            {"sid": call, "account_sid": self.account_sid,
             "status": form.get("Status", "in-progress")}
        )  # fmt: skip

    async def _create_call(self, request: web.Request) -> web.Response:
        posted = await request.post()
        form = {k: v for k, v in posted.items() if isinstance(v, str)}
        try:
            if not self._authorized(request):
                return twilio_error(401, 20003, "Authenticate")
            if not form.get("To") or not form.get("From"):
                return twilio_error(400, 21201, "No 'To' number is specified")
            if not (form.get("Twiml") or form.get("Url") or form.get("ApplicationSid")):
                return twilio_error(400, 21205, "Url parameter is required.")
            if self._call_refusals:
                status, code, message = self._call_refusals.pop(0)
                return twilio_error(status, code, message)
            sid = next(self._call_sids)
            events = tuple(str(v) for v in posted.getall("StatusCallbackEvent", []))
            self.created.append(CreatedCall(sid, form, events))
            self.live.add(sid)
            uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
            return web.json_response(
                {"sid": sid, "account_sid": self.account_sid, "api_version": API_VERSION,
                 "to": form["To"], "from": form["From"], "status": "queued",
                 "direction": "outbound-api", "date_created": formatdate(usegmt=True),
                 "uri": uri},
                status=201,
            )  # fmt: skip
        finally:
            self._changed.set()

    async def _create_message(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        try:
            if not self._authorized(request):
                self.refused.append(form)
                return twilio_error(401, 20003, "Authenticate")
            if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
                self.refused.append(form)
                return twilio_error(400, 21604, "A 'To' and a 'From' phone number are required.")
            if self._refusals:
                status, code, message = self._refusals.pop(0)
                self.refused.append(form)
                return twilio_error(status, code, message)
            self.messages.append(form)
            self.message_times.append(time.monotonic())
            resource = self._resource(form)
            self.resources.append(resource)
            self._changed.set()
            if self.answer_delay_s:  # created, but the answer is slow to come back
                await asyncio.sleep(self.answer_delay_s)
            return web.json_response(resource, status=201)
        finally:
            self._changed.set()

    async def _list_messages(self, request: web.Request) -> web.Response:
        """Twilio's message list, newest first, filtered by `To` and `From`, in pages."""
        if not self._authorized(request):
            return twilio_error(401, 20003, "Authenticate")
        self.lookups += 1
        q = request.query
        found = [
            r
            for r in reversed(self.resources)
            if q.get("To") in (None, r["to"]) and q.get("From") in (None, r["from"])
        ]
        size, page = int(q.get("PageSize", "50")), int(q.get("Page", "0"))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        rest = {k: v for k, v in q.items() if k not in ("Page", "PageSize")}
        more = len(found) > (page + 1) * size

        def page_uri(n: int) -> str:
            return f"{uri}?{urlencode({**rest, 'PageSize': size, 'Page': n})}"

        return web.json_response({
            "messages": found[page * size:(page + 1) * size], "start": page * size,
            "end": min((page + 1) * size, len(found)) - 1, "page": page, "page_size": size,
            "first_page_uri": page_uri(0), "next_page_uri": page_uri(page + 1) if more else None,
            "previous_page_uri": page_uri(page - 1) if page else None, "uri": page_uri(page),
        })  # fmt: skip

    def _resource(self, form: dict[str, str]) -> dict[str, object]:
        sid = next(self._sids)
        now = formatdate(usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(_segments(form.get("Body", ""))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form.get("To"),
            "uri": f"{uri}.json",
        }


def _segments(body: str) -> int:
    """Segments as Twilio counts them, simplified: ASCII as GSM-7 (160 characters, 153
    per part of a longer one), anything else as UCS-2 (70, 67 per part)."""
    single, part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


__all__ = [
    "ACCOUNT_SID", "AUTH_TOKEN", "AnsweredCall", "CreatedCall", "FakeTwilioRest", "twilio_error",
]  # fmt: skip
