"""Ratings after a rep closes a conversation, asked for on the customer's channel:
a signed link `/rate/<token>` (web chat, email) or a digit by SMS ("reply 1-5")."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.dispatch import Responder
from gateway.http_input import read_form
from gateway.keys import SETTINGS
from gateway.models import ChannelKind, Conversation, Customer, Message, Reply
from gateway.protocols import Decision, EventDraft
from gateway.routing.state import ROUTING
from gateway.routing.store import RoutingStore

RatingWidget = Callable[[Customer, str, str], Awaitable[None]]
"""A channel's rating control: (customer, signed URL, question)."""

SMS_PROMPT = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
THANKS = "Thank you for rating us!"
_DIGIT = re.compile(r"^\s*([1-5])\s*[.!]?\s*$")


class Ratings:
    """Rating prompts, signed rating links and the SMS digit answer."""

    def __init__(
        self, routing: RoutingStore, key: bytes, public_url: str, window_hours: float
    ) -> None:
        self.routing = routing
        self.signer = URLSafeTimedSerializer(key, salt="rating")
        self.public_url = public_url
        self.window = timedelta(hours=window_hours)
        self.widgets: dict[ChannelKind, RatingWidget] = {}

    def link(self, conversation_id: int) -> str:
        return f"{self.public_url}/rate/{self.signer.dumps(conversation_id)}"

    def conversation_of(self, token: str) -> int | None:
        try:
            value = self.signer.loads(token, max_age=int(self.window.total_seconds()))
        except BadSignature:
            return None
        return value if isinstance(value, int) else None

    async def prompt(self, conversation: Conversation) -> str | None:
        """The closing message for the customer's channel (None on a call)."""
        if conversation.channel is ChannelKind.SMS:
            return SMS_PROMPT
        if conversation.channel in (ChannelKind.WEBCHAT, ChannelKind.EMAIL):
            return f"Thanks for contacting us. How did we do? Rate us: {self.link(conversation.id)}"
        return None

    async def show_control(self, customer: Customer, conversation: Conversation) -> None:
        """The channel's own rating control, where it has one (web chat)."""
        widget = self.widgets.get(conversation.channel)
        if widget is not None:
            await widget(customer, self.link(conversation.id), "How did we do?")

    def sms_responder(self, inner: Responder | None) -> Responder:
        """Wrap the SMS channel's responder: a lone digit 1-5 from a customer whose
        conversation closed recently (and asked by SMS) is their rating."""

        async def respond(
            customer: Customer, conversation: Conversation, message: Message
        ) -> Decision | None:
            match = _DIGIT.match(message.text)
            if match is not None:
                since = datetime.now(UTC) - self.window
                pending = await self.routing.pending_rating(customer.id, since)
                if pending is not None and pending.channel == ChannelKind.SMS.value:
                    score = int(match.group(1))
                    await self.routing.rate(pending.conversation_id, score)
                    return Decision(
                        actions=(Reply(text=THANKS),),
                        events=(EventDraft(kind="rating.sms",
                                           data={"rated_conversation_id":
                                                 pending.conversation_id, "score": score}),),
                        intent="rating",
                        confidence=1.0,
                    )  # fmt: skip
            return None if inner is None else await inner(customer, conversation, message)

        return respond


def _page(title: str, body: str, status: int = 200) -> web.Response:
    doc = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><body style='font:16px sans-serif;margin:2em'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=doc, content_type="text/html", status=status)


def _ratings(request: web.Request) -> Ratings:
    ratings = request.app[ROUTING].ratings
    if ratings is None:
        raise web.HTTPServiceUnavailable()
    return ratings


async def rate_form(request: web.Request) -> web.Response:
    """GET shows the choice (a link preview or mail scanner must not rate by fetching)."""
    token = request.match_info["token"]
    if _ratings(request).conversation_of(token) is None:
        return _page("Link expired", "<p>This rating link is invalid or has expired.</p>", 404)
    buttons = "".join(
        f"<button name=score value={n} style='font-size:1.5em;margin:.2em'>{n}</button>"
        for n in range(1, 6)
    )
    form = (
        f"<form method=post action='/rate/{html.escape(token)}'>"
        f"<p>From 1 (poor) to 5 (great):</p>{buttons}</form>"
    )
    return _page("How did we do?", form)


def _cors(request: web.Request) -> dict[str, str] | None:
    """CORS headers for the widget's rating POST from the embedding site (another
    origin): the Origin is allowed by GATEWAY_WEBCHAT_ALLOWED_ORIGINS (empty: any, as
    for the chat socket). None refuses it. No Origin, or our own (the rating page's
    form), needs none."""
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    own = {request.host.lower(), urlsplit(request.app[SETTINGS].public_url).netloc.lower()}
    if urlsplit(origin).netloc.lower() in own:
        return {}
    allowed = request.app[SETTINGS].webchat_allowed_origins
    wanted = origin.strip().rstrip("/").lower()
    if allowed and wanted not in {a.strip().rstrip("/").lower() for a in allowed}:
        return None
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def rate_preflight(request: web.Request) -> web.Response:
    """The browser's preflight before a cross-origin rating POST."""
    headers = _cors(request)
    if headers is None:
        return web.Response(status=403)
    headers = {
        **headers,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }
    return web.Response(status=204, headers=headers)


async def rate_submit(request: web.Request) -> web.Response:
    cors = _cors(request)
    if cors is None:  # a site not allowed to embed the chat: nothing is recorded
        return _page("Not allowed", "<p>Rate from the link you were sent.</p>", 403)
    response = await _rate(request)
    response.headers.update(cors)
    return response


async def _rate(request: web.Request) -> web.Response:
    ratings = _ratings(request)
    conversation_id = ratings.conversation_of(request.match_info["token"])
    if conversation_id is None:
        return _page("Link expired", "<p>This rating link is invalid or has expired.</p>", 404)
    form = await read_form(request)
    score = str(form.get("score", ""))
    if score not in {"1", "2", "3", "4", "5"}:
        return _page("Choose a score", "<p>Pick a number from 1 to 5.</p>", 400)
    if await ratings.routing.rate(conversation_id, int(score)) is None:
        return _page("Nothing to rate", "<p>This conversation awaits no rating.</p>", 404)
    return _page(THANKS, "<p>Your rating has been recorded.</p>")
