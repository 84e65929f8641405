"""Opening the store a test runs on (`store_url`: SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore

AnyStore = SqliteStore | PostgresStore


async def open_store(url: str, **kwargs: Any) -> AnyStore:
    if url.startswith("sqlite:///"):
        return SqliteStore.open(Path(url.removeprefix("sqlite:///")), **kwargs)
    return await PostgresStore.open(url, **kwargs)
