"""Opening an SQLite store's file: the lock that makes this process its only
writer, and the writer's and readers' connections."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

from gateway.errors import StoreError


def acquire_lock(db_path: Path) -> Any:
    """Only one process may write an SQLite store: the writer caches assume it."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise StoreError(
            f"another gateway process is using {db_path}; an SQLite store has one writer."
            " Stop the other process, or use PostgreSQL for several nodes."
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    """Row factory: rows as dicts by column name (the row converters take those)."""
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def connect_writer(path: Path, synchronous: str) -> sqlite3.Connection:
    """The writer thread's connection: WAL, so readers proceed while it commits."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = dict_row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection for the reader pool."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = dict_row
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
