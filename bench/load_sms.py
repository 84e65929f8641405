"""SMS side of bench/channel_load.py: texters posting signed Twilio webhooks, and the
local Twilio REST stand-in that catches the gateway's answers.

A texter is one phone number in a closed loop: it posts an incoming-message webhook
(signed with twilio's RequestValidator for the gateway's public URL, as Twilio does),
then waits for the answer the gateway sends through the REST API to its number
before it texts again. Answers are told apart by their `To` number; per number the
count of answers is checked against the count of messages, so an answer sent twice
or never shows up however the timings fall. A share of messages is delivered again
with the same MessageSid (Twilio's retry): right after the acknowledgement, and for
half of them also once at the same time as the first delivery. None may be answered
again; the gateway must count each extra delivery as a duplicate.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from bench import chat_load
from tests.support.twilio_rest import API_VERSION, FakeTwilioRest

SMS_PATH = "/twilio/sms"
OUR_NUMBER = "+15557650000"


class CatchingTwilioRest(FakeTwilioRest):
    """The tests' Twilio REST stand-in, on a chosen port, timing every accepted message."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__(account_sid, auth_token)
        self.arrivals: defaultdict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)
        self.answers: defaultdict[str, int] = defaultdict(int)  # To -> messages accepted

    async def start_on(self, port: int) -> str:
        app = web.Application()
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create_message
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _create_message(self, request: web.Request) -> web.Response:
        response = await super()._create_message(request)
        if response.status == 201:
            to = self.messages[-1].get("To", "")
            self.answers[to] += 1
            self.arrivals[to].put_nowait(time.perf_counter())
        return response


@dataclass
class SmsRun:
    """What one level of texters did."""

    clients: int
    sent: dict[str, list[str]] = field(default_factory=dict)  # number -> MessageSids
    retries: int = 0  # deliveries beyond a message's first
    ack: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last: float = 0.0  # when the last answer arrived
    elapsed: float = 0.0  # from the start to the last answer


@dataclass(frozen=True)
class SmsTarget:
    url: str  # where to post (the gateway's address)
    public_url: str  # what the gateway believes Twilio calls (signed)
    account_sid: str
    auth_token: str


def inbound_form(target: SmsTarget, number: str, sid: str, body: str) -> dict[str, str]:
    return {
        "ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid,
        "SmsStatus": "received", "Body": body, "FromCountry": "US", "To": OUR_NUMBER,
        "NumSegments": "1", "MessageSid": sid, "AccountSid": target.account_sid,
        "From": number, "ApiVersion": API_VERSION,
    }  # fmt: skip


async def texter(
    session: aiohttp.ClientSession, target: SmsTarget, rest: CatchingTwilioRest, number: str,
    until: float, retry_share: float, timeout_s: float, run: SmsRun,
) -> None:  # fmt: skip
    validator = RequestValidator(target.auth_token)
    rng = random.Random()
    sids = run.sent.setdefault(number, [])
    arrivals = rest.arrivals[number]

    async def post(form: dict[str, str], headers: dict[str, str]) -> None:
        async with session.post(target.url + SMS_PATH, data=form, headers=headers) as resp:
            body = await resp.text()
            if resp.status != 200 or "<Response/>" not in body:
                run.errors.append(f"{number}: HTTP {resp.status} {body[:80]}")

    while time.perf_counter() < until:
        sid = "SM" + uuid.uuid4().hex
        form = inbound_form(target, number, sid, chat_load.message_text(rng))
        sig = validator.compute_signature(target.public_url + SMS_PATH, form)
        headers = {"X-Twilio-Signature": sig}
        retry = rng.random() < retry_share
        sids.append(sid)
        start = time.perf_counter()
        if retry and rng.random() < 0.5:  # a retry racing the first delivery
            run.retries += 1
            await asyncio.gather(post(form, headers), post(form, headers))
        else:
            await post(form, headers)
        run.ack.append(time.perf_counter() - start)
        if retry:  # a retry once the first delivery was acknowledged
            run.retries += 1
            await post(form, headers)
        try:
            async with asyncio.timeout(timeout_s):
                arrived = await arrivals.get()
        except TimeoutError:
            run.errors.append(f"{number}: no answer to {sid} within {timeout_s:.0f} s")
            return
        run.reply.append(arrived - start)
        run.last = max(run.last, arrived)


async def run_texters(
    target: SmsTarget, rest: CatchingTwilioRest, clients: int, seconds: float, level: int,
    retry_share: float, timeout_s: float,
) -> SmsRun:  # fmt: skip
    """`clients` texters (numbers +1555{level}{index}) texting for `seconds`."""
    run = SmsRun(clients=clients)
    numbers = [f"+1555{level:02d}{i:05d}" for i in range(clients)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        until = start + seconds
        results = await asyncio.gather(
            *(texter(session, target, rest, n, until, retry_share, timeout_s, run)
              for n in numbers),
            return_exceptions=True,
        )  # fmt: skip
        run.elapsed = (run.last or time.perf_counter()) - start
    run.errors += [f"texter failed: {r!r}" for r in results if isinstance(r, BaseException)]
    return run


def lost_and_doubled(run: SmsRun, rest: CatchingTwilioRest) -> tuple[int, int]:
    """(messages never answered, answers beyond one a message), counted per number."""
    lost = doubled = 0
    for number, sids in run.sent.items():
        got = rest.answers.get(number, 0)
        lost += max(0, len(sids) - got)
        doubled += max(0, got - len(sids))
    return lost, doubled
