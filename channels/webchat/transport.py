"""The web chat websocket: `GET /webchat/ws`.

A thin transport around the pure codec: it reads frames, greets the visitor
(identity, history), hands messages to the dispatcher and acknowledges each one
only after `Dispatcher.handle` has committed it. Bad input of any kind is
answered with an error frame and the socket carries on.
"""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web
from aiolimiter import AsyncLimiter
from pydantic import ValidationError

from channels.webchat import codec
from channels.webchat.hub import Session
from channels.webchat.identity import origin_allowed, verify_user_id
from channels.webchat.state import WEBCHAT
from gateway.errors import GatewayError, ProtocolError
from gateway.keys import DISPATCHER, METRICS, SETTINGS, STORE
from gateway.models import (
    ChannelKind,
    Customer,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Verification,
)
from gateway.protocols import LinkResult

log = logging.getLogger(__name__)

CHANNEL = ChannelKind.WEBCHAT.value
HEARTBEAT_S = 30.0
# aiohttp closes the socket (1009) above this; the codec answers frames between
# MAX_FRAME_BYTES and this with an error frame and keeps the socket open.
WS_MAX_MSG_BYTES = 4 * codec.MAX_FRAME_BYTES


async def chat_socket(request: web.Request) -> web.StreamResponse:
    """Upgrade to a websocket and run one chat connection until it closes."""
    app = request.app
    metrics = app[METRICS]
    if not origin_allowed(request.headers.get("Origin"), app[SETTINGS].webchat_allowed_origins):
        metrics.bad_input.labels(CHANNEL, "origin").inc()
        raise web.HTTPForbidden(text="this origin may not open the chat")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=WS_MAX_MSG_BYTES)
    if not ws.can_prepare(request).ok:
        metrics.bad_input.labels(CHANNEL, "not_websocket").inc()
        raise web.HTTPBadRequest(text="this endpoint speaks websocket only (see PROTOCOL.md)")
    await ws.prepare(request)
    session = Session(ws)
    gauge = metrics.connections.labels(CHANNEL)
    gauge.inc()
    try:
        await ChatConnection(app, session).run()
    finally:
        # Synchronous bookkeeping first: aiohttp may cancel this task once the peer is gone.
        gauge.dec()
        app[WEBCHAT].channel.hub.remove(session)
        await session.stop()
    return ws


class ChatConnection:
    """The state of one socket: who it chats as, once `hello` has said so."""

    def __init__(self, app: web.Application, session: Session) -> None:
        self.app = app
        self.session = session
        self.settings = app[SETTINGS]
        self.identity: Identity | None = None
        self.who = ""  # the external-id prefix: v.<visitor id> or u.<user id>
        self.account_ref: str | None = None
        self.display_name: str | None = None
        self.limiter = _frame_limiter(
            self.settings.webchat_frames_per_minute, self.settings.webchat_frame_burst
        )

    async def run(self) -> None:
        async for msg in self.session.ws:
            if msg.type is WSMsgType.TEXT:
                await self.on_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self.refuse("binary_not_supported", "send JSON text frames (see PROTOCOL.md)")
            elif msg.type is WSMsgType.ERROR:
                log.info("web chat socket error: %s", self.session.ws.exception())
                break

    def refuse(self, code: str, message: str, client_id: str | None = None) -> None:
        """Answer bad input with an error frame; the socket stays open."""
        self.app[METRICS].bad_input.labels(CHANNEL, code).inc()
        self.session.send(codec.error_frame(code, message, client_id))

    async def on_text(self, raw: str) -> None:
        client_id: str | None = None  # the message an error is about, once known
        try:
            # Every frame counts, garbage too: each one costs an answer.
            within_rate = await self.take_frame()
            frame = codec.parse_client_frame(
                raw, max_text_chars=self.settings.webchat_max_message_chars
            )
            if isinstance(frame, codec.ChatMessage):
                client_id = frame.client_id
            if not within_rate:
                raise ProtocolError("rate_limited", "too many frames; send again in a moment")
            if isinstance(frame, codec.Hello):
                await self.on_hello(frame)
            elif self.identity is None:
                raise ProtocolError("hello_required", "the first frame must be `hello`")
            elif isinstance(frame, codec.ChatMessage):
                await self.on_message(frame)
            elif isinstance(frame, codec.Ping):
                self.session.send(codec.pong_frame())
            elif isinstance(frame, codec.ClientTyping):
                await self.app[DISPATCHER].customer_typing(self.identity, frame.active)
        except codec.MessageRefused as exc:
            self.refuse(exc.code, exc.message, exc.client_id)
        except ProtocolError as exc:
            self.refuse(exc.code, exc.message, client_id)
        except GatewayError as exc:
            # The store is unwell: the message is not acknowledged, so the client retries.
            log.warning("web chat frame failed: %s", exc)
            self.session.send(
                codec.error_frame("unavailable", "please try again shortly", client_id)
            )
        except Exception:
            # A bug must cost one frame, not the socket or the process.
            log.exception("web chat frame handling failed")
            self.session.send(
                codec.error_frame("internal", "something went wrong on our side", client_id)
            )

    async def take_frame(self) -> bool:
        """Whether this socket may send one more frame now (and count it if so)."""
        if self.limiter is None:
            return True
        if not self.limiter.has_capacity():
            return False
        await self.limiter.acquire()  # has capacity: returns at once
        return True

    # ------------------------------------------------------------------ hello

    async def on_hello(self, frame: codec.Hello) -> None:
        if self.identity is not None:
            raise ProtocolError("already_greeted", "`hello` is only sent once per connection")
        state = self.app[WEBCHAT]
        visitor_id = state.tokens.load(frame.visitor_token)
        resumable = visitor_id is not None
        if visitor_id is None:
            if frame.visitor_token:
                self.app[METRICS].bad_input.labels(CHANNEL, "bad_visitor_token").inc()
            visitor_id, token = state.tokens.issue()
        else:
            token = state.tokens.dump(visitor_id)
        identity = Identity(
            kind=IdentityKind.WEBCHAT, value=visitor_id, verified=Verification.SIGNED_TOKEN
        )
        who, account_ref, name = f"v.{visitor_id}", None, None
        user = frame.user
        if user is not None:
            if verify_user_id(state.identity_secret, user.id, user.signature):
                account = Identity(
                    kind=IdentityKind.ACCOUNT, value=user.id, verified=Verification.HMAC
                )
                if resumable and await self.adopt_visitor(identity, account):
                    # This browser's token now leads to the account's chat: it gets a
                    # new one, so after signing out it is a new anonymous visitor.
                    visitor_id, token = state.tokens.issue()
                identity = account
                who, account_ref, name, resumable = f"u.{user.id}", user.id, user.name, True
            else:
                self.refuse(
                    "invalid_signature",
                    "the user signature does not match; continuing as an anonymous visitor",
                )
        # Registered before history is read, so nothing stored meanwhile is missed.
        hub = state.channel.hub
        try:
            await hub.add(identity.key, self.session)
            customer = await self.app[STORE].find_customer(identity)
            last_seq = frame.last_seq if resumable else None
            await self.send_history(customer, token, last_seq, name, account_ref)
        except BaseException:
            hub.remove(self.session)
            raise
        self.identity, self.who = identity, who
        self.account_ref, self.display_name = account_ref, name

    async def adopt_visitor(self, visitor: Identity, account: Identity) -> bool:
        """A visitor who chatted anonymously and has now signed in: their anonymous chat
        joins the account's (one customer, one history). The store's link rules decide:
        the account's record survives with its numbering and the anonymous messages
        follow (a `customer.merged` event), or, for a first chat as this user, the
        anonymous record becomes the account's. An anonymous record already tied to a
        different account (a one-time code) is left alone. True when the two are one."""
        store = self.app[STORE]
        anonymous = await store.find_customer(visitor)
        if anonymous is None:
            return False  # never wrote: nothing to carry over
        holder = await store.find_customer(account)
        if holder is None:
            linked = await store.link_identity(anonymous.id, account, account_ref=account.value)
        elif holder.id == anonymous.id:
            return True
        else:
            linked = await store.link_identity(holder.id, visitor, account_ref=account.value)
        if linked.result is LinkResult.OTHER_ACCOUNT:
            log.info("web chat: anonymous customer %s is tied to another account than %s; "
                     "not joined on sign-in", anonymous.id, account.value)  # fmt: skip
            return False
        log.info("web chat: anonymous customer %s joined account %s on sign-in (%s)",
                 anonymous.id, account.value, linked.result.value)  # fmt: skip
        return True

    async def send_history(
        self, customer: Customer | None, token: str, last_seq: int | None,
        name: str | None, user_id: str | None,
    ) -> None:  # fmt: skip
        """Queue `welcome`, then the history pages, then release live messages."""
        store = self.app[STORE]
        limit = self.settings.webchat_history_limit
        newest = 0
        if customer is not None and last_seq is not None:
            latest = await store.history(customer.id, limit=1)
            newest = latest[-1].seq if latest else 0
        # Resume only from a seq we issued; a first load (or a confused client) starts afresh.
        resume = customer is not None and last_seq is not None and last_seq <= newest
        first_page: list[Message] = []
        if customer is not None and not resume:
            first_page = await store.history(customer.id, limit=limit)
            newest = first_page[-1].seq if first_page else 0
        self.session.send(
            codec.welcome_frame(
                visitor_token=token,
                customer_name=name or (customer.display_name if customer else None),
                user_id=user_id,
                known=customer is not None,
                last_seq=newest,
                max_message_chars=self.settings.webchat_max_message_chars,
            )
        )
        if customer is None or last_seq is None or not resume:
            self.session.send(codec.history_frame(first_page, reset=True, complete=True))
            self.session.go_live(newest)
            return
        after = last_seq
        while True:  # everything after last_seq, however much: one frame per page
            page = await store.history(customer.id, after_seq=after, limit=limit)
            if page:
                after = page[-1].seq
            complete = len(page) < limit
            self.session.send(codec.history_frame(page, reset=False, complete=complete))
            if complete:
                break
        self.session.go_live(after)

    # --------------------------------------------------------------- message

    async def on_message(self, frame: codec.ChatMessage) -> None:
        assert self.identity is not None  # on_text checks hello came first
        try:
            inbound = InboundMessage(
                channel=ChannelKind.WEBCHAT,
                identity=self.identity,
                text=frame.text,
                external_id=codec.external_id(self.who, frame.client_id),
                display_name=self.display_name,
                account_ref=self.account_ref,
            )
        except ValidationError as exc:
            raise ProtocolError("invalid_field", exc.errors()[0]["msg"]) from None
        if not inbound.text:  # only control characters, which the model strips
            raise ProtocolError("empty_text", "a message needs some text")
        ingested = await self.app[DISPATCHER].handle(inbound)
        # Committed: only now may the client forget it (it resends until acked).
        self.session.send(
            codec.ack_frame(frame.client_id, ingested.message.seq, duplicate=ingested.duplicate)
        )


def _frame_limiter(per_minute: int, burst: int) -> AsyncLimiter | None:
    """A leaky bucket of `burst` frames that drains `per_minute` a minute; None: no limit."""
    if per_minute == 0:
        return None
    return AsyncLimiter(burst, time_period=burst * 60.0 / per_minute)


__all__ = ["ChatConnection", "chat_socket"]
