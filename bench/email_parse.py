"""How long one large mail stalls the event loop, parsed three ways.

    .venv/bin/python bench/email_parse.py [--megabytes 9] [--workers 1]

The mail is a text/html mail of deeply nested elements (issue 15: 9 MB of them froze
the gateway for 11-15 s). It is parsed with `codec.parse` on the loop, in a worker
thread (`asyncio.to_thread`) and in the email channel's worker process
(`MailParser`), while a ticker on the loop wakes every 10 ms; the figures are the
parse's wall time and the ticker's worst and 99th-percentile lateness (how long a chat
message would have waited for the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels.email import codec  # noqa: E402
from channels.email.parsing import MailParser  # noqa: E402

TICK_S = 0.010


def huge_html_mail(megabytes: float) -> bytes:
    depth = int(megabytes * 1024 * 1024 / (len("<div><span>\r\n") + len("</span></div>\r\n")))
    body = b"<html><body>\r\n" + b"<div><span>\r\n" * depth + b"Where is my order?\r\n"
    body += b"</span></div>\r\n" * depth + b"</body></html>\r\n"
    head = (
        b"From: big@example.net\r\nTo: support@example.com\r\nSubject: big\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return head + body


async def measure(parse: Callable[[], Awaitable[codec.ParsedMail]]) -> tuple[float, list[float]]:
    """(parse seconds, ticker lateness samples in seconds)."""
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            due = time.perf_counter() + TICK_S
            await asyncio.sleep(TICK_S)
            late.append(max(0.0, time.perf_counter() - due))

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(TICK_S * 3)
    started = time.perf_counter()
    mail = await parse()
    took = time.perf_counter() - started
    done.set()
    await tick
    assert mail.text.strip() == "Where is my order?", mail.text[:80]
    return took, late


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megabytes", type=float, default=9.0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    raw = huge_html_mail(args.megabytes)
    parser = MailParser(workers=args.workers, timeout_s=120)
    await parser.start()
    await parser.parse(b"From: warm@example.net\r\n\r\nhi\r\n", None)  # worker imported

    async def on_loop() -> codec.ParsedMail:
        return codec.parse(raw)

    async def in_thread() -> codec.ParsedMail:
        return await asyncio.to_thread(codec.parse, raw)

    async def in_process() -> codec.ParsedMail:
        return await parser.parse(raw, None)

    print(f"mail: {len(raw) / 1e6:.1f} MB of nested text/html; ticker every {TICK_S * 1000:.0f} ms")
    print(f"{'mode':<12} {'parse s':>8} {'worst stall ms':>15} {'p99 ms':>8} {'ticks':>6}")
    try:
        for name, fn in (("on loop", on_loop), ("thread", in_thread), ("process", in_process)):
            took, late = await measure(fn)
            p99 = (
                statistics.quantiles(late, n=100, method="inclusive")[98]
                if len(late) > 1
                else late[0]
            )
            print(f"{name:<12} {took:>8.2f} {max(late) * 1000:>15.0f} {p99 * 1000:>8.0f}"
                  f" {len(late):>6}")  # fmt: skip
    finally:
        await parser.close()


if __name__ == "__main__":
    asyncio.run(main())
