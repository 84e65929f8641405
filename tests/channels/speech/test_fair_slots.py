"""FairSlots: per-owner queues served round-robin, owners with nothing running first."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from channels.speech.fair_slots import FairSlots


async def _job(
    slots: FairSlots, owner: Hashable | None, name: str, order: list[str], gate: asyncio.Event
) -> None:
    key = await slots.acquire(owner)
    order.append(name)
    await gate.wait()
    slots.release(key)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_call_with_nothing_running_goes_before_a_busy_calls_backlog() -> None:
    slots, order, gate = FairSlots(1), [], asyncio.Event()
    busy = [asyncio.create_task(_job(slots, "A", f"a{i}", order, gate)) for i in range(5)]
    await _settle()
    other = asyncio.create_task(_job(slots, "B", "b0", order, gate))
    await _settle()
    assert order == ["a0"]  # A holds the slot, four more of A's wait, then B
    gate.set()
    await asyncio.gather(*busy, other)
    assert order == ["a0", "b0", "a1", "a2", "a3", "a4"]


async def test_waiting_owners_are_served_in_turn() -> None:
    slots, order, gate = FairSlots(1), [], asyncio.Event()
    first = asyncio.create_task(_job(slots, "X", "x0", order, gate))
    await _settle()
    tasks = [asyncio.create_task(_job(slots, o, f"{o.lower()}{i}", order, gate))
             for o in ("A", "B") for i in (1, 2, 3)]  # fmt: skip
    await _settle()
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["x0", "a1", "b1", "a2", "b2", "a3", "b3"]


async def test_no_slot_idles_while_only_a_busy_owner_waits() -> None:
    slots, order, gate = FairSlots(2), [], asyncio.Event()
    tasks = [asyncio.create_task(_job(slots, "A", f"a{i}", order, gate)) for i in range(3)]
    await _settle()
    assert order == ["a0", "a1"]  # both slots used by the one owner: nobody else waits
    assert slots.running("A") == 2 and slots.waiting == 1
    gate.set()
    await asyncio.gather(*tasks)
    assert slots.running("A") == 0 and slots.waiting == 0


async def test_a_job_cancelled_while_waiting_holds_nothing() -> None:
    slots, order, gate = FairSlots(1), [], asyncio.Event()
    running = asyncio.create_task(_job(slots, "A", "a0", order, gate))
    await _settle()
    dropped = asyncio.create_task(_job(slots, "A", "a1", order, gate))
    later = asyncio.create_task(_job(slots, "B", "b0", order, gate))
    await _settle()
    dropped.cancel()
    await _settle()
    assert slots.waiting == 1
    gate.set()
    await asyncio.gather(running, later)
    assert dropped.cancelled()
    assert order == ["a0", "b0"]
    assert slots.waiting == 0 and slots.running("A") == 0 and slots.running("B") == 0


async def test_no_owner_is_first_come_first_served() -> None:
    slots, order, gate = FairSlots(1), [], asyncio.Event()
    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(_job(slots, None, f"n{i}", order, gate)))
        await _settle()
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["n0", "n1", "n2", "n3"]


async def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="release without acquire"):
        FairSlots(1).release("A")
    with pytest.raises(ValueError, match="at least 1"):
        FairSlots(0)
