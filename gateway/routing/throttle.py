"""The console's login throttle: wrong passwords counted per username and per
client address, in the store, so that a restart clears no lock.

- `MAX_FAILURES` wrong passwords for one username within `WINDOW_S` lock that
  username until the oldest of them is older than the window;
- `per_address` wrong passwords from one client address (an IPv6 address counts
  by its /64, what one subscriber usually holds) within the window lock every
  login from there: guesses spread across many usernames are throttled too.

A refused login is not checked (no scrypt, nothing recorded), so a locked key's
row count stops growing; rows older than the window are deleted whenever a
failure is recorded, so the table holds at most one window's failures and is
never wiped whole (a wipe would lift every lock). Attempts still being checked
count as failures until they finish, so parallel guesses cannot slip past the
limit between the check and the record (per node).

Behind a reverse proxy every client has the proxy's address: set
`GATEWAY_CONSOLE_LOGIN_FAILURES_PER_ADDRESS` with that in mind, or have the
proxy pass the client's address to aiohttp.
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.errors import ConfigError
from gateway.protocols import Store

MAX_FAILURES = 5  # wrong passwords for one username ...
WINDOW_S = 15 * 60  # ... within this long: further logins refused until it passes


class LoginThrottled(Exception):
    """Too many wrong passwords for this username or from this address recently."""


class LoginLog(Protocol):
    """Where failures are kept (store/sqlite_logins.py, store/pg_logins.py)."""

    async def count_failures(self, keys: Sequence[str], since: datetime) -> dict[str, int]:
        """How many failures each key has at or after `since` (absent: none)."""
        ...

    async def add_failure(self, keys: Sequence[str], at: datetime, forget_before: datetime) -> None:
        """Record one failure for each key; delete every failure before `forget_before`."""
        ...

    async def clear_failures(self, key: str) -> None: ...


def user_key(username: str) -> str:
    return "user:" + username


def address_key(remote: str | None) -> str:
    """The throttled key of a client address (an IPv6 address by its /64)."""
    if not remote:
        return "addr:unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return "addr:" + remote[:100]  # a unix socket path or the like
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "addr:" + str(address.ipv4_mapped)
        return "addr:" + str(ipaddress.IPv6Network((address, 64), strict=False))
    return "addr:" + str(address)


class LoginThrottle:
    """Decides whether a login may be checked, and records how it went."""

    def __init__(
        self,
        log: LoginLog,
        *,
        per_address: int,
        per_user: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = log
        self.per_user = per_user
        self.per_address = per_address
        self.window = timedelta(seconds=window_s)
        self.clock = clock
        self._checking: collections.Counter[str] = collections.Counter()

    async def begin(self, username: str, remote: str | None) -> tuple[str, str]:
        """The attempt's keys, counted as in flight; LoginThrottled when either key is
        over its limit (then nothing is in flight). Pair with `end`."""
        keys = (user_key(username), address_key(remote))
        counts = await self.log.count_failures(keys, self.clock() - self.window)
        limits = (self.per_user, self.per_address)
        for key, limit in zip(keys, limits, strict=True):
            if counts.get(key, 0) + self._checking[key] >= limit:
                raise LoginThrottled(key)
        self._checking.update(keys)
        return keys

    async def end(self, keys: tuple[str, str], *, ok: bool | None) -> None:
        """The attempt is over: a failure is recorded for both keys; a success clears
        the username's failures (not the address's: one known password must not
        reset the count of guesses at others); None (it was cut short) records nothing."""
        try:
            if ok is None:
                return
            if ok:
                await self.log.clear_failures(keys[0])
            else:
                now = self.clock()
                await self.log.add_failure(keys, now, now - self.window)
        finally:
            self._checking.subtract(keys)
            for key in keys:
                if self._checking[key] <= 0:
                    del self._checking[key]


def open_login_log(store: Store) -> LoginLog:
    """The login log of the configured store (same database, same writer)."""
    from gateway.store.sqlite import SqliteStore
    from gateway.store.sqlite_logins import SqliteLoginLog

    if isinstance(store, SqliteStore):
        return SqliteLoginLog(store)
    from gateway.store.pg_logins import PostgresLoginLog
    from gateway.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return PostgresLoginLog(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no login log for {type(store).__name__}")


__all__ = [
    "MAX_FAILURES",
    "WINDOW_S",
    "LoginLog",
    "LoginThrottle",
    "LoginThrottled",
    "address_key",
    "open_login_log",
    "user_key",
]
