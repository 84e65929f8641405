"""`PgListener`: PostgreSQL LISTEN on a connection of its own.

NOTIFY is delivered when the notifying transaction commits, to the sessions
listening at that moment. A session that was not listening (before it started,
while its connection was down) misses it, so the listener also calls its hook
each time it (re)starts listening: the hook re-reads what it watches, then
keeps up with notifications. Bursts are coalesced: the hook runs once for the
notifications that arrived while it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

CHECK_S = 5.0  # how often an idle connection is checked (a dropped one says nothing)


class PgListener:
    """Runs `on_change()` after each NOTIFY on `channel`, and after (re)connecting."""

    def __init__(
        self, dsn: str, channel: str, on_change: Callable[[], Awaitable[object]],
        *, retry_s: float = 1.0,
    ) -> None:  # fmt: skip
        self._dsn = dsn
        self._channel = channel
        self._on_change = on_change
        self._retry_s = retry_s
        self._due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._work())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _notified(self, *_: Any) -> None:
        self._due.set()

    async def _listen(self) -> None:
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                await conn.add_listener(self._channel, self._notified)
                self._due.set()  # whatever changed while nobody listened
                while True:
                    await asyncio.sleep(CHECK_S)
                    await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning("listening for %s: %s; listening again shortly", self._channel, exc)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(self._retry_s)

    async def _work(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            try:
                await self._on_change()
            except Exception:  # the next notification (or reconnect) tries again
                log.exception("handling a change on %s failed", self._channel)


__all__ = ["PgListener"]
