"""Which node routes conversations, and taking over when that node is gone.

A gateway alone (SQLite, or no bus) always leads. With a PostgreSQL store and a
shared bus, the node holding an advisory lock leads (store/pg_locks.py); the
others call it through the bus (routing/front.py). A node that takes over
rebuilds the router from the store (queued work, pending offers re-issued),
reads back the approvals that wait for a rep (routing/approvals.py), queues
conversations a dead node left `queued` without an entry, and keeps doing so
every GATEWAY_CLUSTER_RECOVER_AFTER_S. On PostgreSQL the leader also listens for
reps added or changed while it runs (`gateway reps add` / `update`); on SQLite,
where that command writes beside the running gateway, it reads them again every
REPS_POLL_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.keys import BUS, STORE
from gateway.routing.front import RoutingFront
from gateway.routing.router import Router
from gateway.store.routing_rows import REPS_CHANNEL

if TYPE_CHECKING:
    from gateway.store.pg_listen import PgListener

log = logging.getLogger(__name__)

REPS_POLL_S = 3.0


class Leadership:
    def __init__(
        self, app: web.Application, router: Router, front: RoutingFront, recover_after_s: float
    ) -> None:
        self.app = app
        self.router = router
        self.front = front
        self.recover_after_s = recover_after_s
        self._lock: object | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._reps: PgListener | None = None
        self._reps_poll: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from gateway.store.pg_locks import PgLeadership
        from gateway.store.postgres import PostgresStore

        store = self.app[STORE]
        if self.app[BUS].shared and isinstance(store, PostgresStore):
            lock = PgLeadership(store.url.dsn, self.on_lead)
            self._lock = lock
            await lock.start()
        else:
            await self.on_lead(True)

    async def on_lead(self, leading: bool) -> None:
        bus = self.app[BUS]
        if leading:
            await self.router.start()
            await self.front.approvals.start()
            self.front.leading = True
            await bus.lead(True)
            await self.router.reconcile()
            if bus.shared:
                self._reconciler = asyncio.create_task(self._reconcile())
            self._watch_reps()
            return
        self.front.leading = False
        await bus.lead(False)
        if self._reps is not None:
            await self._reps.stop()
            self._reps = None
        if self._reps_poll is not None:
            self._reps_poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reps_poll
            self._reps_poll = None
        await self._stop_reconciler()
        await self.router.stop()
        self.front.approvals.stop()

    def _watch_reps(self) -> None:
        """PostgreSQL: a rep added or changed while nodes run (`gateway reps add` /
        `update`, which NOTIFY at their commit) reaches the routing at once."""
        from gateway.store.pg_listen import PgListener
        from gateway.store.postgres import PostgresStore

        store = self.app[STORE]
        if isinstance(store, PostgresStore):
            self._reps = PgListener(store.url.dsn, REPS_CHANNEL, self.router.refresh_reps)
            self._reps.start()
        else:
            self._reps_poll = asyncio.create_task(self._poll_reps())

    async def _poll_reps(self) -> None:
        """SQLite: `gateway reps` writes the file beside this process (no NOTIFY there)."""
        while True:
            await asyncio.sleep(REPS_POLL_S)
            try:
                await self.router.refresh_reps()
            except Exception as exc:
                log.warning("routing: reading the reps again failed: %s", exc)

    async def _reconcile(self) -> None:
        while True:
            await asyncio.sleep(self.recover_after_s)
            try:
                await self.router.reconcile()
            except Exception as exc:
                log.warning("routing: reconciling queued conversations failed: %s", exc)

    async def _stop_reconciler(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None

    async def stop(self) -> None:
        from gateway.store.pg_locks import PgLeadership

        if isinstance(self._lock, PgLeadership):
            await self._lock.stop()
        elif self.front.leading:
            await self.on_lead(False)


__all__ = ["Leadership"]
