"""The record of a warm transfer: every step is a `transfer.<step>` event in the
conversation's log (transfer id, the caller's call SID, and from the first ring
on the rep, their call SID and the attempt), written with the conversation's
state where the step changes it (connected: `with_rep`), counted in
`gateway_transfer_steps_total`, and told to the `listeners` (the rep console)
once it is stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from channels.phone.transfer.state import Transfer, TransferState
from gateway.errors import ConflictError
from gateway.metrics import Metrics
from gateway.models import ConversationState
from gateway.protocols import EventDraft, Store, TurnRecord

if TYPE_CHECKING:
    from channels.phone.channel import TransferListener

log = logging.getLogger("gateway.phone.transfer")


class TransferEvents:
    """Writes the events of every transfer of this process; see the module docstring."""

    def __init__(
        self, store: Store, metrics: Metrics | None, listeners: list[TransferListener]
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.listeners = listeners  # shared with the channel, which may add to it later

    async def step(
        self,
        transfer: Transfer,
        state: TransferState,
        *,
        conversation_state: ConversationState | None = None,
        **data: Any,
    ) -> None:
        """`transfer` has reached `state`: its `transfer.<state>` event, with `data`."""
        await self.record(transfer, f"transfer.{state.value}", data, conversation_state)

    async def record(
        self,
        transfer: Transfer,
        kind: str,
        data: dict[str, Any],
        conversation_state: ConversationState | None = None,
    ) -> None:
        """Store the event `kind` of `transfer` (moving the conversation to
        `conversation_state` if given), count it, and tell the listeners."""
        rep = transfer.rep
        body = {"transfer_id": transfer.id, "call_sid": transfer.caller_sid, **data}
        if rep is not None and kind != "transfer.requested":
            body.update(rep_id=rep.rep_id, rep_name=rep.name, rep_call_sid=transfer.rep_sid,
                        attempt=transfer.attempt)  # fmt: skip
        log.info("transfer %s: %s %s", transfer.id, kind, data.get("reason", ""))
        if self.metrics is not None and kind != "transfer.requested":
            step = kind.removeprefix("transfer.")
            if step == "rep_failed":
                step = f"rep_{data.get('outcome', 'failed')}"
            self.metrics.transfer_steps.labels(step).inc()
        event = EventDraft(kind=kind, data=body)
        for attempt in range(3):
            version = (await self.store.get_conversation(transfer.conversation_id)).version
            record = TurnRecord(conversation_id=transfer.conversation_id, expected_version=version,
                                events=(event,), state=conversation_state)  # fmt: skip
            try:
                await self.store.record_turn(record)
                break
            except ConflictError:  # the agent or a rep moved the conversation on meanwhile
                if attempt == 2:
                    raise
        for listener in list(self.listeners):
            try:
                await listener(transfer.conversation_id, kind, body)
            except Exception:  # a console that is not told never stops the call's transfer
                log.exception("transfer %s: a listener failed on %s", transfer.id, kind)


__all__ = ["TransferEvents"]
