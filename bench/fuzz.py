"""Fuzz a running gateway through its public protocols: every HTTP route in the
app's router, the web chat, console and Media Stream websockets, and SMTP.

    .venv/bin/python bench/fuzz.py --seconds 40

Starts `gateway serve` in a subprocess on loopback (embedded defaults, SQLite,
plus a Twilio auth token with a local stand-in for Twilio's REST API, the phone
channel on a random-weight Whisper model, and the embedded SMTP server), adds a
console rep, then for `--seconds` sends bounded random and malformed input from
`--workers` tasks per kind:

- HTTP: each route of `create_app(...)`'s router (path parameters filled with
  random or hostile values) with random methods, bodies (random bytes, forms
  with bad bytes or charsets, truncated multipart, garbage gzip/deflate, deep or
  odd JSON, bodies over the size limit), Twilio forms correctly signed with
  random fields (so they reach the parsers behind the signature check), console
  API calls with a live session and its CSRF token; and raw malformed HTTP/1.1;
- websockets: random and malformed frames to `/webchat/ws`, `/console/ws` (with
  a session) and `/twilio/media` (signed upgrades; forged and real stream tokens);
- SMTP: sessions of random commands, odd addresses, long lines, malformed MIME,
  sessions cut off mid-DATA.

Meanwhile `/healthz` is polled every 50 ms on its own connection: the longest gap
between two answers is the worst event-loop stall (goal < 200 ms). Prints the
count of answers by status (5xx expected: 0), crashes (the process exited, or a
traceback in its log; expected: 0), websocket `internal` errors and 1011 closes,
SMTP reply codes, and the stall figures. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gzip
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures  # noqa: E402
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest  # noqa: E402

REP, REP_PASSWORD = "fuzzrep", "fuzz-password-0123456789"
SUPPORT = "support@example.com"
STALL_GOAL_MS = 200.0
WS_LIMIT = 64 * 1024  # every frame over this is over our sockets' size limits
DEFLATE_BOMB = zlib.compress(b"A" * 4 * 1024 * 1024)
# The /healthz poller runs in a process of its own, so that the fuzzer's own work
# never shows as a gateway stall. It prints the gaps between answers (ms) as JSON.
MONITOR = """
import asyncio, json, sys, time, aiohttp
async def main(url, seconds):
    gaps, latencies = [], []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        end = time.monotonic() + seconds
        last = time.monotonic()
        while time.monotonic() < end:
            asked = time.monotonic()
            try:
                async with session.get(url) as resp:
                    await resp.read()
            except Exception:
                pass
            now = time.monotonic()
            gaps.append((now - last) * 1000)
            latencies.append((now - asked) * 1000)
            last = now
            await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - asked)))
    print(json.dumps({"gaps": gaps, "latencies": latencies}))
asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""
Counter = collections.Counter[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- random input

HOSTILE = [
    "",
    "0",
    "-1",
    "9" * 40,
    "..",
    "%2e%2e",
    "a" * 300,
    "\u00e9\u4e2d",
    "%00",
    "%ff%fe",
    "CA" + "0" * 32,
    "SM" + "f" * 32,
    "null",
    "{x}",
    "'; DROP TABLE x;--",
    "\ud7ff",
]
TWILIO_FIELDS = [
    "AccountSid",
    "CallSid",
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "MediaUrl1",
    "CallStatus",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "Digits",
    "StatusCallbackEvent",
    "ConferenceSid",
    "SequenceNumber",
    "Direction",
    "ApiVersion",
]


def rand_text(rng: random.Random, limit: int = 200) -> str:
    alphabet = rng.choice(["ascii", "unicode", "digits", "control"])
    n = rng.randint(0, limit)
    if alphabet == "digits":
        return "".join(rng.choice("0123456789") for _ in range(n))
    if alphabet == "control":
        return "".join(chr(rng.randint(0, 31)) for _ in range(n))
    if alphabet == "unicode":
        return "".join(
            chr(rng.choice([rng.randint(32, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))
            for _ in range(n)
        )
    return "".join(chr(rng.randint(32, 126)) for _ in range(n))


def rand_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**64), 10**30, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([1.5, -0.0, 1e308])
    if kind in (4, 5):
        return rng.choice([rand_text(rng), rng.choice(HOSTILE)])
    if kind in (6, 7):
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "type",
        "text",
        "client_id",
        "last_seq",
        "status",
        "queue",
        "rep_id",
        "note",
        "disposition",
        "approve",
        "username",
        "password",
        "after",
        "active",
        "user",
    ]
    return {rng.choice(keys): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def odd_json(rng: random.Random) -> str:
    choice = rng.randint(0, 5)
    if choice == 0:
        return "[" * rng.randint(100, 5000)
    if choice == 1:
        return '{"last_seq": ' + "9" * rng.randint(4000, 6000) + "}"
    if choice == 2:
        return '{"text": "\\ud800", "type": "message", "client_id": "a"}'
    if choice == 3:
        return json.dumps(rand_value(rng))[: rng.randint(0, 400)]  # truncated
    return json.dumps(rand_value(rng))


def body_for(rng: random.Random) -> tuple[dict[str, str], bytes]:
    """(headers, body) of one random, often malformed, request body."""
    form = "application/x-www-form-urlencoded"
    kind = rng.randint(0, 11)
    if kind == 0:
        return {}, b""
    if kind == 1:
        return {
            "Content-Type": rng.choice([form, "application/json", "text/plain", "x/y"])
        }, rng.randbytes(rng.randint(1, 4096))
    if kind == 2:
        return {"Content-Type": form}, b"Body=" + rng.randbytes(rng.randint(1, 300))
    if kind == 3:
        charset = rng.choice(["bogus", "utf-16", "rot13", "utf-7", "latin-1", "idna", ""])
        return {"Content-Type": f"{form}; charset={charset}"}, "Body=h\u00e9".encode()
    if kind == 4:
        head = b'--b\r\nContent-Disposition: form-data; name="Body"\r\n\r\n'
        return {"Content-Type": "multipart/form-data; boundary=b"}, head + rng.randbytes(20)
    if kind == 5:
        enc = rng.choice(["gzip", "deflate", "br", "zstd", "x-bogus"])
        return {"Content-Type": form, "Content-Encoding": enc}, rng.randbytes(rng.randint(0, 300))
    if kind == 6:  # a real gzip of junk JSON: decodes, then fails later
        return {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(
            odd_json(rng).encode()
        )
    if kind == 7:
        return {"Content-Type": "application/json"}, odd_json(rng).encode("utf-8", "surrogatepass")
    if kind == 8:
        return {"Content-Type": form}, b"x" * rng.choice([1024 * 1024 + 1, 3 * 1024 * 1024])
    if kind == 9:  # 4 KiB that inflate to 4 MiB: over the size limit once decoded
        return {"Content-Type": form, "Content-Encoding": "deflate"}, DEFLATE_BOMB
    fields = {rng.choice(TWILIO_FIELDS): rand_text(rng, 60) for _ in range(rng.randint(0, 8))}
    return {"Content-Type": form}, "&".join(f"{k}={v}" for k, v in fields.items()).encode(
        "utf-8", "surrogatepass"
    )


def twilio_form(rng: random.Random) -> dict[str, str]:
    """A plausible Twilio webhook with random parts (to be signed properly)."""
    sid = rng.choice(["SM", "MM", "CA", "XX"]) + secrets.token_hex(16)
    form = {
        "AccountSid": rng.choice([ACCOUNT_SID, "AC" + secrets.token_hex(16), ""]),
        "MessageSid": sid,
        "SmsSid": sid,
        "CallSid": rng.choice([sid, "CA" + secrets.token_hex(16)]),
        "From": rng.choice(
            ["+15551234567", "+1555" + str(rng.randint(0, 10**7)), "anonymous", rand_text(rng, 30)]
        ),
        "To": "+15557654321",
        "Body": rand_text(rng, 300),
        "NumMedia": rng.choice(["0", "1", "2", "11", "-1", "x", ""]),
        "CallStatus": rng.choice(["ringing", "completed", "in-progress", "bogus"]),
        "MessageStatus": rng.choice(["delivered", "failed", "received", "zzz"]),
        "Digits": rng.choice(["1", "2", "", "#"]),
        "StatusCallbackEvent": rng.choice(["participant-leave", "conference-end", "x"]),
    }
    for _ in range(rng.randint(0, 3)):
        form.pop(rng.choice(list(form)), None)
    if rng.random() < 0.3:
        form["MediaUrl0"] = rng.choice(["https://example.com/a.png", "javascript:x", ""])
    return {k: v.encode("utf-8", "replace").decode() for k, v in form.items()}


# ------------------------------------------------------------------ the runner


class Fuzz:
    def __init__(
        self, base: str, smtp_port: int, routes: list[tuple[str, str]], seed: int, deadline: float
    ) -> None:
        self.base = base
        self.smtp_port = smtp_port
        self.routes = routes
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.signatures = TwilioSignatures(AUTH_TOKEN, base, "ws" + base.removeprefix("http"))
        self.http: Counter = collections.Counter()
        self.ws: Counter = collections.Counter()
        self.smtp: Counter = collections.Counter()
        self.faults: list[str] = []
        self.csrf = ""
        self.cookies: dict[str, str] = {}

    def over(self) -> bool:
        return time.monotonic() > self.deadline

    def fill(self, canonical: str, rng: random.Random, *, safe: bool) -> str:
        def value(_: re.Match[str]) -> str:
            if safe:
                return rng.choice(["1", "7", secrets.token_hex(8)])
            return rng.choice([*HOSTILE, str(rng.randint(-5, 10**6)), rand_text(rng, 30)])

        path = re.sub(r"\{[^}]+\}", value, canonical)
        if safe:
            return path
        return "/".join(urllib.parse.quote(part, safe="%") for part in path.split("/"))

    async def login(self, session: aiohttp.ClientSession) -> None:
        body = {"username": REP, "password": REP_PASSWORD}
        async with session.post(self.base + "/console/login", json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"console login: {resp.status} {await resp.text()}")
            self.csrf = (await resp.json())["csrf"]
            self.cookies = {k: v.value for k, v in resp.cookies.items()}

    # ------------------------------------------------------------------ HTTP

    async def http_worker(self, n: int) -> None:
        rng = random.Random(self.rng.random())
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            while not self.over():
                method, canonical = rng.choice(self.routes)
                if rng.random() < 0.15:
                    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
                mode = rng.choice(["raw", "raw", "signed", "console"])
                safe = mode == "signed" or rng.random() < 0.5
                path = self.fill(canonical, rng, safe=safe)
                headers: dict[str, str] = {}
                body: bytes = b""
                cookies: dict[str, str] = {}
                if mode == "signed" and canonical.startswith("/twilio"):
                    form = twilio_form(rng)
                    body = urllib.parse.urlencode(form).encode()
                    headers = {
                        "Content-Type": "application/x-www-form-urlencoded",
                        SIGNATURE_HEADER: self.signatures.sign(self.base + path, form),
                    }
                    if method == "GET":
                        headers[SIGNATURE_HEADER] = self.signatures.sign(self.base + path)
                elif (
                    mode == "console"
                    and canonical.startswith("/console")
                    and not canonical.endswith("/logout")
                ):
                    cookies = self.cookies
                    headers = {"X-CSRF-Token": self.csrf, "Content-Type": "application/json"}
                    body = (
                        json.dumps(rand_value(rng)).encode()
                        if rng.random() < 0.7
                        else odd_json(rng).encode("utf-8", "surrogatepass")
                    )
                else:
                    headers, body = body_for(rng)
                await self.send(session, method, path, headers, body, cookies)

    async def send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        cookies: dict[str, str],
    ) -> None:
        try:
            async with session.request(
                method, self.base + path, data=body or None, headers=headers, cookies=cookies
            ) as resp:
                await resp.read()
                self.http[str(resp.status)] += 1
                if resp.status >= 500 and resp.status != 503:
                    self.faults.append(f"HTTP {resp.status} {method} {path[:80]} {headers}")
                elif resp.status == 503:
                    self.faults.append(f"HTTP 503 {method} {path[:80]}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.http[f"conn:{type(exc).__name__}"] += 1
        except ValueError as exc:  # the client refused to send it (a bad URL or header)
            self.http[f"client:{type(exc).__name__}"] += 1

    async def raw_http_worker(self, n: int) -> None:
        rng = random.Random(self.rng.random())
        host, port = "127.0.0.1", int(self.base.rsplit(":", 1)[1])
        while not self.over():
            path = rng.choice(self.routes)[1].replace("{", "").replace("}", "")
            raw = rng.choice(
                [
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort".encode(),
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "zz\r\nab\r\n".encode(),
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 20000}\r\n\r\n".encode(),
                    f"GET {path}?{'a=1&' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                    + rng.randbytes(200),  # TLS hello
                    f"BREW {path} HTCPCP/1.0\r\n\r\n".encode(),
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: bad\r\n\r\n".encode(),
                    rng.randbytes(rng.randint(1, 2000)),
                ]
            )
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
                writer.write(raw)
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 5)
                status = line.split(b" ")[1].decode("ascii", "replace") if b" " in line else "none"
                self.http[f"raw:{status}"] += 1
                if status.startswith("5"):
                    self.faults.append(f"raw HTTP {status} for {raw[:60]!r}")
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            except (TimeoutError, OSError) as exc:
                self.http[f"raw:{type(exc).__name__}"] += 1

    # ------------------------------------------------------------- websockets

    async def ws_session(
        self,
        session: aiohttp.ClientSession,
        url: str,
        frames: list[Any],
        headers: dict[str, str] | None = None,
        label: str = "",
    ) -> None:
        try:
            async with session.ws_connect(
                url, headers=headers, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2)
            ) as ws:
                for frame in frames:
                    if isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                    else:
                        await ws.send_str(frame)
                    with contextlib.suppress(asyncio.TimeoutError):
                        msg = await ws.receive(timeout=0.05)
                        self.ws_message(label, msg)
                    if ws.closed or len(frame) > WS_LIMIT:
                        # Over the server's limit the socket is closed (1009): sending
                        # more would race that close and read as an abrupt one (1006).
                        break
                with contextlib.suppress(asyncio.TimeoutError):
                    while not ws.closed:
                        self.ws_message(label, await ws.receive(timeout=0.2))
                # A receive timeout sets close_code 1006 on an open socket: only a
                # socket the server closed has a close code of the server's.
                code = ws.close_code if ws.closed else "open"
                self.ws[f"{label}:closed:{code}"] += 1
                if code in (1006, 1011):  # abrupt, or an internal error
                    sent = [repr(f[:40]) for f in frames]
                    self.faults.append(f"{label}: the server closed with {code} after {sent}")
        except aiohttp.WSServerHandshakeError as exc:
            self.ws[f"{label}:handshake:{exc.status}"] += 1
            if exc.status >= 500 and exc.status != 503:
                self.faults.append(f"{label}: handshake {exc.status}")
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            self.ws[f"{label}:conn:{type(exc).__name__}"] += 1

    def ws_message(self, label: str, msg: aiohttp.WSMessage) -> None:
        if msg.type is aiohttp.WSMsgType.TEXT:
            self.ws[f"{label}:frames"] += 1
            if '"internal"' in msg.data:
                self.faults.append(f"{label}: internal error frame {msg.data[:200]}")

    def chat_frames(self, rng: random.Random) -> list[Any]:
        frames: list[Any] = []
        if rng.random() < 0.7:
            frames.append(json.dumps({"type": "hello", "last_seq": rng.choice([None, 0, 5])}))
        for _ in range(rng.randint(1, 12)):
            pick = rng.randint(0, 6)
            if pick == 0:
                frames.append(rng.randbytes(rng.randint(1, 100)))
            elif pick == 1:
                frames.append(odd_json(rng))
            elif pick == 2:
                frames.append(rand_text(rng, 300))
            elif pick == 3:
                frames.append("x" * rng.choice([17000, 70000]))
            else:
                frame = rand_value(rng)
                if isinstance(frame, dict):
                    frame["type"] = rng.choice(["hello", "message", "typing", "ping", "x"])
                frames.append(json.dumps(frame))
        return frames

    async def ws_worker(self, n: int) -> None:
        rng = random.Random(self.rng.random())
        wsb = "ws" + self.base.removeprefix("http")
        async with aiohttp.ClientSession() as session:
            while not self.over():
                kind = rng.choice(["chat", "chat", "console", "media"])
                if kind == "chat":
                    await self.ws_session(
                        session, wsb + "/webchat/ws", self.chat_frames(rng), label="webchat"
                    )
                elif kind == "console":
                    after = rng.choice(["0", "-1", "x", "9" * 30, ""])
                    cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
                    headers = {"Cookie": cookie} if rng.random() < 0.8 else {}
                    await self.ws_session(
                        session,
                        f"{wsb}/console/ws?after={after}",
                        self.chat_frames(rng),
                        headers,
                        label="console",
                    )
                else:
                    await self.media_session(session, rng, wsb)

    async def media_session(
        self, session: aiohttp.ClientSession, rng: random.Random, wsb: str
    ) -> None:
        url = wsb + "/twilio/media"
        headers = {SIGNATURE_HEADER: self.signatures.sign(url)}
        call = "CA" + secrets.token_hex(16)
        params: dict[str, Any] = {"callSid": call, "from": "+15551234567"}
        if rng.random() < 0.3:  # a real token from a signed voice webhook
            form = {
                "CallSid": call,
                "AccountSid": ACCOUNT_SID,
                "From": "+1555000" + str(rng.randint(1000, 9999)),
                "To": "+15557654321",
                "CallStatus": "ringing",
            }
            sig = {SIGNATURE_HEADER: self.signatures.sign(self.base + "/twilio/voice", form)}
            async with session.post(self.base + "/twilio/voice", data=form, headers=sig) as resp:
                twiml = await resp.text()
            found = re.search(r'name="token" value="([^"]+)"', twiml)
            if found:
                params["token"] = found.group(1)
        elif rng.random() < 0.5:
            params["token"] = rand_text(rng, 80)
        stream = "MZ" + secrets.token_hex(16)
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream,
            "start": {
                "accountSid": ACCOUNT_SID,
                "streamSid": stream,
                "callSid": call,
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {
                    "encoding": rng.choice(["audio/x-mulaw", "x"]),
                    "sampleRate": 8000,
                    "channels": 1,
                },
            },
        }
        frames: list[Any] = [
            json.dumps({"event": "connected", "protocol": "Call"}),
            json.dumps(start),
        ]
        for seq in range(2, rng.randint(3, 30)):
            pick = rng.randint(0, 4)
            if pick == 0:
                frames.append(json.dumps(rand_value(rng)))
            elif pick == 1:
                frames.append(rng.randbytes(30))
            else:
                payload = rng.choice(["/w==", "%%%", "A" * 12000, ""])
                frames.append(
                    json.dumps(
                        {
                            "event": rng.choice(["media", "dtmf", "mark", "stop"]),
                            "sequenceNumber": str(seq),
                            "streamSid": stream,
                            "media": {
                                "track": "inbound",
                                "chunk": str(seq),
                                "timestamp": "1",
                                "payload": payload,
                            },
                            "dtmf": {"digit": rng.choice(["1", "x", ""])},
                            "mark": {"name": rand_text(rng, 20)},
                        }
                    )
                )
        if rng.random() < 0.2:
            headers = {SIGNATURE_HEADER: "bm9wZQ=="}
        await self.ws_session(session, url, frames, headers, label="media")

    # ------------------------------------------------------------------- SMTP

    async def smtp_worker(self, n: int) -> None:
        rng = random.Random(self.rng.random())
        while not self.over():
            try:
                await asyncio.wait_for(self.smtp_session(rng), 20)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                self.smtp[f"conn:{type(exc).__name__}"] += 1

    async def smtp_session(self, rng: random.Random) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.smtp_port)

        async def reply() -> str:
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if not line:
                    raise asyncio.IncompleteReadError(b"", None)
                if line[3:4] != b"-":
                    code = line[:3].decode("ascii", "replace")
                    self.smtp[code] += 1
                    return code

        async def cmd(line: bytes) -> str:
            writer.write(line + b"\r\n")
            await writer.drain()
            return await reply()

        try:
            await reply()  # greeting
            await cmd(rng.choice([b"EHLO fuzz.example", b"HELO x", b"EHLO " + b"a" * 600, b""]))
            for _ in range(rng.randint(0, 3)):
                await cmd(
                    rng.choice(
                        [
                            b"NOOP",
                            b"RSET",
                            b"VRFY root",
                            b"HELP",
                            b"\xff\xfe",
                            rand_text(rng, 80).encode("utf-8", "surrogatepass"),
                            b"MAIL FROM:<" + b"x" * 2000 + b">",
                        ]
                    )
                )
            sender = rng.choice(
                [
                    "<jane@example.com>",
                    "<>",
                    "<" + "a" * 400 + "@example.com>",
                    "<bad address>",
                    "jane@example.com",
                    "<a@b@c>",
                    "<\u00e9@example.com> SMTPUTF8",
                ]
            )
            if (await cmd(b"MAIL FROM:" + sender.encode())).startswith("2"):
                rcpt = rng.choice(
                    [f"<{SUPPORT}>", "<other@elsewhere.example>", "<>", f"<{SUPPORT}"]
                )
                accepted = (await cmd(b"RCPT TO:" + rcpt.encode())).startswith("2")
                if accepted and (await cmd(b"DATA")) == "354":
                    writer.write(self.mime(rng))
                    if rng.random() < 0.15:
                        writer.close()  # cut off mid-DATA
                        return
                    writer.write(b"\r\n.\r\n")
                    await writer.drain()
                    await reply()
            await cmd(b"QUIT")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def mime(self, rng: random.Random) -> bytes:
        subject = rng.choice(
            ["hi", "Re: order 1001", "=?utf-8?b?!!!?=", "=?bogus?q?x?=", "a" * 3000]
        )
        ctype = rng.choice(
            [
                "text/plain",
                "text/html",
                "text/plain; charset=bogus",
                "multipart/mixed; boundary=zz",
                "multipart/alternative",
                "message/rfc822",
                'application/octet-stream; name="x"',
            ]
        )
        head = (
            f"From: {rng.choice(['Jane <jane@example.com>', 'bad', '<>', 'a@b'])}\r\n"
            f"To: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{secrets.token_hex(8)}@fz>\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Transfer-Encoding: {rng.choice(['7bit', 'base64', 'qUoted-printable'])}\r\n"
        )
        if rng.random() < 0.3:
            references = "<a@b> " * rng.randint(0, 300)
            head += f"In-Reply-To: <{rand_text(rng, 40)}>\r\nReferences: {references}\r\n"
        pick = rng.randint(0, 5)
        if pick == 0:
            body = rng.randbytes(rng.randint(0, 3000)).replace(b"\r\n.", b"\r\n..")
        elif pick == 1:
            depth = rng.randint(5, 60)  # deep nesting, bounded (1,000 deep is known: see report)
            body = (
                "".join(
                    f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n"
                    for i in range(depth)
                ).encode()
                + b"x\r\n"
            )
        elif pick == 2:
            body = ("<div>" * rng.randint(10, 3000) + "hello").encode()
        elif pick == 3:
            body = ("line " * rng.randint(300, 1200)).encode()  # one long line
        else:
            body = rand_text(rng, 1500).encode("utf-8", "surrogatepass")
        data = head.encode("utf-8", "surrogatepass") + b"\r\n" + body
        return re.sub(rb"(^|\r\n)\.", rb"\1..", data)

    # ------------------------------------------------------------- the stalls


# ------------------------------------------------------------------ set-up


def gateway_env(
    data: Path, port: int, smtp_port: int, api_url: str, model: Path | None
) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_SECRET_KEY": "fuzz-secret-0123456789abcdef",
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": api_url,
        "GATEWAY_EMAIL_ADDRESS": SUPPORT,
        "GATEWAY_EMAIL_LISTEN": f"127.0.0.1:{smtp_port}",
    }
    for key in ("GATEWAY_LLM_BASE_URL", "GATEWAY_DATABASE_URL", "GATEWAY_REDIS_URL"):
        env.pop(key, None)
    if model is not None:
        env["GATEWAY_STT_MODEL"] = str(model)
        env["GATEWAY_STT_WORKERS"] = "1"
        env["GATEWAY_STT_CPU_THREADS"] = "1"
    return env


def router_routes(env: dict[str, str]) -> list[tuple[str, str]]:
    """(method, path template) of every route in the app's router, read in a child
    process with the gateway's own settings (nothing is started)."""
    code = (
        "import json; from gateway.app import create_app; from gateway.settings import "
        "load_settings; app = create_app(load_settings()); print(json.dumps(sorted({(r.method, "
        "r.resource.canonical) for r in app.router.routes() if r.method != 'HEAD'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [(m, p) for m, p in json.loads(out.strip().splitlines()[-1])]


def start_gateway(
    env: dict[str, str], work: Path
) -> tuple[list[tuple[str, str]], subprocess.Popen[bytes], Path]:
    """Add the console rep, read the routes, start `gateway serve` (log to a file)."""
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "reps", "add", REP, "--password-stdin"],
        env=env,
        cwd=ROOT,
        input=(REP_PASSWORD + "\n").encode(),
        check=True,
        capture_output=True,
    )
    routes = router_routes(env)
    log_path = work / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return routes, proc, log_path


async def wait_up(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the gateway exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError("the gateway did not come up")


async def run(args: argparse.Namespace, work: Path) -> int:
    twilio = FakeTwilioRest()
    api_url = await twilio.start()
    model = None
    if not args.no_phone:
        from tests.support.whisper_model import build_random_whisper

        model = await asyncio.to_thread(build_random_whisper, work / "whisper", "tiny.en")
    port, smtp_port = free_port(), free_port()
    env = gateway_env(work / "data", port, smtp_port, api_url, model)
    if args.debug_loop:  # asyncio logs every callback that holds the loop over 100 ms
        env["PYTHONASYNCIODEBUG"] = "1"
    routes, proc, log_path = await asyncio.to_thread(start_gateway, env, work)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base, proc)
        fuzz = Fuzz(base, smtp_port, routes, args.seed, time.monotonic() + args.seconds)
        async with aiohttp.ClientSession() as session:
            await fuzz.login(session)
        monitor = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MONITOR,
            base + "/healthz",
            str(args.seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        if args.priority:
            # On a shared machine the other processes' load shows as "stalls" that
            # are the scheduler's, not the event loop's: the gateway and the poller
            # go first, so what remains is the gateway's own blocking.
            for pid in (proc.pid, monitor.pid):
                os.setpriority(os.PRIO_PROCESS, pid, -10)
        workers: list[Callable[[int], Awaitable[None]]] = [
            fuzz.http_worker,
            fuzz.raw_http_worker,
            fuzz.ws_worker,
            fuzz.smtp_worker,
        ]
        tasks = [asyncio.create_task(w(i)) for w in workers for i in range(args.workers)]
        tasks.append(asyncio.create_task(asyncio.sleep(args.seconds)))  # --workers 0: baseline
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        polled = json.loads((await monitor.communicate())[0])
        gaps, latencies = polled["gaps"], polled["latencies"]
        alive = proc.poll() is None
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        if proc.poll() is None:
            proc.kill()
        await twilio.close()
    text = log_path.read_text(errors="replace")
    # Errors of ours: tracebacks, and ERROR/CRITICAL lines (aiohttp's own 400s for
    # unparseable requests are INFO lines there: gateway/http_input.py).
    errors = r"(?m)^(Traceback.*|\S+ \S+ (ERROR|CRITICAL) .*)$"
    tracebacks = [m.group(0) for m in re.finditer(errors, text)]
    return report(fuzz, routes, gaps, latencies, elapsed, alive, tracebacks, text)


def report(
    fuzz: Fuzz,
    routes: list[tuple[str, str]],
    gaps: list[float],
    latencies: list[float],
    elapsed: float,
    alive: bool,
    tracebacks: list[str],
    log: str,
) -> int:
    five = sum(n for s, n in fuzz.http.items() if s.isdigit() and s.startswith("5"))
    raw5 = sum(n for s, n in fuzz.http.items() if s.startswith("raw:5"))
    worst = max(gaps, default=0.0)
    over = sum(g > STALL_GOAL_MS for g in gaps)
    p99 = sorted(gaps)[int(len(gaps) * 0.99)] if gaps else 0.0
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"fuzz: {elapsed:.0f} s against {len(routes)} routes, loopback only;"
        f" {os.cpu_count()} CPUs, load average now {load}"
    )
    print(f"HTTP requests: {sum(fuzz.http.values())}  by status: {dict(sorted(fuzz.http.items()))}")
    print(f"websocket sessions: {dict(sorted(fuzz.ws.items()))}")
    print(f"SMTP replies: {dict(sorted(fuzz.smtp.items()))}")
    print(f"5xx answers: {five + raw5} (a 503 of a channel that is off would count)")
    print(f"faults: {len(fuzz.faults)}")
    for fault in sorted(set(fuzz.faults))[:30]:
        print("   ", fault[:300])
    print(f"crashes: {0 if alive else 'the gateway exited!'}; errors logged: {len(tracebacks)}")
    for line in sorted(set(tracebacks))[:20]:
        print("   ", line[:200])
    if tracebacks:
        first = log.find("Traceback")
        print(log[first : first + 3000] if first >= 0 else "")
    print(
        f"/healthz every 50 ms: {len(gaps)} answers, max gap {worst:.0f} ms (goal <"
        f" {STALL_GOAL_MS:.0f}), p99 gap {p99:.0f} ms, gaps over goal {over},"
        f" max latency {max(latencies, default=0.0):.0f} ms"
    )
    ok = alive and not tracebacks and five + raw5 == 0 and not fuzz.faults and worst < STALL_GOAL_MS
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="tasks per kind (HTTP, raw, ws, SMTP); 0: only poll /healthz (the machine's baseline)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-phone", action="store_true", help="no speech model: phone channel off"
    )
    parser.add_argument(
        "--debug-loop",
        action="store_true",
        help="run the gateway in asyncio debug mode: slow callbacks are logged",
    )
    parser.add_argument(
        "--priority",
        action="store_true",
        help="raise the gateway's and the poller's CPU priority (root): on a busy machine"
        " the stall figures then measure the gateway's loop, not the other processes",
    )
    parser.add_argument("--keep", type=Path, help="keep the gateway's data and log here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run(args, args.keep))
    with tempfile.TemporaryDirectory(prefix="gw-fuzz-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
