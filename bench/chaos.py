"""Crashes under mixed load: nothing acknowledged is lost, nothing answered twice.

    .venv/bin/python bench/chaos.py                          # SQLite, then PostgreSQL
    .venv/bin/python bench/chaos.py --store sqlite --seconds 20 --kills 3

Starts a gateway (`python -m gateway.cli serve`, the embedded agent) on fixed free
ports, with its SMS channel pointed at a local Twilio REST stand-in
(tests/support/twilio_rest.py) and its email replies relayed through a local SMTP
relay that takes `--relay-delay` seconds to answer each mail. Clients on every text
channel keep writing for `--seconds`, each retrying what was not acknowledged the
way its sender would (a browser resends a chat message with the same client_id, Twilio
retries a webhook with the same MessageSid, a mail server resends with the same
Message-ID). Meanwhile the gateway is killed with SIGKILL `--kills` times and started
again at once. At the end the gateway runs until every message is answered and the
outbox is empty (or `--settle` seconds), then the database and the stand-ins are
compared, per channel:

- inbound: `tried` (distinct messages sent), `acked` (acknowledged by the gateway:
  chat `ack`, webhook 200, SMTP 250), `lost` (acknowledged but not stored, or stored
  and never answered), `dup` (stored twice, or answered by the agent twice);
- outbound: `replies` stored, `lost` (never reached the provider: for SMS by the
  customer's number, for email by Message-ID, for chat by the tab's history),
  `dup` (reached it more than once: for email the copies carry the same
  Message-ID, so a receiver can tell), `failed` (given up, with its error codes:
  SMS replies whose send was cut by a crash are not resent, see docs/reliability.md).

Everything runs on loopback; PostgreSQL (GATEWAY_BENCH_PG_URL, default the local
server) gets a database of its own, dropped afterwards. Exit status 1 when an
acknowledged message was lost or answered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import aiosmtplib
import asyncpg
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.chat_load import message_text  # noqa: E402
from tests.support.twilio_rest import API_VERSION, FakeTwilioRest  # noqa: E402

PG = os.environ.get("GATEWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNT_SID = "AC" + "c4" * 16
AUTH_TOKEN = "bench-chaos-token"
SUPPORT = "support@chaos.example"
OUR_NUMBER = "+15557650000"
PUBLIC_URL = "https://support.chaos.example"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------ stand-ins


class TwilioStandIn(FakeTwilioRest):
    """The tests' Twilio REST stand-in on a fixed port (it outlives the gateway)."""

    async def start_on(self, port: int) -> str:
        app = web.Application()
        path = f"/{API_VERSION}/Accounts/{{account}}/Messages.json"
        app.router.add_post(path, self._create_message)
        app.router.add_get(path, self._list_messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"


class SlowRelay:
    """An SMTP relay that keeps every mail and answers each after `delay_s`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.received: Counter[str] = Counter()  # Message-ID -> copies
        self.server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail = message_from_bytes(
            raw if isinstance(raw, bytes) else raw.encode(), policy=policy.default
        )
        self.received[str(mail.get("Message-ID", "")).strip()] += 1
        await asyncio.sleep(self.delay_s)
        return "250 OK"

    async def start(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, loop=loop), host="127.0.0.1", port=port
        )

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


# ------------------------------------------------------------- the gateway


@dataclass
class Gateway:
    env: dict[str, str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve"], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1

    async def up(self, timeout_s: float = 90.0) -> float:
        start = time.perf_counter()
        async with aiohttp.ClientSession() as session, asyncio.timeout(timeout_s):
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return time.perf_counter() - start
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


# --------------------------------------------------------------- clients


@dataclass
class Window:
    """Until when the clients write (moved on while the gateway restarts)."""

    until: float


@dataclass
class Tally:
    tried: set[str] = field(default_factory=set)  # chat: client ids; else external ids
    acked: set[str] = field(default_factory=set)
    owner: dict[str, int] = field(default_factory=dict)  # chat: client id -> tab
    seen: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # tab -> seqs
    tokens: dict[int, str] = field(default_factory=dict)  # tab -> visitor token


async def _frames(
    ws: aiohttp.ClientWebSocketResponse, tab: int, tally: Tally, done: Any, timeout_s: float
) -> dict[str, Any]:
    """Read frames (noting every message seq) until `done(frame)`."""
    async with asyncio.timeout(timeout_s):
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError("closed")
            frame: dict[str, Any] = json.loads(msg.data)
            listed = frame.get("messages") or ([frame] if frame["type"] == "message" else [])
            tally.seen[tab].update(int(m["seq"]) for m in listed)
            if frame["type"] == "welcome":
                tally.tokens[tab] = frame["visitor_token"]
            if done(frame):
                return frame


async def _hello(ws: aiohttp.ClientWebSocketResponse, tab: int, tally: Tally) -> None:
    """Say hello as the widget does (resuming after the highest seq shown) and read the
    history it is sent."""
    token = tally.tokens.get(tab)
    last = max(tally.seen[tab], default=0) if token else None
    await ws.send_json({"type": "hello", "visitor_token": token, "last_seq": last})
    await _frames(ws, tab, tally, lambda f: f["type"] == "history" and f.get("complete"), 10)


async def chat_client(url: str, tab: int, window: Window, tally: Tally) -> None:
    """A tab: sends a message, resends it (same client_id) after any drop until acked."""
    rng = random.Random(tab)
    pending: str | None = None
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.ws_connect(f"{url}/webchat/ws") as ws:
                    await _hello(ws, tab, tally)
                    while True:
                        if pending is None:
                            if time.perf_counter() >= window.until:
                                return
                            pending = uuid.uuid4().hex
                            tally.tried.add(pending)
                            tally.owner[pending] = tab
                        await ws.send_json({"type": "message", "client_id": pending,
                                            "text": message_text(rng)})  # fmt: skip
                        await _frames(ws, tab, tally, lambda f, c=pending: f["type"] == "ack"
                                      and f["client_id"] == c, 10)  # fmt: skip
                        tally.acked.add(pending)
                        pending = None
                        # Think, reading what arrives meanwhile (the agent's answer).
                        think = time.perf_counter() + 0.3
                        with contextlib.suppress(TimeoutError):
                            await _frames(ws, tab, tally, lambda f: False, 0.3)
                        await asyncio.sleep(max(0.0, think - time.perf_counter()))
            except (aiohttp.ClientError, ConnectionError, TimeoutError, OSError):
                await asyncio.sleep(0.3)


async def chat_catch_up(url: str, tab: int, tally: Tally) -> None:
    """The tab reconnects once more and reads what it missed (after its highest seq)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            try:
                async with session.ws_connect(f"{url}/webchat/ws") as ws:
                    await _hello(ws, tab, tally)
                    return
            except (aiohttp.ClientError, ConnectionError, TimeoutError, OSError):
                await asyncio.sleep(0.5)


async def texter(url: str, number: str, window: Window, tally: Tally) -> None:
    """A phone: each text is retried (same MessageSid) until the webhook answers 200."""
    rng = random.Random(number)
    validator = RequestValidator(AUTH_TOKEN)
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < window.until:
            sid = "SM" + uuid.uuid4().hex
            form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID,
                    "From": number, "To": OUR_NUMBER, "Body": message_text(rng),
                    "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
                    "ApiVersion": API_VERSION}  # fmt: skip
            sig = validator.compute_signature(PUBLIC_URL + "/twilio/sms", form)
            tally.tried.add(sid)
            for _ in range(200):
                try:
                    async with session.post(f"{url}/twilio/sms", data=form,
                                            headers={"X-Twilio-Signature": sig}) as r:  # fmt: skip
                        if r.status == 200:
                            tally.acked.add(sid)
                            break
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.3)
            await asyncio.sleep(0.3)


async def mailer(smtp_port: int, n: int, window: Window, tally: Tally) -> None:
    """A mail server: each mail is resent (same Message-ID) until the gateway says 250."""
    rng = random.Random(n)
    sender = f"customer{n}@mail.chaos.example"
    while time.perf_counter() < window.until:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = sender, SUPPORT, "Question"
        mail["Message-ID"] = make_msgid(domain="mail.chaos.example")
        mail.set_content(message_text(rng))
        key = f"{SUPPORT}:{mail['Message-ID']}"
        tally.tried.add(key)
        for _ in range(200):
            try:
                await aiosmtplib.send(mail, hostname="127.0.0.1", port=smtp_port, timeout=10)
                tally.acked.add(key)
                break
            except (aiosmtplib.SMTPException, OSError):
                await asyncio.sleep(0.3)
        await asyncio.sleep(0.5)


# ----------------------------------------------------------------- checks


async def rows(url: str, sql: str) -> list[dict[str, Any]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql).fetchall()]
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def settled(url: str) -> bool:
    waiting = await rows(url, "SELECT count(*) AS n FROM messages WHERE (direction='inbound'"
                              " AND handled=false) OR next_attempt_at IS NOT NULL")  # fmt: skip
    return int(waiting[0]["n"]) == 0


async def report(url: str, tallies: dict[str, Tally], rest: TwilioStandIn,
                 relay: SlowRelay) -> tuple[list[str], bool]:  # fmt: skip
    msgs = await rows(url, "SELECT id, customer_id, channel, direction, author, external_id,"
                           " handled, status, error_code, seq, text FROM messages")  # fmt: skip
    turns = Counter(
        json.loads(e["data"]).get("message_id")
        for e in await rows(url, "SELECT data FROM events WHERE kind='agent.turn'")
    )
    phones = {r["customer_id"]: r["value"] for r in await rows(
        url, "SELECT customer_id, value FROM identities WHERE kind='phone'")}  # fmt: skip
    lines, clean = [], True
    for channel, tally in tallies.items():
        inbound = [m for m in msgs if m["channel"] == channel and m["direction"] == "inbound"]
        key = (lambda m: m["external_id"].rsplit(":", 1)[-1]) if channel == "webchat" else (
            lambda m: m["external_id"])  # fmt: skip
        stored = Counter(key(m) for m in inbound)
        by_key = {key(m): m for m in inbound}
        lost_in = sum(
            1
            for k in tally.acked
            if k not in by_key or not by_key[k]["handled"] or turns[by_key[k]["id"]] == 0
        )
        dup_in = sum(
            1 for k in tally.acked if stored[k] > 1 or turns[by_key.get(k, {}).get("id")] > 1
        )
        replies = [m for m in msgs if m["channel"] == channel and m["direction"] == "outbound"]
        failed = Counter(m["error_code"] for m in replies if m["status"] == "failed")
        lost_out = dup_out = 0
        if channel == "sms":  # per number: what Twilio accepted against what was stored
            sent = Counter(phones.get(m["customer_id"]) for m in replies if m["status"] != "failed")
            unknown = Counter(phones.get(m["customer_id"]) for m in replies
                              if m["error_code"] == "outcome_unknown")  # fmt: skip
            got = Counter(f.get("To") for f in rest.messages)
            lost_out = sum(max(0, n - got[k]) for k, n in sent.items())
            dup_out = sum(max(0, n - sent[k] - unknown[k]) for k, n in got.items())
            for k, n in got.items():  # name what was sent twice, for the one reading this
                if n > sent[k] + unknown[k]:
                    bodies = Counter(f["Body"] for f in rest.messages if f.get("To") == k)
                    stored = Counter(m["text"] for m in replies
                                     if phones.get(m["customer_id"]) == k)  # fmt: skip
                    lines.append(f"  sms to {k}: {dict(bodies - stored)} sent beyond the stored")
            reached = sum(min(unknown[k], max(0, got[k] - sent[k])) for k in unknown)
            if reached:
                failed["outcome_unknown (reached Twilio)"] = reached
                failed["outcome_unknown"] -= reached
        elif channel == "email":
            ids = [str(m["external_id"] or "").removeprefix(f"{SUPPORT}:") for m in replies
                   if m["status"] != "failed"]  # fmt: skip
            lost_out = sum(1 for i in ids if relay.received[i] == 0)
            dup_out = sum(relay.received[i] - 1 for i in ids if relay.received[i] > 1)
        else:  # a tab's customer is the one its acknowledged messages were stored for
            tab_of = {by_key[k]["customer_id"]: t for k, t in tally.owner.items() if k in by_key}
            for m in replies:
                tab = tab_of.get(m["customer_id"])
                lost_out += tab is None or m["seq"] not in tally.seen[tab]
        clean = clean and lost_in == 0 and dup_in == 0
        lines.append(
            f"{channel:<8}{len(tally.tried):>6}{len(tally.acked):>6}{lost_in:>6}{dup_in:>6}"
            f"{len(replies):>9}{lost_out:>6}{dup_out:>6}  "
            f"{', '.join(f'{n} {c}' for c, n in failed.items() if n) or '-'}"
        )
    return lines, clean


# ------------------------------------------------------------------ a run


async def run(store: str, args: argparse.Namespace) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="gw-chaos-"))
    db = ""
    if store == "sqlite":
        url = f"sqlite:///{tmp / 'gateway.sqlite3'}"
    else:
        db = f"gwpg_chaos_{uuid.uuid4().hex[:8]}"
        await _admin(f"CREATE DATABASE {db}")
        parts = urlsplit(PG)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
    port, smtp_port, rest_port, relay_port = (free_port() for _ in range(4))
    rest = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await rest.start_on(rest_port)
    relay = SlowRelay(args.relay_delay)
    await relay.start(relay_port)
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_PORT": str(port),
        "GATEWAY_DATA_DIR": str(tmp / "data"), "GATEWAY_DATABASE_URL": url,
        "GATEWAY_SECRET_KEY": "chaos-bench-secret-0123456789abcdef",
        "GATEWAY_PUBLIC_URL": PUBLIC_URL, "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": f"http://127.0.0.1:{rest_port}",
        "GATEWAY_TWILIO_SMS_FROM": OUR_NUMBER, "GATEWAY_EMAIL_ADDRESS": SUPPORT,
        "GATEWAY_EMAIL_LISTEN": f"127.0.0.1:{smtp_port}",
        "GATEWAY_EMAIL_RELAY": f"smtp://127.0.0.1:{relay_port}",
        "GATEWAY_EMAIL_REPLIES_PER_HOUR": "1000",
        "GATEWAY_WEBCHAT_FRAMES_PER_MINUTE": "100000",
        "GATEWAY_OUTBOX_RETRY_BASE_S": "0.5", "GATEWAY_OUTBOX_POLL_S": "0.5",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    gw = Gateway(env, tmp / "gateway.log", port)
    gw.spawn()
    await gw.up()
    web_url = f"http://127.0.0.1:{port}"
    tallies = {"webchat": Tally(), "sms": Tally(), "email": Tally()}
    # The load runs for `seconds` of the gateway's uptime: restarts do not count.
    phase = args.seconds / (args.kills + 1)
    window = Window(time.perf_counter() + args.seconds)
    clients = [
        *(chat_client(web_url, n, window, tallies["webchat"]) for n in range(args.chat)),
        *(texter(web_url, f"+1555300{n:04d}", window, tallies["sms"]) for n in range(args.sms)),
        *(mailer(smtp_port, n, window, tallies["email"]) for n in range(args.email)),
    ]
    load = asyncio.gather(*clients, return_exceptions=True)
    downtime = []
    for _ in range(args.kills):
        await asyncio.sleep(phase * (0.6 + 0.8 * random.random()))
        gw.kill()
        down = time.perf_counter()
        gw.spawn()
        await gw.up()
        downtime.append(time.perf_counter() - down)
        window.until += downtime[-1]
    errors = [r for r in await load if isinstance(r, BaseException)]
    deadline = time.perf_counter() + args.settle
    while time.perf_counter() < deadline and not await settled(url):  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    # The chat tabs read what they missed (their history), as a reconnecting widget does.
    await asyncio.gather(*(chat_catch_up(web_url, n, tallies["webchat"]) for n in range(args.chat)))
    gw.stop()
    lines, clean = await report(url, tallies, rest, relay)
    await rest.close()
    await relay.close()
    if db:
        await _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    print(
        f"\n{store}: {args.seconds:.0f} s, {args.kills} x kill -9 (restarts took "
        f"{', '.join(f'{d:.1f}' for d in downtime)} s), relay answers in {args.relay_delay} s"
    )
    print(
        f"{'channel':<8}{'tried':>6}{'acked':>6}{'lost':>6}{'dup':>6}"
        f"{'replies':>9}{'lost':>6}{'dup':>6}  failed (given up)"
    )
    print("\n".join(lines))
    print(
        "(outbound email dup: extra copies of a reply under its one Message-ID, sent again"
        " because the gateway died before the relay's answer; chat: the store is the"
        " delivery, `lost` counts replies a tab never received live or on resume)"
    )
    if errors:
        print(f"client errors: {errors[:3]}")
    return clean


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--chat", type=int, default=4, help="web chat tabs")
    parser.add_argument("--sms", type=int, default=4, help="phones texting")
    parser.add_argument("--email", type=int, default=3, help="mail senders")
    parser.add_argument("--relay-delay", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=60.0)
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    clean = all([asyncio.run(run(s, args)) for s in stores])
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
