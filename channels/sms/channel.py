"""`SmsChannel`: the outbound half of the SMS channel (gateway.protocols.Channel),
and its own answers to the STOP / START / HELP keywords (a dispatcher `Responder`).

`publish` sends agent and rep messages of SMS conversations through Twilio's
REST API, as one message of at most `GATEWAY_SMS_MAX_SEGMENTS` segments
(`segments.fit_sms`; when the text had to change, the stored message is amended
to what was sent and the original kept in its `message.cut` event). The
customer's own messages, echoed by the dispatcher, are not sent back.

Every outcome is recorded on the stored message: Twilio's sid and first status
when it accepted the message (the outbox then marks it sent); otherwise a
`DeliveryError` tells the outbox (gateway/outbox.py) to try again later (Twilio
unreachable, 429, 5xx) or to mark it FAILED with the code, which the store also
writes as a `delivery.failed` event, so a reply that did not go out is visible
to reps:

- `opted_out`: the number sent STOP (or Twilio refused with 21610); nothing is
  sent to it until it sends START;
- Twilio's error code when it refused (21610 also marks the number opted out);
- `timeout` / `broken`: Twilio did not answer in `GATEWAY_SMS_SEND_TIMEOUT_S`,
  or the connection broke after the request: it may have created the message,
  so the next attempt first looks for it there (below);
- a reply an earlier attempt left `sending` (the process died while Twilio was
  asked) is first looked up in Twilio's list of messages to the number: found
  (same body, created since, a sid no stored message has), it is marked sent
  with that sid; not found, it is sent; when Twilio cannot be asked, it fails as
  `outcome_unknown` (at most once);
- `no_sender`, `no_phone_number`, `sms_off`: nothing to send from or to, or
  the channel has no REST client (unset account SID or auth token).

Each message's segments, as Twilio counts them (the REST reply's `num_segments`; the
inbound webhook's `NumSegments`, channels/sms/transport.py), are recorded as the
conversation's usage under the message sid (`count_segments`; docs/reports.md, "Cost").

Replies come from `GATEWAY_TWILIO_SMS_FROM`, or else from the number the
customer last texted, which is remembered in memory only (bounded, lost on a
restart: set the setting when answers may be sent after one, as recovered
messages are).
"""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from channels.sms import codec
from channels.sms.codec import Keyword
from channels.sms.rest import UNSUBSCRIBED, SendFailed, TwilioMessages
from channels.sms.segments import fit_sms
from gateway.errors import ChannelError, ConfigError, DeliveryError, GatewayError
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Reply,
)
from gateway.protocols import Decision, EventDraft, Store
from gateway.settings import Settings
from gateway.store.usage_store import open_usage
from gateway.usage import Usage, UsageRecorder

log = logging.getLogger("gateway.sms.channel")

STATUS_PATH = "/twilio/sms/status"
# Clocks differ: Twilio's creation time of a message may be before our stored time.
LOOKUP_MARGIN = timedelta(minutes=2)
MAX_ROUTES = 50_000


class SmsChannel:
    """Texts customers; see the module docstring. `attach` it before use."""

    kind = ChannelKind.SMS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.api: TwilioMessages | None = None
        self.usage: UsageRecorder | None = None
        # customer's number -> (recency, the number of ours they texted)
        self._routes: dict[str, tuple[int, str]] = {}
        self._clock = itertools.count()

    @property
    def settle_s(self) -> float:
        """How long after an unanswered request Twilio's list is trusted to show
        whether it created the message (three send timeouts)."""
        return 3 * self.settings.sms_send_timeout_s

    def attach(self, store: Store, api: TwilioMessages | None) -> None:
        self.store, self.api = store, api
        try:
            self.usage = open_usage(store)
        except ConfigError:  # a store without a usage table: segments go uncounted
            self.usage = None

    async def count_segments(self, conversation_id: int, sid: str, segments: int) -> None:
        """An SMS's segments (as Twilio counts them) as its conversation's usage; the
        sid is the source, so a retried webhook or a resent reply counts once."""
        if self.usage is None or segments <= 0:
            return
        try:
            await self.usage.record(conversation_id, Usage(sms_segments=segments),
                                    source=f"sms:{sid}")  # fmt: skip
        except GatewayError as exc:  # the message itself is stored: only a figure is lost
            log.warning("SMS %s: its segments were not recorded: %s", sid, exc)

    def detach(self) -> None:
        self.api = None

    def remember(self, number: str, texted: str) -> None:
        """`number` (E.164) just texted our number `texted`: replies go back from there."""
        self._routes.pop(number, None)
        self._routes[number] = (next(self._clock), texted)
        if len(self._routes) > MAX_ROUTES:
            del self._routes[next(iter(self._routes))]

    def numbers(self, customer: Customer) -> list[str]:
        """The customer's phone numbers (E.164), the one that texted last first."""
        phones = [
            i.value
            for i in customer.identities
            if i.kind is IdentityKind.PHONE and i.value.startswith("+")
        ]
        return sorted(phones, key=lambda n: -self._routes.get(n, (-1, ""))[0])

    # ------------------------------------------------------------- outbound

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """Send one stored reply (an outbox attempt); DeliveryError when it was not sent."""
        if message.direction is not Direction.OUTBOUND or message.channel is not ChannelKind.SMS:
            return
        store = self.store
        if store is None:
            raise DeliveryError("sms_off", "the SMS channel is not started", retry=True)
        if message.external_id is not None:
            return  # Twilio's sid is on record: it took it (a crash came before our mark)
        numbers = self.numbers(customer)
        if not numbers:
            self._fail(message, "no_phone_number", "the customer has no phone number")
        to = numbers[0]
        identity = Identity(kind=IdentityKind.PHONE, value=to)
        if await store.is_opted_out(identity):
            self._fail(message, "opted_out", f"{to} has opted out (STOP)")
        sender = self.settings.twilio_sms_from or self._routes.get(to, (0, ""))[1]
        if self.api is None:
            self._fail(message, "sms_off", "no Twilio REST client (account SID?)")
        if not sender:
            self._fail(message, "no_sender", "set GATEWAY_TWILIO_SMS_FROM")
        fitted = fit_sms(message.text, self.settings.sms_max_segments)
        if message.status is DeliveryStatus.SENDING:
            # An earlier attempt asked Twilio and its outcome was never recorded (the
            # process died): sent again only when Twilio's list shows it did not take it,
            # read once that attempt is surely over at Twilio.
            age = (datetime.now(UTC) - message.created_at).total_seconds()
            if age < self.settle_s:
                raise DeliveryError("unsettled", "an earlier attempt may still be running",
                                    retry=True, not_before_s=self.settle_s - age)  # fmt: skip
            sid = await self._created_before(store, message, to, sender, fitted.text)
            if sid is not None:
                await store.set_delivery(message.id, DeliveryStatus.SENT, external_id=sid)
                await self.count_segments(message.conversation_id, sid, fitted.segments)
                log.info("SMS %s had reached Twilio as %s before a restart", message.id, sid)
                return
        # Recorded before Twilio is asked: a crash from here on leaves it `sending`.
        await store.set_delivery(message.id, DeliveryStatus.SENDING)
        try:
            sent = await self.api.send(
                to=to,
                from_=sender,
                body=fitted.text,
                status_callback=self.settings.public_url + STATUS_PATH,
            )
        except SendFailed as exc:
            if exc.twilio_code == UNSUBSCRIBED:
                await store.set_opt_out(identity, True)
            log.warning("SMS message %s not sent (%s): %s", message.id, exc.code, exc)
            # Twilio's refusals are final; anything else is tried again, and as the
            # reply stays `sending`, the next attempt first looks for it at Twilio.
            answered = exc.twilio_code is not None or (exc.http_status or 0) >= 400
            final = answered and not exc.not_accepted
            # Unanswered, Twilio may still be creating it: look only once it is done.
            settle = 0.0 if answered or exc.not_accepted else self.settle_s
            raise DeliveryError(exc.code, str(exc), retry=not final, not_before_s=settle,
                                not_taken=answered or exc.not_accepted) from exc  # fmt: skip
        if fitted.text != message.text:
            reason = (
                f"sms: shortened to {fitted.segments} {fitted.encoding} segments"
                if fitted.shortened
                else "sms: plain text"
            )
            await store.amend_message(message.id, text=fitted.text, reason=reason)
        # Taken by Twilio: sent, with its sid, in one write (callbacks move it on).
        status = max(sent.status, DeliveryStatus.SENT, key=lambda s: s.rank)
        await store.set_delivery(message.id, status, external_id=sent.sid)
        await self.count_segments(message.conversation_id, sent.sid,
                                  sent.segments or fitted.segments)  # fmt: skip
        log.info("SMS %s sent as %s (%d %s segments)", message.id, sent.sid,
                 fitted.segments, fitted.encoding)  # fmt: skip

    async def notify(self, to: Identity, text: str, *, subject: str) -> str:
        """A `Notifier`: text `to` (a one-time code), outside any conversation. Not stored
        as a message; returns Twilio's sid. ChannelError (`SendFailed`) when not sent."""
        if to.kind is not IdentityKind.PHONE or not to.value.startswith("+"):
            raise ChannelError(f"cannot text {to.key}: not a phone number")
        if self.store is not None and await self.store.is_opted_out(to):
            raise ChannelError(f"{to.value} has opted out (STOP)")
        sender = self.settings.twilio_sms_from or self._routes.get(to.value, (0, ""))[1]
        if self.api is None:
            raise ChannelError("SMS is off: no Twilio REST client (account SID?)")
        if not sender:
            raise ChannelError("no number to text from: set GATEWAY_TWILIO_SMS_FROM")
        try:
            sent = await self.api.send(
                to=to.value,
                from_=sender,
                body=fit_sms(text, 1).text,
                status_callback=self.settings.public_url + STATUS_PATH,
            )
        except SendFailed as exc:
            if exc.twilio_code == UNSUBSCRIBED and self.store is not None:
                await self.store.set_opt_out(to, True)
            raise
        return sent.sid

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        """Typing, transfers and hang-ups mean nothing on SMS (a transfer's words are a Reply)."""
        return None

    async def _created_before(
        self, store: Store, message: Message, to: str, sender: str, body: str
    ) -> str | None:
        """The sid of the message an interrupted attempt at `message` created at Twilio,
        or None when Twilio holds none: one to `to` from `sender` with this body, created
        since shortly before the reply was stored, whose sid no stored message has."""
        assert self.api is not None
        try:
            created = await self.api.recent(
                to=to, from_=sender, since=message.created_at - LOOKUP_MARGIN
            )
        except SendFailed as exc:  # cannot tell: at most once, so not sent again
            self._fail(message, "outcome_unknown", f"Twilio's message list: {exc}")
        for found in reversed(created):  # oldest first
            if found.body != body:
                continue
            if await store.find_message(ChannelKind.SMS, found.sid) is None:
                return found.sid
        return None

    def _fail(self, message: Message, code: str, why: str) -> NoReturn:
        log.warning("SMS message %s not sent (%s): %s", message.id, code, why)
        raise DeliveryError(code, why)

    # ------------------------------------------------------------- keywords

    async def respond(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> Decision | None:
        """The dispatcher `Responder` for SMS: STOP, START and HELP are answered here."""
        if message.direction is not Direction.INBOUND or message.attachments:
            return None
        keyword = codec.keyword(message.text)
        if keyword is None or self.store is None:
            return None
        numbers = self.numbers(customer)[:1] if keyword is Keyword.START else self.numbers(customer)
        if keyword is Keyword.HELP:
            text = self.settings.sms_help_text
        else:
            stop = keyword is Keyword.STOP
            for number in numbers:
                await self.store.set_opt_out(Identity(kind=IdentityKind.PHONE, value=number), stop)
            text = "" if stop else self.settings.sms_start_text
        event = EventDraft(
            kind=f"sms.{keyword.value}",
            data={"keyword": message.text.strip()[:20], "numbers": numbers,
                  "message_id": message.id},
        )  # fmt: skip
        return Decision(
            actions=(Reply(text=text),) if text else (),
            events=(event,),
            intent=f"sms.{keyword.value}",
            confidence=1.0,
        )


__all__ = ["STATUS_PATH", "SmsChannel"]
