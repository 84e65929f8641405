"""`OutreachService`: takes business events (`submit`) and sends each one once.

Every node runs the sender loop: it claims due outreach rows (store.py) and moves
each one through its state machine:

- resolve the customer and the channel order (reach.py); nothing to reach them on,
  or every channel opted out: `skipped` (`opted_out`, `unsubscribed`, `no_channel`);
- the frequency cap (`GATEWAY_OUTREACH_MAX_PER_DAY`): `skipped` (`frequency_cap`);
- quiet hours in the customer's local time for a text or a call
  (`GATEWAY_OUTREACH_QUIET_HOURS`): `deferred`, due when they end (the row is the
  timer: a restart loses nothing);
- send on the first channel left: the message is stored in the customer's
  conversation with an `outreach.sent` event and the agent's context, and the row
  records it (`sending`), in one transaction; the outbox then delivers it. Sent:
  `sent`. Failed for good: that channel is marked tried and the next one is used;
  none left: `failed`. Still retrying: looked at again later;
- a call (`OUTBOUND_CALLER`) stays `sending` until the caller reports its outcome
  (`call_outcome`): a person or a voicemail is `delivered`; no answer, busy or a
  failure moves on to the next channel.

Nothing is sent twice: the event id is unique in the store, a row is held by one
sender at a time, and once its message is stored the row is only ever finished
from that message's delivery state (the outbox owns the one send).

The send rate (`GATEWAY_OUTREACH_SEND_RATE`, and a campaign's own): before a send
the sender takes the next free slot of the pace from the database (campaign_store.py)
and waits for it; then it checks that the row is still its own and still to be sent
(a campaign paused or cancelled meanwhile: it lets the row go), and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.errors import ChannelError, GatewayError, NotFoundError
from gateway.models import AuthorKind, Customer, DeliveryStatus, IdentityKind
from gateway.outbox import Outbox
from gateway.outreach import reach
from gateway.outreach.caller import OutboundCaller
from gateway.outreach.campaign_store import CampaignStore
from gateway.outreach.campaigns import TEXT_TYPE, rule_of
from gateway.outreach.models import CallOutcome, Outreach, OutreachChannel, OutreachEvent
from gateway.outreach.models import OutreachState as S
from gateway.outreach.pace import Pace
from gateway.outreach.respect import Unsubscribes, parse_window, quiet_until, zones_of
from gateway.outreach.rules import Rendered, Rule, Rules, template_values
from gateway.outreach.store import OutreachStore
from gateway.protocols import EventDraft, OutboundDraft, Store, TurnRecord
from gateway.store.rows import to_ms

log = logging.getLogger(__name__)

CLAIM_BATCH = 32
RECHECK_S = 5.0  # a message the outbox is still retrying is looked at again after this
DAY_MS = 86_400_000
SENT_STATES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
LOST_STATES = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


class InvalidEvent(ValueError):
    """An event the rules cannot send (unknown type, data its texts need is missing)."""


class OutreachService:
    """See the module docstring. `start` runs the sender loop; `stop` ends it."""

    def __init__(
        self,
        store: Store,
        outreach: OutreachStore,
        outbox: Outbox,
        rules: Rules,
        *,
        backend: reach.ContactBook | None = None,
        unsubscribes: Unsubscribes | None = None,
        caller: Callable[[], OutboundCaller | None] = lambda: None,
        online: Callable[[Customer], bool] = lambda _: False,
        quiet_hours: str = "",
        fallback_tz: str = "UTC",
        max_per_day: int = 0,
        lease_s: float = 60.0,
        call_timeout_s: float = 300.0,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        campaigns: CampaignStore | None = None,
        send_rate: float = 0.0,
    ) -> None:
        self.store, self.outreach, self.outbox, self.rules = store, outreach, outbox, rules
        self.backend, self.unsubscribes = backend, unsubscribes
        self.caller, self.online = caller, online
        self.window = parse_window(quiet_hours)
        self.fallback_tz, self.max_per_day = fallback_tz, max_per_day
        self.lease_ms, self.call_timeout_s = int(lease_s * 1000), call_timeout_s
        self.poll_s, self.clock = poll_s, clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.campaigns, self.send_rate = campaigns, send_rate
        # Rows claimed at once: about 4 s of sends at the rate, so a claim never waits
        # long behind the pace (and a new business event is not held up behind it).
        self.claim_batch = max(1, min(CLAIM_BATCH, int(send_rate * 4))) if send_rate else (
            CLAIM_BATCH)  # fmt: skip
        self.pace = Pace(campaigns, send_rate, clock)

    def wake(self) -> None:
        """Look for due outreach now (a campaign created or resumed)."""
        self._wake.set()

    # ------------------------------------------------------------- the API

    def check(self, event: OutreachEvent) -> Rule:
        """The event's rule; InvalidEvent when it cannot be sent as it is."""
        rule = self.rules.get(event.type)
        if rule is None:
            known = ", ".join(sorted(self.rules.types))
            raise InvalidEvent(f"type: unknown event type {event.type!r} (known: {known})")
        values = template_values(event.data, None)
        missing = sorted(rule.fields() - set(values))
        if missing:
            raise InvalidEvent(f"data: the {event.type} texts need {', '.join(missing)}")
        if event.channel is OutreachChannel.CALL and not rule.call:
            raise InvalidEvent(f"channel: calls are not allowed for {event.type}")
        return rule

    async def submit(self, event: OutreachEvent) -> tuple[Outreach, bool]:
        """Store the event (once per event id) and wake the sender; returns the
        outreach and whether it is new. InvalidEvent for an event that cannot go out."""
        self.check(event)
        outreach_id = "or_" + secrets.token_hex(12)
        found, created = await self.outreach.insert(outreach_id, event, to_ms(self.clock()))
        if created:
            self._wake.set()
        return found, created

    async def get(self, outreach_id: str) -> Outreach:
        """The outreach, `delivered` once its message is (NotFoundError if unknown)."""
        found = await self.outreach.get(outreach_id)
        if found is None:
            raise NotFoundError(f"no outreach {outreach_id!r}")
        if found.state is S.SENT and found.message_id is not None:
            status, _ = await self.outreach.message_status(found.message_id)
            if status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
                return found.model_copy(update={"state": S.DELIVERED})
        return found

    async def call_outcome(self, outreach_id: str, outcome: str) -> None:
        """The caller's report on an outreach call: a person or a voicemail is
        `delivered`; anything else moves on to the next channel (at once)."""
        result = CallOutcome(outcome)
        found = await self.outreach.get(outreach_id)
        if (
            found is None
            or found.channel is not OutreachChannel.CALL
            or found.state is not S.SENDING
        ):
            log.info("outreach %s: call outcome %s ignored", outreach_id, result.value)
            return
        now = to_ms(self.clock())
        if result in (CallOutcome.HUMAN, CallOutcome.MACHINE):
            await self.outreach.update(outreach_id, now, state=S.DELIVERED.value,
                                       outcome=result.value, sent_at=now, due_at=None,
                                       claimed_until=None)  # fmt: skip
            return
        await self.outreach.update(outreach_id, now, outcome=result.value)
        await self._next(found, result.value)  # no answer, busy, failed: the next channel

    async def mail_extras(self, message_id: int) -> tuple[str, dict[str, str]] | None:
        """For the email channel: (subject, headers) of an outreach mail, or None for
        any other message (see channels/email/channel.py `extras`)."""
        found = await self.outreach.by_message(message_id)
        if found is None or found.customer_id is None:
            return None
        rule = await self.rule_for(found)
        if rule is None:
            return None
        customer = await self.store.get_customer(found.customer_id)
        texts = rule.render(template_values(found.event.data, customer.display_name))
        address = reach.first(customer, IdentityKind.EMAIL)
        headers = self.unsubscribes.headers(address) if self.unsubscribes and address else {}
        return texts.email_subject, headers

    def unsubscribes_address(self, token: str) -> str | None:
        """The address an unsubscribe link was signed for, or None."""
        return self.unsubscribes.address(token) if self.unsubscribes is not None else None

    # ------------------------------------------------------------ the loop

    async def sweep(self) -> int:
        """Claim and work on every due outreach; returns how many were worked on."""
        done = 0
        while True:
            now = to_ms(self.clock())
            batch = await self.outreach.claim(self.claim_batch, self.lease_ms, now)
            for item in batch:
                try:
                    await self.work(item, held_until=now + self.lease_ms)
                except GatewayError as exc:  # a store hiccup: its claim runs out, tried again
                    log.warning("outreach %s: %s", item.id, exc)
                except Exception:
                    log.exception("outreach %s raised", item.id)
            done += len(batch)
            if len(batch) < self.claim_batch:
                return done

    async def start(self, *, single_node: bool) -> None:
        """Start the loop; a single node first drops the claims a dead process held."""
        if single_node:
            held = await self.outreach.release()
            if held:
                log.info("outreach: %d claimed before the start, taken back", held)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sweep()
            except GatewayError as exc:
                log.warning("outreach sweep failed: %s", exc)
            except Exception:
                log.exception("outreach sweep raised")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    # -------------------------------------------------------- one outreach

    async def work(self, item: Outreach, *, held_until: int | None = None) -> None:
        """One step of a claimed outreach's state machine (module docstring);
        `held_until`: the claim this sender holds it by (checked after the pace)."""
        if item.state.final:
            return await self._set(item, due_at=None, claimed_until=None)
        if item.state is S.SENDING:
            settled = await self._settle(item)
            if settled is None:
                return None
            item = settled
        rule = await self.rule_for(item)
        if rule is None:  # the deployment removed the type since
            return await self._finish(item, S.FAILED, "unknown_type")
        reached = await reach.find(self.store, self.backend, item.event.customer)
        if reached is None:
            return await self._finish(item, S.SKIPPED, "unknown_customer")
        customer, name = reached.customer, reached.name
        await reach.channels(self.store, reached, rule, item.event.channel,
                             can_call=self.caller() is not None, online=self.online)  # fmt: skip
        left = [c for c in reached.order if c not in item.tried]
        if not left:
            why = _why_none(reached, item)
            state = S.FAILED if item.tried else S.SKIPPED
            return await self._finish(item, state, why, customer_id=customer.id)
        now = self.clock()
        if self.max_per_day:
            since = to_ms(now) - DAY_MS
            if await self.outreach.sent_since(customer.id, since, item.id) >= self.max_per_day:
                return await self._finish(item, S.SKIPPED, "frequency_cap",
                                          customer_id=customer.id)  # fmt: skip
        channel = left[0]
        if channel in (OutreachChannel.SMS, OutreachChannel.CALL):
            opens = quiet_until(now, zones_of(reached.phone(), self.fallback_tz), self.window)
            if opens is not None:
                log.info("outreach %s deferred to %s (quiet hours)", item.id, opens.isoformat())
                return await self._set(item, state=S.DEFERRED.value, channel=channel.value,
                                       customer_id=customer.id, due_at=to_ms(opens),
                                       claimed_until=None)  # fmt: skip
        texts = rule.render(template_values(item.event.data, name))
        if not await self._paced(item, held_until):
            return None  # paused, cancelled or taken over meanwhile: not sent by us
        await self._send(item, reached, channel, texts)

    async def rule_for(self, item: Outreach) -> Rule | None:
        """The rule the outreach is sent by: its event type's, or its campaign's texts."""
        if item.campaign_id is not None and item.type == TEXT_TYPE:
            campaign = await self.pace.campaign(item.campaign_id)
            return None if campaign is None else rule_of(campaign.message, self.rules)
        return self.rules.get(item.type)

    async def _paced(self, item: Outreach, held_until: int | None) -> bool:
        """Wait for the send slots (pace.py); then whether this sender may still send
        it (its claim still its own, its campaign running)."""
        if not await self.pace.wait(item):
            return True
        if held_until is None or self.campaigns is None:  # a caller holding it otherwise
            return True
        until = to_ms(self.clock()) + self.lease_ms
        return await self.campaigns.proceed(item.id, held_until, until)

    async def _send(self, item: Outreach, reached: reach.Reached, channel: OutreachChannel,
                    texts: Rendered) -> None:  # fmt: skip
        conversation = reached.conversation
        context = {
            "id": item.id, "type": item.type, "reason": texts.reason,
            "order_id": _scalar(item.event.data.get("order_id")),
            "at": self.clock().isoformat(), "channel": channel.value,
        }  # fmt: skip
        state: dict[str, Any] = {**conversation.agent_state, "outreach": context}
        if context["order_id"]:  # the agent's order slot (agent/turn.py): a brief names it
            state["order_id"] = context["order_id"]
        event = EventDraft(kind="outreach.sent", data={
            "outreach_id": item.id, "event_id": item.event_id, "type": item.type,
            "data": item.event.data, "channel": channel.value, "reason": texts.reason,
        })  # fmt: skip
        outbound: tuple[OutboundDraft, ...] = ()
        if channel is not OutreachChannel.CALL:  # a call's words are stored by the call
            outbound = (OutboundDraft(text=texts.text_for(channel), author=AuthorKind.SYSTEM,
                                      channel=reach.KIND[channel]),)  # fmt: skip
        turn = TurnRecord(conversation_id=conversation.id, expected_version=conversation.version,
                          outbound=outbound, events=(event,), agent_state=state)  # fmt: skip
        now = to_ms(self.clock())
        # A new call starts with no SID or outcome; a text after an unanswered call keeps
        # that call's (the outreach shows what became of the call it tried first).
        # A call's row waits for the caller's outcome until `call_timeout_s`: set before
        # the call is placed, so an outcome reported while `place` is still returning
        # (a quick `busy`) is never overwritten by that wait.
        call: dict[str, Any] = {"call_sid": None, "outcome": None,
                                "due_at": now + int(self.call_timeout_s * 1000)}  # fmt: skip
        stored = await self.outreach.begin_send(
            item.id, turn, now, state=S.SENDING.value, channel=channel.value,
            customer_id=reached.customer.id, conversation_id=conversation.id, error=None,
            **(call if channel is OutreachChannel.CALL else {"due_at": now}),  # held by its claim
        )  # fmt: skip
        log.info("outreach %s (%s) on %s", item.id, item.type, channel.value)
        if channel is OutreachChannel.CALL:
            return await self._call(item, reached, texts)
        message = stored.messages[0]
        status = await self.outbox.attempt(reached.customer, stored.conversation, message,
                                           attempts=0)  # fmt: skip
        current = item.model_copy(update={"channel": channel, "message_id": message.id})
        await self._after(current, status)

    async def _call(self, item: Outreach, reached: reach.Reached, texts: Rendered) -> None:
        caller, phone = self.caller(), reached.phone()
        current = item.model_copy(update={"channel": OutreachChannel.CALL})
        if caller is None or phone is None:
            await self._next(current, "no_caller")
            return None
        try:
            sid = await caller.place(
                to=phone, conversation_id=reached.conversation.id,
                customer_id=reached.customer.id, outreach_id=item.id,
                opening=texts.call_opening, voicemail=texts.voicemail,
            )  # fmt: skip
        except ChannelError as exc:
            log.warning("outreach %s: call not placed: %s", item.id, exc)
            await self._next(current, "call_failed")
            return None
        # Only the SID: the row already waits for the outcome (`_send`), which may have
        # come meanwhile, on any node; its claim lapses on its own (the wait is the
        # longer of the claim and GATEWAY_OUTREACH_CALL_TIMEOUT_S).
        await self._set(current, call_sid=sid[:64])

    async def _settle(self, item: Outreach) -> Outreach | None:
        """A row left `sending` (a crash, a retrying outbox, a call in progress): finish
        it from what became of its attempt (None), or the row with that channel marked
        tried when the next channel is to be used."""
        if item.channel is OutreachChannel.CALL:
            # Died while placing it (never placed twice), or no outcome reported in time.
            why = "call_outcome_unknown" if item.call_sid is None else "call_timeout"
            return await self._next(item, why, go_on=False)
        if item.message_id is None:
            return item
        status, _ = await self.outreach.message_status(item.message_id)
        if status is not None and status in LOST_STATES:
            return await self._next(item, "channel_failed", go_on=False)
        await self._after(item, status)
        return None

    async def _after(self, item: Outreach, status: DeliveryStatus | None) -> None:
        if status is not None and status in SENT_STATES:
            return await self._finish(item, S.SENT, None, sent=True)
        if status is not None and status in LOST_STATES:
            await self._next(item, "channel_failed")
            return None
        # The outbox is still trying (or its message not yet attempted): look again later.
        later = to_ms(self.clock()) + int(RECHECK_S * 1000)
        await self._set(item, due_at=later, claimed_until=None)

    async def _next(self, item: Outreach, why: str, *, go_on: bool = True) -> Outreach:
        """The current channel failed: mark it tried and queue the row for the next one
        (`go_on`: wake the loop for it; else the caller goes on with the returned row)."""
        tried = [*item.tried, *([item.channel] if item.channel else [])]
        now = to_ms(self.clock())
        fields: dict[str, Any] = {"tried": [c.value for c in tried], "error": why,
                                  "message_id": None, "state": S.QUEUED.value}  # fmt: skip
        if go_on:
            fields.update(due_at=now, claimed_until=None)
        await self.outreach.update(item.id, now, **fields)
        if go_on:
            self._wake.set()
        return item.model_copy(update={"tried": tuple(tried), "error": why, "message_id": None,
                                       "state": S.QUEUED})  # fmt: skip

    async def _finish(self, item: Outreach, state: S, why: str | None, *, sent: bool = False,
                      customer_id: int | None = None) -> None:  # fmt: skip
        now = to_ms(self.clock())
        fields: dict[str, Any] = {"state": state.value, "error": why, "due_at": None,
                                  "claimed_until": None}  # fmt: skip
        if sent:
            fields["sent_at"] = now
        if customer_id is not None:
            fields["customer_id"] = customer_id
        log.info("outreach %s: %s%s", item.id, state.value, f" ({why})" if why else "")
        await self.outreach.update(item.id, now, **fields)

    async def _set(self, item: Outreach, **fields: Any) -> None:
        await self.outreach.update(item.id, to_ms(self.clock()), **fields)


def _why_none(reached: reach.Reached, item: Outreach) -> str:
    if item.tried:
        return item.error or "every_channel_failed"
    reasons = set(reached.left_out.values())
    for why in ("opted_out", "unsubscribed"):  # the customer said no: that is the reason
        if why in reasons:
            return why
    return "no_channel"


def _scalar(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) else None


__all__ = ["InvalidEvent", "OutreachService"]
