"""Group commit: one thread owns the SQLite write connection and commits many
callers' writes in one transaction.

A caller submits a function of the connection and awaits its result; the
writer drains everything queued, runs it in one transaction, commits (fsync
once for the whole batch), then resolves all the callers' futures at once. A
caller's coroutine therefore returns only after its write is durable. If any
write in a batch fails, the batch is rolled back and each write is retried in a
transaction of its own, so one bad write never takes its neighbours down.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self, fn: WriteFn, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.done():  # the caller was cancelled; the write happened anyway
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class GroupCommitWriter:
    """A single writer thread with group commit. `on_rollback` lets the owner
    drop caches that a rolled-back batch may have touched."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        batch_max: int = 256,
        on_rollback: Callable[[], None] | None = None,
        name: str = "store-writer",
    ) -> None:
        self._connect = connect
        self._batch_max = batch_max
        self._on_rollback = on_rollback
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self.batches = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise StoreError(f"cannot open the store: {self._error}") from self._error

    async def submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside a group-committed transaction; return after commit."""
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    def close(self) -> None:
        """Finish every queued write, then stop the thread and close the connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the constructor
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._batch_max:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                outcomes.append((True, job.fn(conn)))
            conn.execute("COMMIT")
        except Exception:
            self._rollback(conn)
            # Retry one by one so that only the faulty write fails.
            outcomes = [self._run_one(conn, job) for job in batch]
        self.batches += 1
        self.writes += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, results in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, results)
            except RuntimeError:  # the caller's loop is gone (shutdown)
                log.warning("dropped %d write results for a closed event loop", len(results))

    def _run_one(self, conn: sqlite3.Connection, job: _Job) -> tuple[bool, Any]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            value = job.fn(conn)
            conn.execute("COMMIT")
            return True, value
        except Exception as exc:
            self._rollback(conn)
            if not isinstance(exc, StoreError):
                log.exception("store write failed")
                wrapped = StoreError(f"store write failed: {exc}")
                wrapped.__cause__ = exc
                return False, wrapped
            return False, exc

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if self._on_rollback is not None:
            self._on_rollback()
