"""Web chat: a websocket with a documented JSON protocol (PROTOCOL.md), signed
visitor tokens, HMAC-signed user ids, resumable history and `widget.js`.

`setup_webchat(app)` is called by `gateway.app.create_app`: it registers the
outbound channel, the routes and the shutdown hook.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.webchat.hub import Hub, WebchatChannel
from channels.webchat.identity import VisitorTokens, sign_user_id, verify_user_id
from channels.webchat.pages import index, widget_js
from channels.webchat.state import WEBCHAT, WebchatState
from channels.webchat.transport import chat_socket
from gateway.keys import CHANNELS, SECRET_KEY, SETTINGS
from gateway.secrets import derive_key

log = logging.getLogger(__name__)

WS_PATH = "/webchat/ws"


def setup_webchat(app: web.Application) -> None:
    """Register the web chat channel, its routes and its shutdown hook on `app`."""
    settings = app[SETTINGS]
    master = app[SECRET_KEY]
    configured = settings.webchat_identity_secret
    if configured is not None:
        identity_secret = configured.get_secret_value().encode("utf-8")
    else:
        identity_secret = derive_key(master, "webchat-identity")
        log.warning(
            "GATEWAY_WEBCHAT_IDENTITY_SECRET is unset: signed web chat users are checked"
            " against a demo secret. A site that signs its users must configure a shared one."
        )
    channel = WebchatChannel(Hub())
    app[WEBCHAT] = WebchatState(
        channel=channel,
        tokens=VisitorTokens(derive_key(master, "webchat-visitor")),
        identity_secret=identity_secret,
        demo_identity_secret=configured is None,
    )
    app[CHANNELS][channel.kind] = channel
    app.router.add_get("/", index)
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get(WS_PATH, chat_socket)
    app.on_shutdown.append(_close_sockets)


async def _close_sockets(app: web.Application) -> None:
    # Sockets would otherwise hold shutdown until their heartbeat gives up.
    await app[WEBCHAT].channel.close_all()


__all__ = [
    "WEBCHAT",
    "WS_PATH",
    "WebchatChannel",
    "WebchatState",
    "setup_webchat",
    "sign_user_id",
    "verify_user_id",
]
