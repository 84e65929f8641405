"""SMS and email at volume: simulated texters and mail senders against a gateway.

    .venv/bin/python bench/channel_load.py                       # SMS 20 100, email 10 50
    .venv/bin/python bench/channel_load.py --sms 200 --email 100 --seconds 20

Starts a gateway (`python -m gateway.cli serve`: embedded SQLite with
synchronous=FULL, the embedded agent) in a subprocess on free ports with a
temporary data dir, its SMS channel pointed at a local Twilio REST stand-in
(`tests/support/twilio_rest.py`, through GATEWAY_TWILIO_API_URL and test
credentials) and its email channel listening for SMTP on a free port, relaying
its answers to a local SMTP server (GATEWAY_EMAIL_RELAY). Both stand-ins run in
this process, on the clients' event loop and clock.

For each level it runs that many concurrent clients for `--seconds` (each waits
for the answer to a message before it sends the next; see bench/load_sms.py and
bench/load_email.py) and prints, per channel: messages answered per second, the
acknowledgement latency (webhook POST to its 200; SMTP connect to `250` after
DATA, which the gateway answers only once the mail is committed) and the reply
latency (POST / send to the answer arriving at the REST stand-in / relay), p50
and p99; `retries` counts extra deliveries of a message (same MessageSid /
Message-ID). Then it checks that nothing was lost: every message got exactly one
answer, the gateway counted every retry as a duplicate (`/metrics`), and, in its
database, each message is stored once, none is unanswered, and every email thread
is one conversation. It exits 1 when anything was lost or answered twice.

`--url` targets a running gateway instead (no database check): it must use
`--account-sid` / `--token`, have that URL as GATEWAY_PUBLIC_URL,
GATEWAY_TWILIO_API_URL=http://127.0.0.1:REST_PORT and
GATEWAY_EMAIL_RELAY=smtp://127.0.0.1:RELAY_PORT, and receive mail at `--smtp`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load_email import CatchingRelay, EmailRun, EmailTarget, run_senders  # noqa: E402
from bench.load_email import lost_and_doubled as email_lost  # noqa: E402
from bench.load_sms import CatchingTwilioRest, SmsRun, SmsTarget, run_texters  # noqa: E402
from bench.load_sms import lost_and_doubled as sms_lost  # noqa: E402

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "bench-channel-load-token"
SUPPORT = "support@bench.example"
HEADER = (
    f"{'channel':<7} {'clients':>7} {'messages':>8} {'retries':>7} {'msg/s':>7} "
    f"{'ack p50':>8} {'ack p99':>8} {'reply p50':>9} {'reply p99':>9} {'lost':>5} {'twice':>5} "
    f"{'gw cpu':>6} {'bench cpu':>9}"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000:.0f} ms"


def cpu_seconds(pid: int | None) -> float:
    """CPU time used so far by process `pid`, all its threads (Linux), or by this one."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Share of one core the gateway and this process used over one level."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = (time.perf_counter(), cpu_seconds(pid), cpu_seconds(None))

    def read(self) -> str:
        wall = time.perf_counter() - self.start[0]
        gw = f"{(cpu_seconds(self.pid) - self.start[1]) / wall:.0%}" if self.pid else "-"
        return f"{gw:>6} {(cpu_seconds(None) - self.start[2]) / wall:>9.0%}"


def row(channel: str, run: SmsRun | EmailRun, lost: int, twice: int, cpu: str) -> str:
    sent = sum(map(len, run.sent.values())) if isinstance(run, SmsRun) else len(run.sent)
    rate = len(run.reply) / run.elapsed if run.elapsed else 0.0
    return (
        f"{channel:<7} {run.clients:>7} {sent:>8} {run.retries:>7} {rate:>7.1f} "
        f"{pct(run.ack, 0.5):>8} {pct(run.ack, 0.99):>8} {pct(run.reply, 0.5):>9} "
        f"{pct(run.reply, 0.99):>9} {lost:>5} {twice:>5} {cpu}"
    )


# ------------------------------------------------------------------ gateway


def start_gateway(port: int, smtp_port: int, rest_url: str, relay_port: int, data_dir: Path,
                  replies_per_hour: int) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": rest_url,
        "GATEWAY_EMAIL_ADDRESS": SUPPORT,
        "GATEWAY_EMAIL_LISTEN": f"127.0.0.1:{smtp_port}",
        "GATEWAY_EMAIL_RELAY": f"smtp://127.0.0.1:{relay_port}",
        "GATEWAY_EMAIL_REPLIES_PER_HOUR": str(replies_per_hour),
        # Every sender mails from @customers.example: the domain and total caps (loop
        # protection) would hold answers back that this bench counts as lost.
        "GATEWAY_EMAIL_REPLIES_PER_DOMAIN_PER_HOUR": "100000",
        "GATEWAY_EMAIL_REPLIES_TOTAL_PER_HOUR": "1000000",
    }
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT)


async def wait_up(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}")
            try:
                async with session.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.2)


async def duplicates_seen(url: str) -> dict[str, int]:
    """The gateway's own count of deliveries it recognised as retries (GET /metrics)."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        text = await resp.text()
    found = re.findall(r'^gateway_duplicate_messages_total\{channel="(\w+)"\} (\S+)$', text, re.M)
    return {channel: int(float(count)) for channel, count in found}


def check_store(db: Path, sms: list[SmsRun], email: list[EmailRun]) -> list[str]:
    """What the gateway's database says went wrong (empty: nothing)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    problems = []
    for channel, sent in (
        ("sms", [sid for run in sms for sids in run.sent.values() for sid in sids]),
        ("email", [mid for run in email for mid in run.sent]),
    ):
        rows = conn.execute(
            "SELECT external_id, conversation_id, handled FROM messages "
            "WHERE channel = ? AND direction = 'inbound'",
            (channel,),
        ).fetchall()
        # Email ids are "<support address>:<Message-ID>".
        key = (lambda x: x.split(":", 1)[1]) if channel == "email" else (lambda x: x)
        stored = Counter(key(ext) for ext, _, _ in rows)
        conv = {key(ext): c for ext, c, _ in rows}
        missing = sum(1 for i in set(sent) if not stored[i])
        twice = sum(1 for i in set(sent) if stored[i] > 1)
        unanswered = sum(1 for _, _, handled in rows if not handled)
        if missing or twice or unanswered:
            problems.append(f"{channel}: {missing} not stored, {twice} stored twice, "
                            f"{unanswered} unanswered")  # fmt: skip
        print(f"store {channel:<5}: {len(set(sent))} sent, {len(rows)} stored, {missing} "
              f"missing, {twice} twice, {unanswered} unanswered")  # fmt: skip
    for channel, waiting in conn.execute(
        "SELECT channel, COUNT(*) FROM conversations WHERE state != 'bot' GROUP BY channel"
    ):
        # The agent hands over when it does not understand: later messages are a person's.
        print(f"store {channel:<5}: {waiting} conversations handed over to a person")
    split = sum(1 for run in email for _, ids in run.threads if len({conv.get(i) for i in ids}) > 1)
    threads = sum(len(run.threads) for run in email)
    print(f"store email: {threads} threads, {split} split over several conversations")
    if split:
        problems.append(f"email: {split} threads split over several conversations")
    conn.close()
    return problems


# ------------------------------------------------------------------ the run


async def bench(args: argparse.Namespace) -> int:
    rest = CatchingTwilioRest(args.account_sid, args.token)
    relay = CatchingRelay()
    rest_url = await rest.start_on(args.rest_port)
    relay_port = await relay.start(args.relay_port)
    proc = None
    tmp = tempfile.TemporaryDirectory()
    data_dir = Path(args.data_dir or tmp.name)
    if args.url:
        url, smtp = args.url.rstrip("/"), args.smtp
        public = args.public_url or url
    else:
        port, smtp_port = free_port(), free_port()
        url = public = f"http://127.0.0.1:{port}"
        smtp = f"127.0.0.1:{smtp_port}"
        proc = start_gateway(port, smtp_port, rest_url, relay_port, data_dir,
                             args.replies_per_hour)  # fmt: skip
    host, _, smtp_port_s = smtp.rpartition(":")
    sms_target = SmsTarget(url, public, args.account_sid, args.token)
    email_target = EmailTarget(host, int(smtp_port_s), args.address)
    sms_runs: list[SmsRun] = []
    email_runs: list[EmailRun] = []
    rows, problems = [], []
    try:
        await wait_up(url, proc)
        level = 0
        pid = proc.pid if proc is not None else None
        cpu: dict[int, str] = {}  # id(run) -> CPU shares over its level
        for clients in args.sms:
            level += 1
            meter = CpuMeter(pid)
            run = await run_texters(sms_target, rest, clients, args.seconds, level, args.retries,
                                    args.reply_timeout)  # fmt: skip
            cpu[id(run)] = meter.read()
            sms_runs.append(run)
        for clients in args.email:
            level += 1
            meter = CpuMeter(pid)
            erun = await run_senders(
                email_target, relay, clients, args.seconds, level, args.thread_length,
                args.retries, args.reply_timeout,
            )  # fmt: skip
            cpu[id(erun)] = meter.read()
            email_runs.append(erun)
        await asyncio.sleep(args.settle)  # an answer sent twice would come in by now
        for run in sms_runs:
            lost, twice = sms_lost(run, rest)
            rows.append(row("sms", run, lost, twice, cpu[id(run)]))
            problems += run.errors + ([f"sms {run.clients}: {lost} lost, {twice} twice"]
                                      if lost or twice else [])  # fmt: skip
        for erun in email_runs:
            lost, twice = email_lost(erun, relay)
            rows.append(row("email", erun, lost, twice, cpu[id(erun)]))
            problems += erun.errors + ([f"email {erun.clients}: {lost} lost, {twice} twice"]
                                       if lost or twice else [])  # fmt: skip
        seen = await duplicates_seen(url)
        print("gateway saw as retries:", seen)
        for channel, runs in (("sms", sms_runs), ("email", email_runs)):
            retries = sum(r.retries for r in runs)
            if proc is not None and seen.get(channel, 0) != retries:
                problems.append(f"{channel}: {retries} retries, {seen.get(channel, 0)} seen")
        if relay.unthreaded:
            problems.append(f"email: {relay.unthreaded} answers without In-Reply-To")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        await rest.close()
        await relay.close()
    print(HEADER)
    print("\n".join(rows))
    if proc is not None:
        problems += check_store(data_dir / "gateway.sqlite3", sms_runs, email_runs)
    tmp.cleanup()
    for problem in problems[:20]:
        print("PROBLEM:", problem)
    print("nothing lost" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sms", type=int, nargs="*", default=[20, 100], help="texters per level")
    ap.add_argument("--email", type=int, nargs="*", default=[10, 50], help="senders per level")
    ap.add_argument("--seconds", type=float, default=15.0, help="sending time of each level")
    ap.add_argument(
        "--retries",
        type=float,
        default=0.05,
        help="share of messages delivered twice (same MessageSid / Message-ID)",
    )
    ap.add_argument("--thread-length", type=int, default=4, help="mails per email thread")
    ap.add_argument(
        "--replies-per-hour",
        type=int,
        default=5,
        help="GATEWAY_EMAIL_REPLIES_PER_HOUR of the gateway started (its default)",
    )
    ap.add_argument("--reply-timeout", type=float, default=60.0, help="longest wait for one answer")
    ap.add_argument("--settle", type=float, default=2.0, help="wait for late answers at the end")
    ap.add_argument("--data-dir", help="the started gateway's data dir, kept (default: temporary)")
    ap.add_argument("--url", help="base URL of a running gateway (skips start and store check)")
    ap.add_argument("--public-url", help="its GATEWAY_PUBLIC_URL when not --url")
    ap.add_argument("--smtp", default="127.0.0.1:2525", help="with --url: its SMTP host:port")
    ap.add_argument("--address", default=SUPPORT, help="with --url: its support address")
    ap.add_argument("--account-sid", default=ACCOUNT_SID)
    ap.add_argument("--token", default=AUTH_TOKEN, help="Twilio auth token the gateway checks")
    ap.add_argument("--rest-port", type=int, default=0, help="Twilio REST stand-in port (0: any)")
    ap.add_argument("--relay-port", type=int, default=0, help="SMTP relay port (0: any)")
    args = ap.parse_args(argv)
    if args.thread_length > args.replies_per_hour:
        ap.error("--thread-length above --replies-per-hour: the rate limit would drop answers")
    if args.url and not (args.rest_port and args.relay_port):
        ap.error("--url needs the --rest-port and --relay-port the gateway sends to")
    print(f"SMS texters {args.sms}, email senders {args.email}, {args.seconds:.0f} s a level, "
          f"{args.retries:.0%} retried, {os.cpu_count()} CPUs")  # fmt: skip
    try:
        import uvloop
    except ImportError:  # pragma: no cover - no uvloop build for Windows
        return asyncio.run(bench(args))
    return uvloop.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
