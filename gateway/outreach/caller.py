"""The seam to the outbound call: what outreach needs from whoever places calls.

The phone side (the outbound call through Twilio's REST API, its media stream and
answering-machine detection) implements `OutboundCaller` and is kept under
`gateway.keys.OUTBOUND_CALLER`. Outreach calls `place`; the caller reports what
became of the call with `OutreachService.call_outcome(outreach_id, outcome)`.
"""

from __future__ import annotations

from typing import Protocol


class OutboundCaller(Protocol):
    async def place(
        self,
        *,
        to: str,
        conversation_id: int,
        customer_id: int,
        outreach_id: str,
        opening: str,
        voicemail: str,
    ) -> str:
        """Start a call to `to` (E.164); the agent opens with `opening` when a person
        answers, an answering machine gets `voicemail`. Returns Twilio's call SID;
        raises a `gateway.errors.ChannelError` when the call was not placed."""
        ...


class OutcomeSink(Protocol):
    """Where the caller reports a call's outcome (the `OutreachService`)."""

    async def call_outcome(self, outreach_id: str, outcome: str) -> None: ...


__all__ = ["OutboundCaller", "OutcomeSink"]
