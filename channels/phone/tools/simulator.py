"""The Twilio side of a phone call, for `gateway simulate-call` and the tests.

`TwilioSimulator` does what Twilio does for one inbound call: it posts the
signed voice webhook, opens the Media Stream the TwiML names (the upgrade
signed too), sends `connected` and `start`, then streams the caller's audio
in real time (20 ms μ-law frames, silence when the caller is quiet), keys as
`dtmf`, and finally `stop`. What the gateway sends back is "played" on a
real-time playback clock: `mark`s are echoed once the audio queued before
them has played, and `clear` drops the queued audio and echoes the pending
marks at once. Everything received is kept with its arrival time.

`TwilioApiStandIn` answers the REST requests a simulated call needs: completing
a call (`POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json`, `Status=completed`),
as Twilio does: the call ends (its stream stops); an unknown call is a 404
with Twilio's error 20404. It also takes the outbound calls the gateway places
(`POST .../Calls.json`), queued in `placed`, which `answer` then picks up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from channels.speech.audio import FRAME_BYTES, MULAW_RATE, MULAW_SILENCE, split_frames
from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures
from gateway.errors import ConfigError

FRAME_S = 0.02


@dataclass
class Received:
    """What the gateway sent on the stream, with loop-clock arrival times."""

    media: list[tuple[float, float, bytes]] = field(default_factory=list)  # (at, plays at, audio)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (echoed at, name)
    clears: list[float] = field(default_factory=list)
    closed_at: float | None = None


class TwilioSimulator:
    """One simulated inbound call; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        signatures: TwilioSignatures,
        *,
        call_sid: str = "CA" + "0" * 32,
        account_sid: str = "AC" + "0" * 32,
        caller: str = "+15551234567",
        called: str = "+15550001234",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signatures = signatures
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.caller = caller
        self.called = called
        self.stream_sid = "MZ" + call_sid[2:]
        self.received = Received()
        self.unavailable: str | None = None  # the <Say> text when the line is off
        self.voicemail: bytes | None = None  # an outbound call a machine took: what it heard
        self._ws: ClientConnection | None = None
        self._loop = asyncio.get_running_loop()
        self._mic: list[bytes] = []
        self._sent_frames = 0
        self._sequence = 0
        self._play_until = 0.0
        self._pending: list[tuple[str, asyncio.TimerHandle]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._tick = asyncio.Event()  # set on every frame sent and message received
        self.started_at = 0.0

    # -------------------------------------------------------------- dialing

    async def dial(self) -> tuple[str, dict[str, str]] | None:
        """Post the signed voice webhook; the stream URL and its parameters, or None when
        the gateway answered with an apology (`unavailable`)."""
        params = {
            "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.caller,
            "To": self.called, "CallStatus": "ringing", "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }  # fmt: skip
        twiml = await self.post("/twilio/voice", params)
        root = ET.fromstring(twiml)
        stream = root.find("./Connect/Stream")
        if stream is None:
            self.unavailable = " ".join(s.text or "" for s in root.iter("Say")) or twiml
            return None
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), parameters

    async def answer(self, url: str, answered_by: str = "human") -> str:
        """Pick up an outbound call the gateway placed: post its signed answer webhook
        (`url`, the call's public `Url`) with what machine detection found; the TwiML."""
        params = {
            "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.called,
            "To": self.caller, "CallStatus": "in-progress", "Direction": "outbound-api",
            "AnsweredBy": answered_by, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        return await self.post(url.removeprefix(self.signatures.public_url), params)

    async def post(self, path: str, params: dict[str, str]) -> str:
        """A signed form POST, as Twilio sends webhooks; raises on a non-2xx answer."""
        url = self.signatures.public_url + path
        headers = {SIGNATURE_HEADER: self.signatures.sign(url, params)}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.base_url + path, data=params, headers=headers) as response,
        ):
            response.raise_for_status()
            return await response.text()

    async def get_json(self, path: str) -> Any:
        """A signed GET of one of the gateway's JSON resources."""
        url = self.signatures.public_url + path
        headers = {SIGNATURE_HEADER: self.signatures.sign(url)}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base_url + path, headers=headers) as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def connect(self, stream_url: str, parameters: dict[str, str]) -> None:
        """Open the Media Stream and start it (`connected`, `start`), then stream audio."""
        path = "/" + stream_url.split("://", 1)[-1].split("/", 1)[-1]
        ws_base = "ws" + self.base_url.removeprefix("http")
        headers = {SIGNATURE_HEADER: self.signatures.sign(stream_url)}
        self._ws = await connect(
            ws_base + path, additional_headers=headers, compression=None, proxy=None
        )
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.started_at = self._loop.time()
        await self.send_event("start", {
            "accountSid": self.account_sid, "streamSid": self.stream_sid,
            "callSid": self.call_sid, "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": MULAW_RATE, "channels": 1},
        })  # fmt: skip
        self._tasks = [asyncio.create_task(self._microphone()), asyncio.create_task(self._ear())]

    async def start_call(self) -> bool:
        """`dial` then `connect`; False when the line is unavailable."""
        answer = await self.dial()
        if answer is None:
            return False
        await self.connect(*answer)
        return True

    # -------------------------------------------------------------- sending

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(message))

    async def send_raw(self, raw: str | bytes) -> None:
        assert self._ws is not None, "connect first"
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(raw)

    async def send_event(self, event: str, body: dict[str, Any]) -> None:
        """A Twilio message with the next sequence number."""
        self._sequence += 1
        message = {"event": event, "sequenceNumber": str(self._sequence), event: body,
                   "streamSid": self.stream_sid}  # fmt: skip
        await self.send(message)

    async def say(self, mulaw: bytes) -> tuple[float, float]:
        """Speak 8 kHz μ-law audio into the call; returns when the last frame has been sent,
        with the loop times its first and last frames went out."""
        first = self._sent_frames + len(self._mic)
        self._mic.extend(split_frames(mulaw))
        last = first + max(0, len(split_frames(mulaw)) - 1)
        await self.until(lambda: self._sent_frames > last or self.closed)
        return self.frame_time(first), self.frame_time(last)

    def frame_time(self, index: int) -> float:
        """The loop time frame `index` of the caller's audio is (or was) sent at."""
        return self.started_at + index * FRAME_S

    async def press(self, keys: str, gap_s: float = 0.15) -> float:
        """Press keys, as `dtmf` messages; returns the loop time the last one was sent."""
        sent = self._loop.time()
        for index, key in enumerate(keys):
            if index:
                await asyncio.sleep(gap_s)
            await self.send_event("dtmf", {"track": "inbound_track", "digit": key})
            sent = self._loop.time()
        return sent

    async def hang_up(self) -> None:
        """The caller hangs up: `stop`, then the socket closes."""
        if self.closed:
            return
        await self.send_event("stop", {"accountSid": self.account_sid, "callSid": self.call_sid})
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self.received.closed_at is None:
            self.received.closed_at = self._loop.time()

    @property
    def closed(self) -> bool:
        return self.received.closed_at is not None

    async def _microphone(self) -> None:
        """20 ms frames on a fixed schedule: the caller's audio, or silence."""
        silence = bytes([MULAW_SILENCE]) * FRAME_BYTES
        while True:
            due = self.frame_time(self._sent_frames)
            await asyncio.sleep(max(0.0, due - self._loop.time()))
            frame = self._mic.pop(0) if self._mic else silence
            self._sent_frames += 1
            self._tick.set()
            await self.send_event("media", {
                "track": "inbound", "chunk": str(self._sent_frames),
                "timestamp": str(round((due - self.started_at) * 1000)),
                "payload": base64.b64encode(frame).decode("ascii"),
            })  # fmt: skip

    # ------------------------------------------------------------ receiving

    async def _ear(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self._on_message(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.received.closed_at = self._loop.time()
            self._tick.set()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    def _on_message(self, message: dict[str, Any]) -> None:
        self._tick.set()
        now = self._loop.time()
        event = message.get("event")
        if event == "media":
            audio = base64.b64decode(message["media"]["payload"])
            starts = max(now, self._play_until)
            self._play_until = starts + len(audio) / MULAW_RATE
            self.received.media.append((now, starts, audio))
        elif event == "mark":
            name = message["mark"]["name"]
            handle = self._loop.call_at(self._play_until, self._echo_due)
            self._pending.append((name, handle))
        elif event == "clear":
            self.received.clears.append(now)
            self.received.media = [m for m in self.received.media if m[1] <= now]
            self._play_until = now
            for _, handle in self._pending:
                handle.cancel()
            self._echo([name for name, _ in self._pending])

    def _echo_due(self) -> None:
        now = self._loop.time()
        due = [name for name, handle in self._pending if handle.when() <= now]
        self._echo(due)

    def _echo(self, names: list[str]) -> None:
        self._pending = [(n, h) for n, h in self._pending if n not in names]
        for name in names:
            self.received.marks.append((self._loop.time(), name))
            task = asyncio.ensure_future(self.send_event("mark", {"name": name}))
            self._tasks.append(task)

    # ------------------------------------------------------------- waiting

    @property
    def playing(self) -> bool:
        """Whether audio is still playing or a mark is still pending."""
        return bool(self._pending) or self._play_until > self._loop.time()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds, checked on every frame and message (20 ms or
        sooner). Bound it with `asyncio.timeout`."""
        while not predicate():
            self._tick.clear()
            await self._tick.wait()

    async def wait_quiet(self, quiet_s: float = 0.8) -> None:
        """Until nothing has played for `quiet_s` (the agent has finished talking)."""

        def quiet() -> bool:
            last = self.received.media[-1][1] if self.received.media else self.started_at
            return self.closed or (not self.playing and self._loop.time() - last >= quiet_s)

        await self.until(quiet)

    def agent_audio(self) -> bytes:
        """Everything played to the caller, on the call's timeline (μ-law, silence between)."""
        end = max((m[1] + len(m[2]) / MULAW_RATE for m in self.received.media), default=0.0)
        total = max(0, round((end - self.started_at) * MULAW_RATE))
        timeline = bytearray([MULAW_SILENCE]) * total
        for _, starts, audio in self.received.media:
            at = round((starts - self.started_at) * MULAW_RATE)
            timeline[at : at + len(audio)] = audio[: max(0, total - at)]
        return bytes(timeline)


class TwilioApiStandIn:
    """Twilio's REST API for completing calls, on a local port (see module docstring)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.authorization = aiohttp.encode_basic_auth(account_sid, auth_token)
        self.calls: dict[str, TwilioSimulator] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.placed: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()  # created calls
        self._hangups: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:`port` (0: any); returns the base URL."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(f"--api-port {port}: cannot listen there: {exc}") from exc
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        """An outbound call the gateway places: queued in `placed` for the simulation."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        header = request.headers.get("Authorization", "")
        if request.match_info["account"] != self.account_sid or header != self.authorization:
            return _error(401, 20003, "Authenticate")
        if not form.get("To") or not form.get("From") or not form.get("Url"):
            return _error(400, 21205, "To, From and Url are required")
        sid = "CA" + secrets.token_hex(16)
        self.placed.put_nowait((sid, form))
        body = {"sid": sid, "account_sid": self.account_sid, "to": form["To"],
                "from": form["From"], "status": "queued"}  # fmt: skip
        return web.json_response(body, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        call_sid = request.match_info["call"]
        self.requests.append((call_sid, form))
        header = request.headers.get("Authorization", "")
        if request.match_info["account"] != self.account_sid or header != self.authorization:
            return _error(401, 20003, "Authenticate")
        call = self.calls.get(call_sid)
        if call is None or call.closed:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if form.get("Status") == "completed":  # Twilio then stops the call's stream
            self._hangups.add(task := asyncio.create_task(call.hang_up()))
            task.add_done_callback(self._hangups.discard)
        return web.json_response({"sid": call_sid, "account_sid": self.account_sid,
                                  "status": "completed"})  # fmt: skip


def _error(status: int, code: int, message: str) -> web.Response:
    more = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more, "status": status}
    return web.json_response(body, status=status)


__all__ = ["Received", "TwilioApiStandIn", "TwilioSimulator"]
