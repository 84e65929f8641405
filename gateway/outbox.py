"""The outbox: every reply reaches its channel, once, even across crashes and nodes.

A reply (agent, rep or system, on any channel) is stored `queued` in the same
transaction as its turn, claimed for `rules.OUTBOX_LEASE_MS` by the node that
stored it. That node sends it at once (`send`); a reply not sent then (a crash,
a provider error) is sent by the `run` loop of any node once it is due and
unclaimed. Each attempt ends in one of three ways:

- the channel's `publish` returns: the reply is marked `sent` and leaves the
  outbox (the channel may have recorded a provider id and a later status);
- it raises `DeliveryError` with `retry`: back to `queued`, due again after a
  backoff that doubles from `GATEWAY_OUTBOX_RETRY_BASE_S` up to
  `GATEWAY_OUTBOX_RETRY_MAX_S`, until `GATEWAY_OUTBOX_MAX_ATTEMPTS`;
- it raises `DeliveryError` without `retry`, or the attempts are used up: marked
  `failed` with its error code, which the store records as a `delivery.failed`
  event reps see in the conversation.

What a channel does with a reply whose previous attempt has no recorded outcome
(the process died while the provider was being asked: status `sending`) is the
channel's rule, documented in docs/reliability.md: email sends it again under
the same Message-ID, SMS does not send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from gateway.errors import DeliveryError, GatewayError
from gateway.models import Conversation, Customer, DeliveryStatus, Direction, Message
from gateway.protocols import ChannelRegistry, Pending, Store

log = logging.getLogger(__name__)

CLAIM_BATCH = 64


class Outbox:
    """Sends stored replies through their channels and records the outcome."""

    def __init__(
        self,
        store: Store,
        channels: ChannelRegistry,
        *,
        retry_base_s: float = 2.0,
        retry_max_s: float = 300.0,
        max_attempts: int = 8,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.channels = channels
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.max_attempts = max_attempts
        self.poll_s = poll_s
        self._task: asyncio.Task[None] | None = None

    def backoff_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt (1 = the first)."""
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempts - 1)))

    async def send(
        self, customer: Customer, conversation: Conversation, messages: Sequence[Message]
    ) -> None:
        """Send replies just stored by this node (claimed with their turn), in order."""
        for message in messages:
            if message.direction is Direction.OUTBOUND:
                await self.attempt(customer, conversation, message, attempts=0)

    async def mark_sent(self, messages: Sequence[Message]) -> None:
        """Replies delivered outside the channel's `publish` (the phone's live view
        said them while they were written): they leave the outbox as sent."""
        for message in messages:
            if message.direction is Direction.OUTBOUND:
                await self.store.set_delivery(message.id, DeliveryStatus.SENT)

    async def attempt(
        self, customer: Customer, conversation: Conversation, message: Message, *, attempts: int
    ) -> DeliveryStatus | None:
        """One attempt at `message` (tried `attempts` times before); returns the status
        it was marked with, or None when it stays queued for another attempt."""
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                raise DeliveryError("no_channel", f"no {message.channel.value} channel here")
            await channel.publish(customer, conversation, message)
        except DeliveryError as exc:
            return await self._failed(message, attempts, exc.code, str(exc), retry=exc.retry,
                                      not_before_s=exc.not_before_s,
                                      not_taken=exc.not_taken)  # fmt: skip
        except GatewayError as exc:  # a store hiccup, a channel's own error: try again
            return await self._failed(message, attempts, "error", str(exc), retry=True)
        except Exception as exc:  # never let one reply take the sender down
            log.exception("delivery of message %s raised", message.id)
            return await self._failed(message, attempts, "error", repr(exc), retry=True)
        await self.store.set_delivery(message.id, DeliveryStatus.SENT)
        return DeliveryStatus.SENT

    async def _failed(
        self, message: Message, attempts: int, code: str, why: str, *, retry: bool,
        not_before_s: float = 0.0, not_taken: bool = False,
    ) -> DeliveryStatus | None:  # fmt: skip
        tried = attempts + 1
        if retry and tried < self.max_attempts:
            delay = max(self.backoff_s(tried), not_before_s)
            log.info("message %s not delivered (%s, attempt %d): again in %.1f s: %s",
                     message.id, code, tried, delay, why)  # fmt: skip
            await self.store.retry_delivery(message.id, int(delay * 1000), code,
                                            not_taken=not_taken)  # fmt: skip
            return None
        log.warning("message %s not delivered (%s) after %d attempt(s): %s",
                    message.id, code, tried, why)  # fmt: skip
        await self.store.set_delivery(message.id, DeliveryStatus.FAILED, error_code=code[:20])
        return DeliveryStatus.FAILED

    # ------------------------------------------------------------- the loop

    async def sweep(self) -> int:
        """Claim and attempt every reply that is due now; returns how many were tried."""
        tried = 0
        while True:
            batch = await self.store.claim_outbox(CLAIM_BATCH)
            if not batch:
                return tried
            for pending in batch:
                await self._attempt_pending(pending)
            tried += len(batch)
            if len(batch) < CLAIM_BATCH:
                return tried

    async def _attempt_pending(self, pending: Pending) -> None:
        message = pending.message
        try:
            customer = await self.store.get_customer(message.customer_id)
            conversation = await self.store.get_conversation(message.conversation_id)
        except GatewayError as exc:
            log.warning("message %s: cannot read its conversation: %s", message.id, exc)
            return  # its claim runs out and it is tried again
        await self.attempt(customer, conversation, message, attempts=pending.attempts)

    async def start(self, *, single_node: bool) -> None:
        """Start the loop. A single node first takes back every claim (the process
        that held them is gone), so replies left by a crash go out at once: call it
        before anything of this process stores a reply."""
        if single_node:
            waiting = await self.store.release_outbox()
            if waiting:
                log.info("outbox: %d replies waiting from before the start", waiting)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except GatewayError as exc:
                log.warning("outbox sweep failed: %s", exc)
            except Exception:
                log.exception("outbox sweep raised")
            await asyncio.sleep(self.poll_s)


__all__ = ["CLAIM_BATCH", "Outbox"]
