"""The console's login throttle on each store backend: limits per username and per
address, kept in the store, bounded by its window, and parallel guesses counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.protocols import Store
from gateway.routing.throttle import (
    LoginThrottle,
    LoginThrottled,
    address_key,
    open_login_log,
)
from gateway.settings import load_settings
from gateway.store.opening import open_store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(load_settings(data_dir=tmp_path, database_url=store_url))
    yield opened
    await opened.close()


async def fail(throttle: LoginThrottle, username: str, remote: str) -> None:
    keys = await throttle.begin(username, remote)
    await throttle.end(keys, ok=False)


async def test_limits_per_username_and_address_age_out_and_rows_are_pruned(store: Store) -> None:
    clock = Clock()
    log = open_login_log(store)
    throttle = LoginThrottle(log, per_user=3, per_address=5, window_s=600, clock=clock)
    for _ in range(3):
        await fail(throttle, "ann", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        await throttle.begin("ann", "10.0.0.2")  # the username, from anywhere
    await fail(throttle, "bob", "10.0.0.1")
    await fail(throttle, "cid", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        await throttle.begin("dee", "10.0.0.1")  # the address, for any username
    keys = await throttle.begin("dee", "10.0.0.9")  # another address is free
    await throttle.end(keys, ok=True)

    # A restart (a new throttle on the same store) keeps the locks.
    restarted = LoginThrottle(open_login_log(store), per_user=3, per_address=5, window_s=600,
                              clock=clock)  # fmt: skip
    with pytest.raises(LoginThrottled):
        await restarted.begin("ann", "10.0.0.3")

    # Once the window has passed they are lifted, and the next failure deletes the old
    # rows: the table holds one window's failures, never a growing history.
    clock.now += timedelta(seconds=601)
    await fail(restarted, "eve", "10.0.0.4")
    counts = await log.count_failures(
        ["user:ann", "user:eve", "addr:10.0.0.1", "addr:10.0.0.4"], EPOCH
    )
    assert counts == {"user:eve": 1, "addr:10.0.0.4": 1}
    keys = await restarted.begin("ann", "10.0.0.1")
    await restarted.end(keys, ok=False)


async def test_a_success_clears_the_username_but_not_the_address(store: Store) -> None:
    log = open_login_log(store)
    throttle = LoginThrottle(log, per_user=3, per_address=10, clock=Clock())
    for _ in range(2):
        await fail(throttle, "ann", "10.0.0.1")
    keys = await throttle.begin("ann", "10.0.0.1")
    await throttle.end(keys, ok=True)
    counts = await log.count_failures(["user:ann", "addr:10.0.0.1"], EPOCH)
    assert counts == {"addr:10.0.0.1": 2}


async def test_parallel_guesses_count_before_they_are_checked(store: Store) -> None:
    throttle = LoginThrottle(open_login_log(store), per_user=3, per_address=100, clock=Clock())
    results = await asyncio.gather(
        *(throttle.begin("ann", f"10.0.1.{n}") for n in range(6)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 3
    assert all(isinstance(r, LoginThrottled) for r in results if r not in admitted)
    for keys in admitted:
        assert isinstance(keys, tuple)
        await throttle.end(keys, ok=None)  # cut short: nothing recorded, nothing in flight
    keys = await throttle.begin("ann", "10.0.1.1")
    await throttle.end(keys, ok=None)


def test_address_keys() -> None:
    assert address_key("192.0.2.7") == "addr:192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "addr:192.0.2.7"
    # One IPv6 subscriber holds a /64: its addresses count together.
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") == "addr:2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key(None) == "addr:unknown"
