"""What the web chat keeps on the app (under `WEBCHAT`), built once at set-up."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from channels.webchat.hub import WebchatChannel
from channels.webchat.identity import VisitorTokens


@dataclass(frozen=True, slots=True)
class WebchatState:
    """The channel (with its hub of live sockets) and the keys chat identities use."""

    channel: WebchatChannel
    tokens: VisitorTokens
    identity_secret: bytes
    demo_identity_secret: bool  # derived from our own key: no real site shares it


WEBCHAT = web.AppKey("webchat", WebchatState)

__all__ = ["WEBCHAT", "WebchatState"]
