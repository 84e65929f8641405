"""The real PostgreSQL and Redis the scale-out tests run against.

Each test gets a database of its own, copied from a migrated template (fast),
dropped afterwards, and a Redis key prefix of its own. Where the services are
not running (a laptop), those tests skip and say why; with
GATEWAY_REQUIRE_SERVICES=1 (CI, `.ci/run`) a missing service fails them.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEMPLATE = f"gwpg_template_{os.getpid()}"


def required() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1"


def unavailable(what: str, exc: BaseException) -> None:
    """Skip (on a user's machine) or fail (CI) a test whose service is not there."""
    reason = (
        f"{what} is not reachable ({type(exc).__name__}: {exc}); these tests need a real"
        f" {what} (GATEWAY_TEST_PG_URL / GATEWAY_TEST_REDIS_URL); the SQLite runs cover"
        " the embedded store"
    )
    if required():
        pytest.fail(f"GATEWAY_REQUIRE_SERVICES=1: {reason}")
    pytest.skip(reason)


def database_url(name: str) -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def admin(sql: str) -> None:
    """Run one statement on the server's admin database (sync: fixtures run it outside
    the test's event loop)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_template() -> None:
    """A migrated database every test database is copied from."""
    from gateway.store import migrate
    from gateway.store.urls import PgUrl

    admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    admin(f"CREATE DATABASE {TEMPLATE}")
    migrate.upgrade(PgUrl.parse(database_url(TEMPLATE)).sqlalchemy)


def fresh_database(empty: bool = False) -> str:
    name = f"gwpg_{uuid.uuid4().hex[:12]}"
    admin(f"CREATE DATABASE {name}" + ("" if empty else f" TEMPLATE {TEMPLATE}"))
    return name


def drop_database(name: str) -> None:
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def redis_prefix() -> str:
    return f"gwtest:{uuid.uuid4().hex[:10]}"


def redis_ping() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    finally:
        client.close()
