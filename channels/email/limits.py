"""The email channel's loop limits: how many automatic answers go out, kept in the store.

Automatic mail (auto-replies, bounces, lists) is never answered at all (`autodetect`);
these caps stop what looks like a person but is a machine: a naive responder that
answers every mail, from one address (`GATEWAY_EMAIL_REPLIES_PER_HOUR` per sender) or
from a new address each time (`GATEWAY_EMAIL_REPLIES_PER_DOMAIN_PER_HOUR` for a whole
domain), and a flood from everywhere (`GATEWAY_EMAIL_REPLIES_TOTAL_PER_HOUR`). The
count lives in the store (`email_answers`), so a restart does not reset it and several
nodes share it. What is held back is stored for reps, not answered, and reported: an
`email.rate_limited` event, a warning in the log and `gateway_email_answers_held_back`.
Automatic mail dropped is counted in `gateway_email_automatic_dropped`, by its sign.
"""

from __future__ import annotations

import logging
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from gateway.errors import ConfigError
from gateway.protocols import Store
from gateway.settings import Settings

log = logging.getLogger("gateway.email.limits")

WINDOW_S = 3600.0


class AnswerLedger(Protocol):
    """Records one answer unless a cap is reached (gateway.store.answer_ledger)."""

    async def take(
        self, sender: str, domain: str, *, window_s: float, caps: tuple[int, int, int]
    ) -> str | None:
        """None when the answer was recorded, else the cap that held it back."""
        ...


class AnswerLimits:
    """The caps of the settings over a ledger, with the held-back counter."""

    def __init__(self, settings: Settings, ledger: AnswerLedger, registry: CollectorRegistry):
        self.caps = (
            settings.email_replies_per_hour,
            settings.email_replies_per_domain_per_hour,
            settings.email_replies_total_per_hour,
        )
        self.ledger = ledger
        self.held_back = Counter(
            "gateway_email_answers_held_back",
            "Email messages stored but not answered because an answer limit was reached, by"
            " limit (sender, domain, total).",
            ["limit"],
            registry=registry,
        )

        self.automatic = Counter(
            "gateway_email_automatic_dropped",
            "Automatic email (auto-replies, bounces, list mail, no-reply senders) accepted and"
            " dropped, never stored or answered, by the sign it was known by.",
            ["sign"],
            registry=registry,
        )

    def dropped(self, reason: str) -> None:
        """Count one automatic mail dropped; `reason` is `autodetect.auto_reason`'s."""
        self.automatic.labels(reason.partition(":")[0][:40]).inc()

    async def take(self, sender: str) -> str | None:
        """Count one answer to `sender`; None when it may go, else the cap reached."""
        domain = sender.rpartition("@")[2][:255] or "(none)"
        held = await self.ledger.take(sender[:320], domain, window_s=WINDOW_S, caps=self.caps)
        if held is not None:
            self.held_back.labels(held).inc()
        return held


def open_ledger(store: Store) -> AnswerLedger:
    """The answer ledger of the configured store (same database, same writer)."""
    from gateway.store.answer_ledger import PostgresAnswerLedger, SqliteAnswerLedger
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteAnswerLedger(store)
    if isinstance(store, PostgresStore):
        return PostgresAnswerLedger(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no email answer ledger for {type(store).__name__}")


__all__ = ["WINDOW_S", "AnswerLedger", "AnswerLimits", "open_ledger"]
