"""Email side of bench/channel_load.py: senders mailing the gateway's embedded SMTP
server (aiosmtplib), and a local SMTP relay (aiosmtpd) that catches its answers.

A sender is one mail client in a closed loop: it sends a mail, waits for the answer
to reach the relay (matched by the answer's `In-Reply-To`, which must be the mail's
Message-ID), then answers that answer in the same thread (In-Reply-To, References,
`Re:`) until the thread holds `thread_length` mails; the next thread comes from a
new address. Threads are kept within the gateway's per-sender reply rate limit
(GATEWAY_EMAIL_REPLIES_PER_HOUR, default 5) so that every mail must be answered.
A fraction of mails is sent a second time with the same Message-ID (a sending
server's retry), after the first was accepted: it may not be answered again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.chat_load import message_text


class CatchingRelay:
    """An SMTP server that keeps when each answer arrived, by the mail it answers."""

    def __init__(self) -> None:
        self.answers: defaultdict[str, list[float]] = defaultdict(list)  # In-Reply-To -> times
        self.mails: dict[str, EmailMessage] = {}  # In-Reply-To -> the (first) answer
        self.unthreaded = 0
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self.server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived = time.perf_counter()
        raw = envelope.original_content or b""
        mail = message_from_bytes(
            raw if isinstance(raw, bytes) else raw.encode(), policy=policy.default
        )
        assert isinstance(mail, EmailMessage)
        answering = str(mail.get("In-Reply-To", "")).strip()
        if not answering:
            self.unthreaded += 1
            return "250 OK"
        self.answers[answering].append(arrived)
        self.mails.setdefault(answering, mail)
        waiter = self._waiting.pop(answering, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(arrived)
        return "250 OK"

    def expect(self, message_id: str) -> asyncio.Future[float]:
        """A future set to when the answer to `message_id` arrives."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = waiter
        return waiter

    async def start(self, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, loop=loop), host="127.0.0.1", port=port
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class EmailRun:
    """What one level of senders did."""

    clients: int
    sent: list[str] = field(default_factory=list)  # Message-IDs, each sent (at least) once
    threads: list[tuple[str, list[str]]] = field(default_factory=list)  # (sender, ids)
    retries: int = 0
    ack: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last: float = 0.0  # when the last answer arrived
    elapsed: float = 0.0  # from the start to the last answer


@dataclass(frozen=True)
class EmailTarget:
    host: str
    port: int
    address: str  # the support address


def compose(sender: str, to: str, text: str, answering: EmailMessage | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="customers.example")
    if answering is None:
        msg["Subject"] = "Question about my order"
    else:
        msg["Subject"] = str(answering["Subject"])  # already "Re: ..."
        msg["In-Reply-To"] = str(answering["Message-ID"])
        refs = str(answering.get("References", "")).split()
        msg["References"] = " ".join([*refs, str(answering["Message-ID"])])
    msg.set_content(text)
    return msg


async def sender(
    target: EmailTarget, relay: CatchingRelay, name: str, until: float, thread_length: int,
    retry_share: float, timeout_s: float, run: EmailRun,
) -> None:  # fmt: skip
    rng = random.Random()
    smtp: dict[str, Any] = {"hostname": target.host, "port": target.port, "timeout": timeout_s}
    for thread_no in range(1_000_000):
        if time.perf_counter() >= until:
            return
        address = f"{name}.{thread_no}@customers.example"
        ids: list[str] = []
        run.threads.append((address, ids))
        answer: EmailMessage | None = None
        while len(ids) < thread_length and time.perf_counter() < until:
            msg = compose(address, target.address, message_text(rng), answer)
            msg_id = str(msg["Message-ID"])
            waiter = relay.expect(msg_id)
            ids.append(msg_id)
            run.sent.append(msg_id)
            start = time.perf_counter()
            try:
                await aiosmtplib.send(msg, sender=address, recipients=[target.address], **smtp)
                run.ack.append(time.perf_counter() - start)
                if rng.random() < retry_share:
                    run.retries += 1
                    await aiosmtplib.send(msg, sender=address, recipients=[target.address], **smtp)
                async with asyncio.timeout(timeout_s):
                    arrived = await waiter
            except TimeoutError:  # (an OSError: first)
                run.errors.append(f"{address}: no answer to {msg_id} within {timeout_s:.0f} s")
                return
            except (aiosmtplib.SMTPException, OSError) as exc:
                run.errors.append(f"{address}: {type(exc).__name__}: {exc}")
                return
            run.reply.append(arrived - start)
            run.last = max(run.last, arrived)
            answer = relay.mails[msg_id]


async def run_senders(
    target: EmailTarget, relay: CatchingRelay, clients: int, seconds: float, level: int,
    thread_length: int, retry_share: float, timeout_s: float,
) -> EmailRun:  # fmt: skip
    """`clients` senders mailing for `seconds`, each thread from a new address."""
    run = EmailRun(clients=clients)
    start = time.perf_counter()
    until = start + seconds
    results = await asyncio.gather(
        *(sender(target, relay, f"l{level}c{i}", until, thread_length, retry_share, timeout_s,
                 run) for i in range(clients)),
        return_exceptions=True,
    )  # fmt: skip
    run.elapsed = (run.last or time.perf_counter()) - start
    run.errors += [f"sender failed: {r!r}" for r in results if isinstance(r, BaseException)]
    return run


def lost_and_doubled(run: EmailRun, relay: CatchingRelay) -> tuple[int, int]:
    """(mails never answered, answers beyond one a mail)."""
    lost = sum(1 for i in run.sent if not relay.answers.get(i))
    doubled = sum(max(0, len(relay.answers.get(i, ())) - 1) for i in run.sent)
    return lost, doubled
