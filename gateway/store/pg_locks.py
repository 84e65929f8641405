"""PostgreSQL advisory locks that coordinate gateway nodes.

Each `PgLocks` owns one dedicated connection: session-level advisory locks live
exactly as long as it, so when a node dies (even SIGKILL) the database ends its
session and its locks are free for the others at once.

- `PgTurnGate`: one conversation's turns run on one node at a time, in order
  (the dispatcher's lanes order them within a node). After taking the lock the
  dispatcher re-reads, in one query, whether the message was answered meanwhile
  (so a message picked up by two nodes, a retried webhook or recovery, is
  answered once) and the conversation and customer as they are now.
- `PgLeadership`: the one node that routes conversations (see routing/front.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from gateway.errors import StoreError
from gateway.models import Message
from gateway.protocols import FreshTurn

log = logging.getLogger(__name__)

TURN_LOCKS = 7411003  # first key of (namespace, conversation id) turn locks
LEADER_LOCK = 7411004  # (namespace, 1): the routing leader


class PgLocks:
    """Advisory locks on a connection of their own, used by one coroutine at a time."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._use = asyncio.Lock()

    async def _query(self, sql: str, *args: Any) -> Any:
        async with self._use:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn, timeout=10)
                return await self._conn.fetchval(sql, *args)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                # The session (and every lock it held) is gone: start over next time.
                await self._drop()
                raise StoreError(f"advisory lock: {exc}") from exc

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def try_lock(self, space: int, key: int) -> bool:
        return bool(await self._query("SELECT pg_try_advisory_lock($1, $2)", space, key))

    async def unlock(self, space: int, key: int) -> None:
        await self._query("SELECT pg_advisory_unlock($1, $2)", space, key)

    async def alive(self) -> bool:
        try:
            await self._query("SELECT 1")
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        async with self._use:
            await self._drop()


Fresh = Callable[[Message, int], Awaitable[FreshTurn | None]]


TURN_LOCK_CONNECTIONS = 4


class PgTurnGate:
    """The dispatcher's `TurnGate` on PostgreSQL (see the module docstring). The locks
    are spread over a few connections by conversation (a lock is always taken and
    freed on its conversation's), so turns do not queue behind one connection."""

    def __init__(self, dsn: str, fresh: Fresh, *, connections: int = TURN_LOCK_CONNECTIONS):
        self.shards = [PgLocks(dsn) for _ in range(connections)]
        self._fresh = fresh

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[None]:
        locks = self.shards[conversation_id % len(self.shards)]
        delay = 0.002
        while not await locks.try_lock(TURN_LOCKS, conversation_id):
            await asyncio.sleep(delay)  # another node is in a turn of this conversation
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            with contextlib.suppress(StoreError):
                await locks.unlock(TURN_LOCKS, conversation_id)

    async def fresh(self, message: Message, history: int) -> FreshTurn | None:
        return await self._fresh(message, history)

    async def close(self) -> None:
        for locks in self.shards:
            await locks.close()


OnLead = Callable[[bool], Awaitable[None]]


class PgLeadership:
    """Holds LEADER_LOCK while it can; `on_lead(True)` when it gets it, `on_lead(False)`
    when its session is lost. Nodes without it try again every `interval_s`."""

    def __init__(self, dsn: str, on_lead: OnLead, *, interval_s: float = 1.0) -> None:
        self.locks = PgLocks(dsn)
        self.on_lead = on_lead
        self.interval_s = interval_s
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._step()  # a node alone leads before it serves its first request
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self._step()
            except Exception:
                log.exception("routing leadership: step failed")

    async def _step(self) -> None:
        if self.leading:
            if not await self.locks.alive():
                log.warning("routing leadership lost (database session gone)")
                self.leading = False
                await self.on_lead(False)
            return
        try:
            got = await self.locks.try_lock(LEADER_LOCK, 1)
        except StoreError as exc:
            log.warning("routing leadership: %s", exc)
            return
        if got:
            log.info("this node now routes conversations (leader)")
            self.leading = True
            await self.on_lead(True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.leading:
            self.leading = False
            await self.on_lead(False)
        await self.locks.close()  # frees the lock: another node takes over at once


__all__ = ["PgLeadership", "PgLocks", "PgTurnGate"]
