"""Drive the embedded policy the way the dispatcher does, without the store:
the agent state of each decision is fed back into the next turn, and tool
events are recorded in an in-memory `UsageLedger`."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.models import (
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    HandoffBrief,
    Identity,
    IdentityKind,
    Message,
    Reply,
    Transfer,
    Verification,
)
from gateway.protocols import Brain, Decision, EventDraft, TurnContext

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


class MemoryLedger:
    """The `UsageLedger` protocol over a list: (customer id, kind, when)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, datetime]] = []

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int:
        return sum(1 for c, k, at in self.rows if c == customer_id and k == kind and at >= since)

    def record(self, customer_id: int, events: tuple[EventDraft, ...], at: datetime) -> None:
        self.rows.extend((customer_id, e.kind, at) for e in events)


def customer(
    customer_id: int = 1, *, account: str | None = "C-1001", name: str | None = "Jane Doe"
) -> Customer:
    identity = Identity(
        kind=IdentityKind.WEBCHAT,
        value=f"visitor-{customer_id}",
        verified=Verification.HMAC if account else Verification.SIGNED_TOKEN,
    )
    return Customer(
        id=customer_id,
        display_name=name,
        account_ref=account,
        identities=(identity,),
        created_at=NOW,
    )


class Chat:
    """One conversation with the policy."""

    def __init__(
        self,
        policy: Brain,
        ledger: MemoryLedger,
        who: Customer,
        channel: ChannelKind = ChannelKind.WEBCHAT,
    ) -> None:
        self.policy = policy
        self.ledger = ledger
        self.customer = who
        self.channel = channel
        self.state: dict[str, object] = {}
        self.decisions: list[Decision] = []
        self._seq = 0

    async def send(
        self, text: str, history: tuple[Message, ...] = (), *, confidence: float | None = None
    ) -> Decision:
        """One customer message; `history`: the customer's earlier messages (any channel),
        which must have smaller `seq`s than the ones this chat gives its messages."""
        self._seq += 1
        conversation = Conversation(
            id=self.customer.id * 100,
            customer_id=self.customer.id,
            state=ConversationState.BOT,
            channel=self.channel,
            channels=(self.channel,),
            agent_state=dict(self.state),
            version=self._seq,
            created_at=NOW,
            updated_at=NOW,
        )
        seq = self._seq + max((m.seq for m in history), default=0)
        message = Message(
            id=10_000 + seq,
            conversation_id=conversation.id,
            customer_id=self.customer.id,
            seq=seq,
            direction=Direction.INBOUND,
            author=AuthorKind.CUSTOMER,
            channel=self.channel,
            text=text,
            confidence=confidence,  # a phone transcript's
            created_at=NOW,
        )
        turn = TurnContext(
            customer=self.customer,
            conversation=conversation,
            message=message,
            history=(*history, message),
        )
        decision = await self.policy.respond(turn)
        self.state = dict(decision.agent_state)
        self.ledger.record(self.customer.id, decision.events, datetime.now(UTC))
        self.decisions.append(decision)
        return decision


def reply_text(decision: Decision) -> str:
    return " ".join(a.text for a in decision.actions if isinstance(a, Reply))


def transfer(decision: Decision) -> Transfer | None:
    found = [a for a in decision.actions if isinstance(a, Transfer)]
    return found[0] if found else None


def brief(decision: Decision) -> HandoffBrief:
    t = transfer(decision)
    assert t is not None, f"expected a transfer, got {decision.actions}"
    return t.brief


def kinds(decision: Decision) -> list[str]:
    return [e.kind for e in decision.events]


def refusals(decision: Decision) -> list[str]:
    return [str(e.data.get("rule")) for e in decision.events if e.kind == "tool.refused"]
