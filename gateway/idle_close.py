"""The `assumed` resolution: a bot conversation whose agent answered, and whose
customer then said nothing more for `GATEWAY_ASSUMED_RESOLVED_AFTER_S`, is closed
with the event `conversation.resolved` {"how": "assumed", "intent": ...}
(agent/resolution.py; the Intercom Fin / Zendesk "assumed resolution").

Every node sweeps every `after / 2` seconds (at most once a minute). The close is
written only at the version the sweep read and with no customer message waiting
(gateway/store/idle.py), so each conversation is closed, and its event stored,
exactly once: whichever node or sweep comes second finds it moved on. Nothing is
kept in memory: after a restart the next sweep finds what is still due.

A customer who writes after the close starts a new conversation (the store opens
one for a customer with none open), answered by the agent as usual, with the
earlier messages in the customer's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from agent.resolution import assumed_event
from gateway.keys import SETTINGS, STORE
from gateway.models import Conversation, ConversationState
from gateway.protocols import TurnRecord
from gateway.store.idle import close_if_quiet, idle_answered
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

BATCH = 200  # conversations closed per query; a sweep queries until none is due
MAX_INTERVAL_S = 60.0


def close_record(conversation: Conversation) -> TurnRecord | None:
    """The close of a quiet conversation whose agent's answer still stands, else None."""
    event = assumed_event(conversation.agent_state)
    if event is None:
        return None
    state = {k: v for k, v in conversation.agent_state.items() if k != "answered"}
    return TurnRecord(
        conversation_id=conversation.id,
        expected_version=conversation.version,
        events=(event,),
        agent_state=state,  # counted once: the answer is no longer pending
        state=ConversationState.CLOSED,
    )


async def sweep_once(store: SqliteStore | PostgresStore, after_s: float) -> int:
    """Close every conversation quiet for `after_s` seconds; returns how many this call
    closed (another node may have closed some of those it saw)."""
    closed = 0
    skipped: set[int] = set()
    while True:
        cutoff = datetime.now(UTC) - timedelta(seconds=after_s)
        due = [c for c in await idle_answered(store, cutoff, BATCH) if c.id not in skipped]
        if not due:
            return closed
        for conversation in due:
            record = close_record(conversation)
            if record is not None and await close_if_quiet(store, record) is not None:
                closed += 1
            else:  # moved on meanwhile, or a message is waiting: its turn decides
                skipped.add(conversation.id)


async def idle_close_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the sweep while the app runs (off with GATEWAY_ASSUMED_RESOLVED_AFTER_S=0)."""
    after = app[SETTINGS].assumed_resolved_after_s
    store = app[STORE]
    if not after or not isinstance(store, SqliteStore | PostgresStore):
        yield
        return
    task = asyncio.create_task(_run(store, after))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run(store: SqliteStore | PostgresStore, after: float) -> None:
    interval = min(after / 2, MAX_INTERVAL_S)
    while True:
        try:
            closed = await sweep_once(store, after)
        except Exception as exc:  # the database is unwell: the next sweep tries again
            log.warning("assumed-resolution sweep failed: %s", exc)
        else:
            if closed:
                log.info("closed %d quiet conversations as assumed resolved", closed)
        await asyncio.sleep(interval)


__all__ = ["close_record", "idle_close_ctx", "sweep_once"]
