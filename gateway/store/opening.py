"""`open_store(settings)`: the store `GATEWAY_DATABASE_URL` names.

Kept out of the composition root so that tools beside the gateway (`gateway reps`)
open the store the same way without importing every channel.
"""

from __future__ import annotations

from pathlib import Path

from gateway.errors import ConfigError
from gateway.protocols import Store
from gateway.settings import Settings
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import is_postgres


async def open_store(settings: Settings) -> Store:
    """The store `GATEWAY_DATABASE_URL` names: SQLite (the embedded default, one
    process) or PostgreSQL (several nodes). ConfigError naming the setting otherwise."""
    url = settings.store_url
    if url.startswith("sqlite:///"):
        return SqliteStore.open(
            Path(url.removeprefix("sqlite:///")),
            synchronous=settings.sqlite_synchronous,
            batch_max=settings.store_batch_max,
            outbox_lease_ms=int(settings.outbox_lease_s * 1000),
        )
    if is_postgres(url):
        from gateway.store.postgres import PostgresStore

        return await PostgresStore.open(
            url, pool_max=settings.database_pool_max,
            outbox_lease_ms=int(settings.outbox_lease_s * 1000),
        )  # fmt: skip
    raise ConfigError(
        f"GATEWAY_DATABASE_URL: unsupported database {url.split(':', 1)[0]!r};"
        " use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE"
    )
