"""`MailParser`: `codec.parse` off the event loop, in worker processes, bounded in time.

Parsing is CPU work: a 9 MB HTML mail of nested elements takes seconds (the MIME parse
and the HTML-to-text conversion), and on the loop it froze every chat and call. A worker
thread would still hold the GIL for most of that time; a worker process does not, and a
runaway parse can be killed: after `GATEWAY_EMAIL_PARSE_TIMEOUT_S` the worker is killed
(a fresh one starts for the next mail) and the mail is read from its headers only
(`codec.parse_headers`, with a note for its text), so it is stored rather than lost or
refused again on every retry. Size is bounded before this: the SMTP server refuses a
mail over `GATEWAY_EMAIL_MAX_BYTES` (552), and the IMAP poller skips one.

`GATEWAY_EMAIL_PARSE_WORKERS` processes parse mails in parallel; each is a plain
request/answer loop over a pipe, driven from a thread so the loop never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from channels.email import codec

log = logging.getLogger("gateway.email.parsing")

# forkserver: each worker is forked from a clean server process that has already
# imported the codec (a fresh interpreter per worker would take a second or more to
# start), and nothing of the gateway's threads or sockets is inherited.
_PRELOAD = ["channels.email.codec"]


class ParseTimeout(Exception):
    """The worker did not finish within the time bound (and was killed)."""


class MailParser:
    """A small pool of parse workers; `start` (optional, warms them), `parse`, `close`."""

    def __init__(self, *, workers: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._workers = [_Worker(i) for i in range(max(1, workers))]
        self._idle: asyncio.Queue[_Worker] | None = None
        self.killed = 0  # workers killed for running past the bound
        self.in_flight = 0  # mails being parsed now

    async def start(self) -> None:
        """Start every worker now (in threads), so the first mail does not wait for one."""
        await asyncio.gather(*(asyncio.to_thread(w.ensure) for w in self._workers))

    async def parse(self, raw: bytes, envelope_from: str | None) -> codec.ParsedMail:
        """`codec.parse(raw)` in a worker; codec.MailError as it raises it; a mail that
        runs past the bound is read from its headers only (and the worker killed)."""
        idle = self._queue()
        worker = await idle.get()
        self.in_flight += 1
        try:
            return await asyncio.to_thread(worker.call, raw, envelope_from, self.timeout_s)
        except ParseTimeout:
            self.killed += 1
            log.warning("mail of %d bytes not parsed within %.0f s: worker killed, headers kept",
                        len(raw), self.timeout_s)  # fmt: skip
            return await asyncio.to_thread(
                codec.parse_headers, raw, envelope_from=envelope_from, note=codec.TIMEOUT_NOTE
            )
        finally:
            self.in_flight -= 1
            idle.put_nowait(worker)

    async def close(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self._workers))

    def _queue(self) -> asyncio.Queue[_Worker]:
        if self._idle is None:  # made on the loop that uses it
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        return self._idle


class _Worker:
    """One worker process and its pipe; `call` is used by one thread at a time."""

    def __init__(self, index: int) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def ensure(self) -> Connection:
        with self._lock:
            return self._ensure()

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._kill()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)  # read when the server first starts
        ours, theirs = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=_serve, args=(theirs,), name=f"email-parse-{self.index}", daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        return ours

    def call(self, raw: bytes, envelope_from: str | None, timeout_s: float) -> codec.ParsedMail:
        """Blocking (run in a thread): send one mail, wait at most `timeout_s` for it."""
        with self._lock:
            deadline = time.monotonic() + timeout_s
            conn = self._ensure()
            try:
                conn.send((raw, envelope_from))
                ready = conn.poll(max(0.0, deadline - time.monotonic()))
                answer = conn.recv() if ready else None
            except (OSError, EOFError) as exc:  # the worker died (killed, out of memory)
                self._kill()
                raise ParseTimeout(f"parse worker died: {exc}") from exc
            if answer is None:
                self._kill()
                raise ParseTimeout(f"no answer within {timeout_s} s")
        kind, value = answer
        if kind == "ok" and isinstance(value, codec.ParsedMail):
            return value
        if kind == "too_long":
            raise codec.AddressTooLong(str(value))
        raise codec.MailError(str(value))

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            process.join(timeout=5)


def _serve(conn: Connection) -> None:
    """The worker's loop: parse what arrives, answer ("ok", ParsedMail) or the error."""
    while True:
        try:
            raw, envelope_from = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, object] = ("ok", codec.parse(raw, envelope_from=envelope_from))
        except codec.AddressTooLong as exc:
            answer = ("too_long", str(exc))
        except codec.MailError as exc:
            answer = ("bad", str(exc))
        try:
            conn.send(answer)
        except (OSError, EOFError):
            return


__all__ = ["MailParser", "ParseTimeout"]
