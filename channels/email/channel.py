"""`EmailChannel`: the email channel's inbound logic (a parsed mail → a stored message
in the right thread), its outbound half (gateway.protocols.Channel: the agent's replies
through the relay) and its answer limits (a dispatcher `Responder`).

Threading. A mail continues a conversation when it answers a stored message of its
sender's (its `In-Reply-To`, then its `References`, newest first: the first of them that
is this customer's, so a reply in a thread shared with someone else still finds the
sender's own earlier mail) or carries a valid reply token in
the address it was sent to (`support+c42.<mac>@...`, our Reply-To), and only when its
sender is that conversation's customer: someone else quoting an old message starts a
conversation of their own. Any other mail starts a new conversation. Inbound mail is
de-duplicated per mailbox by `external_id = "<support address>:<Message-ID>"`; our
replies are stored under the same kind of key, so a customer's answer to them is found.

Loops. Automatic mail (`codec.auto_reason`: auto-replies, bounces, lists, no-reply
senders) and mail from our own address is accepted and dropped, never stored or
answered. Our replies carry `Auto-Submitted: auto-replied`. Answers are capped per
sender, per sender domain and in all (`channels.email.limits`, counted in the store):
mail past a cap is stored (reps see it) with an `email.rate_limited` event.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

from channels.email import codec
from channels.email.files import refusal_note, save_attachments
from channels.email.limits import AnswerLimits
from channels.email.parsing import MailParser
from channels.email.relay import Relay, RelayFailed
from gateway.errors import ChannelError, DeliveryError, NotFoundError
from gateway.models import (
    MAX_TEXT_CHARS,
    Action,
    Attachment,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Verification,
)
from gateway.protocols import Decision, EventDraft, Store
from gateway.settings import Settings

log = logging.getLogger("gateway.email.channel")

MAX_THREADS = 50_000
DEFAULT_SUBJECT = "Your support request"


@dataclass
class Thread:
    """What a reply in one conversation needs (kept in memory; rebuilt from the store)."""

    to: str
    subject: str
    last_id: str | None
    references: list[str] = field(default_factory=list)
    refused: tuple[Attachment, ...] = ()  # not kept from the customer's last mail: say so


class Accepted:
    """The SMTP answer to one mail."""

    OK = "250 2.0.0 OK"
    DROPPED = "250 2.0.0 OK (automatic mail, not answered)"
    BAD = "550 5.6.0 Message has no usable From address"
    ADDRESS_TOO_LONG = "550 5.1.7 The From address is longer than an address can be"
    UNREADABLE = "554 5.6.0 Message could not be read"
    FAILED = "451 4.3.0 Local error, try again later"
    TOO_BIG = "552 5.3.4 Message too big"


class EmailChannel:
    """See the module docstring. `attach` it before use."""

    kind = ChannelKind.EMAIL

    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.settings = settings
        self.address = settings.email_address
        self.domain = self.address.partition("@")[2] or "localhost"
        self._secret = hashlib.sha256(b"email-reply-token:" + secret).digest()
        self.store: Store | None = None
        self.relay: Relay | None = None
        self.parser = MailParser(
            workers=settings.email_parse_workers, timeout_s=settings.email_parse_timeout_s
        )
        self._threads: collections.OrderedDict[int, Thread] = collections.OrderedDict()
        self._senders: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.limits: AnswerLimits | None = None
        # A message of ours that is not an answer (an outreach, gateway/outreach): its
        # subject and extra headers (List-Unsubscribe), or None for an answer.
        self.extras: Callable[[int], Awaitable[tuple[str, dict[str, str]] | None]] | None = None

    def attach(self, store: Store, relay: Relay | None, limits: AnswerLimits | None = None) -> None:
        self.store, self.relay, self.limits = store, relay, limits

    def detach(self) -> None:
        self.relay = None

    def external_id(self, message_id: str) -> str:
        """The per-mailbox de-duplication key of a Message-ID."""
        key = f"{self.address}:{message_id}"
        if len(key) > 200:
            key = f"{self.address}:sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"
        return key

    def accepts(self, rcpt: str) -> bool:
        return codec.split_plus(rcpt, self.address)[0]

    # --------------------------------------------------------------- inbound

    async def to_event(
        self, raw: bytes, envelope_from: str | None, rcpts: list[str]
    ) -> tuple[InboundMessage | None, codec.ParsedMail | None, str]:
        """The stored form of one received mail, or None and the SMTP answer."""
        store = self.store
        if store is None:
            return None, None, Accepted.FAILED
        try:
            mail = await self.parser.parse(raw, envelope_from)
        except codec.AddressTooLong:
            return None, None, Accepted.ADDRESS_TOO_LONG
        except codec.MailError:
            return None, None, Accepted.BAD
        if mail.auto or mail.sender == self.address or self.accepts(mail.sender):
            reason = mail.auto or "our own address"
            log.info("email from %s not answered: %s", mail.sender or "(no address)", reason)
            if self.limits is not None:
                self.limits.dropped(reason)
            return None, mail, Accepted.DROPPED
        message_id = mail.message_id
        if message_id is None:  # hashing megabytes is file-sized work: off the loop
            digest = await asyncio.to_thread(lambda: hashlib.sha256(raw).hexdigest())
            message_id = f"<sha256.{digest}@{self.domain}>"
        conversation_id = await self._thread_of(store, mail, rcpts)
        attachments = await asyncio.to_thread(
            save_attachments, self.settings.data_dir, mail.attachments,
            max_bytes=self.settings.email_max_attachment_bytes,
        )  # fmt: skip
        text = mail.text or mail.subject or ("(attachments)" if attachments else "(empty mail)")
        event = InboundMessage(
            channel=ChannelKind.EMAIL,
            identity=Identity(
                kind=IdentityKind.EMAIL, value=mail.sender[:320], verified=Verification.SENDER
            ),
            text=text[:MAX_TEXT_CHARS],
            external_id=self.external_id(message_id),
            display_name=mail.display_name[:200] if mail.display_name else None,
            attachments=attachments,
            conversation_id=conversation_id,
            new_conversation=conversation_id is None,
        )
        self._senders[event.external_id or ""] = mail.sender  # whom `respond` counts
        if len(self._senders) > MAX_THREADS:
            self._senders.popitem(last=False)
        return event, dataclasses.replace(mail, message_id=message_id), Accepted.OK

    async def _thread_of(
        self, store: Store, mail: codec.ParsedMail, rcpts: list[str]
    ) -> int | None:
        """The conversation this mail continues, or None for a new one."""
        customer = await store.find_customer(Identity(kind=IdentityKind.EMAIL, value=mail.sender))
        if customer is None:
            return None  # a stranger is never anyone's participant
        # Every reference, not just the first one found: a reply to another customer's
        # message (a shared thread) may still carry this sender's own earlier mail.
        for ref in mail.thread_ids:
            found = await store.find_message(ChannelKind.EMAIL, self.external_id(ref))
            if found is not None and found.customer_id == customer.id:
                return found.conversation_id
        for rcpt in (*rcpts, *mail.recipients):
            ours, tag = codec.split_plus(rcpt, self.address)
            conversation_id = codec.read_token(self._secret, tag) if ours and tag else None
            if conversation_id is None:
                continue
            try:
                conversation = await store.get_conversation(conversation_id)
            except NotFoundError:
                continue
            if conversation.customer_id == customer.id:
                return conversation_id
        return None

    def remember(
        self, conversation_id: int, mail: codec.ParsedMail, stored: Message | None = None
    ) -> None:
        """The customer's mail `mail` (stored as `stored`) is the newest of the
        conversation: answer it, and tell of the attachments that were not kept."""
        old = self._threads.pop(conversation_id, None)
        refs = [*mail.references] or (old.references if old else [])
        if old and old.last_id and old.last_id not in refs:
            refs.append(old.last_id)
        self._threads[conversation_id] = Thread(
            to=mail.sender,
            subject=mail.subject or (old.subject if old else DEFAULT_SUBJECT),
            last_id=mail.message_id,
            references=refs[-codec.MAX_REFERENCES :],
            refused=tuple(a for a in stored.attachments if a.refused) if stored else (),
        )
        if len(self._threads) > MAX_THREADS:
            self._threads.popitem(last=False)

    async def _thread_for(self, store: Store, customer: Customer, conversation_id: int) -> Thread:
        known = self._threads.get(conversation_id)
        if known is not None:
            return known
        # Not in memory (a restart): rebuild from the conversation's stored mail.
        prefix = f"{self.address}:"
        ids = [
            m.external_id.removeprefix(prefix)
            for m in await store.conversation_messages(conversation_id)
            if m.channel is ChannelKind.EMAIL and m.external_id and m.external_id.startswith(prefix)
        ]
        ids = [i for i in ids if i.startswith("<")]
        emails = [i.value for i in customer.identities if i.kind is IdentityKind.EMAIL]
        thread = Thread(
            to=emails[-1] if emails else "",
            subject=DEFAULT_SUBJECT,
            last_id=ids[-1] if ids else None,
            references=ids[:-1][-codec.MAX_REFERENCES :],
        )
        self._threads[conversation_id] = thread
        return thread

    # -------------------------------------------------------------- outbound

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """Send one stored reply (an outbox attempt); DeliveryError when it was not sent.
        At least once: a reply sent again (its first attempt's outcome unknown, or the
        relay failed) keeps the Message-ID recorded before the first attempt."""
        if message.direction is not Direction.OUTBOUND or message.channel is not ChannelKind.EMAIL:
            return
        store = self.store
        if store is None:
            raise DeliveryError("email_off", "the email channel is not started", retry=True)
        thread = await self._thread_for(store, customer, conversation.id)
        if not thread.to:
            self._fail(message, "no_email_address", "the customer has no address")
        if self.relay is None:
            self._fail(message, "email_off", "GATEWAY_EMAIL_RELAY is unset")
        reply_to = codec.plus_address(self.address, codec.make_token(self._secret, conversation.id))
        note = refusal_note(thread.refused, self.settings.email_max_attachment_bytes)
        text = f"{message.text}\n\n{note}" if note else message.text
        mail = codec.build_reply(
            sender=self.address,
            to=thread.to,
            subject=thread.subject,
            text=text,
            domain=self.domain,
            in_reply_to=thread.last_id,
            references=tuple(thread.references),
            reply_to=reply_to,
            message_id=self._sent_id(message),
        )
        extra = await self.extras(message.id) if self.extras is not None else None
        if extra is not None:  # our own news, in the customer's thread: its own subject
            subject, headers = extra
            del mail["Subject"], mail["Auto-Submitted"]
            mail["Subject"] = subject
            mail["Auto-Submitted"] = "auto-generated"
            for name, value in headers.items():
                mail[name] = value
        sent_id = str(mail["Message-ID"])
        # The Message-ID is recorded before the relay is asked: a resend reuses it.
        await store.set_delivery(
            message.id, DeliveryStatus.SENDING, external_id=self.external_id(sent_id)
        )
        try:
            await self.relay.send(mail, sender=self.address, to=thread.to)
        except RelayFailed as exc:
            log.warning("email message %s not sent (%s): %s", message.id, exc.code, exc)
            raise DeliveryError(exc.code, str(exc), retry=_transient(exc.code)) from exc
        if note:  # told once; the stored reply is what was sent
            thread.refused = ()
            await store.amend_message(message.id, text=text, reason="attachments_refused_note")
        if thread.last_id and thread.last_id not in thread.references:
            thread.references.append(thread.last_id)
        await store.set_delivery(message.id, DeliveryStatus.SENT)
        log.info("email %s sent to %s as %s", message.id, thread.to, sent_id)

    def _sent_id(self, message: Message) -> str | None:
        """The Message-ID an earlier attempt at `message` recorded, if any."""
        prefix = f"{self.address}:"
        known = message.external_id or ""
        if known.startswith(prefix + "<"):
            return known.removeprefix(prefix)
        return None

    async def notify(self, to: Identity, text: str, *, subject: str) -> str:
        """A `Notifier`: mail `text` to `to` (a one-time code) as a new message outside
        any thread. Not stored; returns its Message-ID. ChannelError when not sent."""
        if to.kind is not IdentityKind.EMAIL or "@" not in to.value:
            raise ChannelError(f"cannot mail {to.key}: not an email address")
        if self.relay is None:
            raise ChannelError("email is off: GATEWAY_EMAIL_RELAY is unset")
        mail = codec.build_notice(
            sender=self.address, to=to.value, subject=subject, text=text, domain=self.domain
        )
        try:
            await self.relay.send(mail, sender=self.address, to=to.value)
        except RelayFailed as exc:
            raise ChannelError(f"mail to {to.value} not sent ({exc.code}): {exc}") from exc
        return str(mail["Message-ID"])

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        """Typing, transfers and hang-ups mean nothing by email (a transfer's words are a Reply)."""
        return None

    def _fail(self, message: Message, code: str, why: str) -> NoReturn:
        log.warning("email message %s not sent (%s): %s", message.id, code, why)
        raise DeliveryError(code, why)

    # ------------------------------------------------------------ rate limit

    async def respond(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> Decision | None:
        """The dispatcher `Responder` for email: the answer limits (`limits`)."""
        if message.direction is not Direction.INBOUND or self.limits is None:
            return None
        if conversation.state is not ConversationState.BOT:
            return None  # a person answers (or will): no automatic answer to count
        sender = self._senders.get(message.external_id or "")
        if sender is None:  # stored before a restart: the customer's address
            emails = [i.value for i in customer.identities if i.kind is IdentityKind.EMAIL]
            sender = emails[-1] if emails else f"customer-{customer.id}@(unknown)"
        held = await self.limits.take(sender)
        if held is None:
            return None  # the agent answers
        caps = dict(zip(("sender", "domain", "total"), self.limits.caps, strict=True))
        log.warning("email from %s (message %s) not answered: the %s limit of %s an hour",
                    sender, message.id, held, caps[held])  # fmt: skip
        event = EventDraft(
            kind="email.rate_limited",
            data={"message_id": message.id, "limit": held, "per_hour": caps[held]},
        )
        return Decision(actions=(), events=(event,), intent="email.rate_limited", confidence=1.0)


def _transient(code: str) -> bool:
    """Whether a relay failure may pass: unreachable, timed out, or a 4xx answer."""
    return code == "unreachable" or code.startswith("smtp_4")


__all__ = ["Accepted", "EmailChannel", "Thread"]
