"""The seam to the outbound call: what outreach needs from whoever places calls.

The phone side (channels/phone/outbound/: the outbound call through Twilio's REST
API, its media stream and answering-machine detection) implements
`gateway.protocols.OutboundCaller` and is kept under `gateway.keys.OUTBOUND_CALLER`.
Outreach calls `place`; the caller reports what became of the call through its
`outcome_hook`, which `setup_outreach` points at `OutreachService.call_outcome`.
"""

from __future__ import annotations

from typing import Protocol

from gateway.protocols import OutboundCaller


class OutcomeSink(Protocol):
    """Where the caller reports a call's outcome (the `OutreachService`)."""

    async def call_outcome(self, outreach_id: str, outcome: str) -> None: ...


__all__ = ["OutboundCaller", "OutcomeSink"]
