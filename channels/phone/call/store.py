"""What a phone call writes into its conversation, besides the caller's input
(which goes through the dispatcher):

- the prompts it says (greeting, hold, goodbye) as agent messages, with events
  such as `phone.call_started`, marked `sent` at once (the call says them, not
  the outbox);
- once an agent message has been spoken (its last mark came back, or it was
  cut), its voice timing, and when it was cut, the text the caller heard;
- events alone (`phone.call_ended`).

A write retries on a version conflict: the agent may move the conversation on
meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable

from channels.phone.call.playback import Played
from channels.phone.services import CallInfo
from gateway.errors import ConflictError
from gateway.models import ChannelKind, DeliveryStatus, Message, VoiceTiming
from gateway.protocols import EventDraft, OutboundDraft, Store, TurnRecord, TurnStored


class CallStore:
    """The writes of one call to its conversation (`info.conversation`, kept current)."""

    def __init__(self, store: Store, info: CallInfo) -> None:
        self._store = store
        self._info = info

    async def line(self, text: str, events: Iterable[EventDraft] = ()) -> Message:
        """Store something the agent is about to say (a prompt) in the conversation."""
        outbound = (OutboundDraft(text=text, channel=ChannelKind.PHONE),)
        stored = await self.record(outbound, tuple(events))
        message = stored.messages[0]
        # The call says it itself, now: it leaves the outbox as handed to the call.
        message = await self._store.set_delivery(message.id, DeliveryStatus.SENT)
        self._info.message_ids.append(message.id)
        return message

    async def played(self, played: Played) -> None:
        """An agent message has been spoken: store its voice timing, and the text the
        caller heard when that is not the whole message."""
        text = None
        if not played.complete and " ".join(played.heard.split()) != " ".join(played.text.split()):
            text = played.heard
        timing = None
        if played.start_ms is not None and played.end_ms is not None:
            timing = VoiceTiming(start_ms=played.start_ms, end_ms=played.end_ms)
        if text is None and timing is None:
            return
        await self._store.amend_message(
            played.message_id, text=text, timing=timing, reason=played.reason
        )

    async def record(
        self, outbound: tuple[OutboundDraft, ...], events: tuple[EventDraft, ...]
    ) -> TurnStored:
        """Store `outbound` messages and `events` in the call's conversation."""
        conversation = self._info.conversation
        assert conversation is not None, "begin() opens the conversation first"
        store = self._store
        version = conversation.version
        for attempt in range(3):
            turn = TurnRecord(
                conversation_id=conversation.id,
                expected_version=version,
                outbound=outbound,
                events=events,
            )
            try:
                stored = await store.record_turn(turn)
            except ConflictError:  # the agent moved the conversation on meanwhile
                if attempt == 2:
                    raise
                version = (await store.get_conversation(conversation.id)).version
                continue
            self._info.conversation = stored.conversation
            return stored
        raise AssertionError("unreachable")


__all__ = ["CallStore"]
