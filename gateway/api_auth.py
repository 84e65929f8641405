"""Bearer-token authentication for the gateway's machine APIs (`/api/v1/...`).

A request presents `Authorization: Bearer <token>`. A token is valid when it
equals the configured static token (`GATEWAY_API_TOKEN`, compared in constant
time) or when its SHA-256 names a live token in the store (tokens an admin
creates and revokes in the console: only the hash is kept, and a token has 256
random bits, so a fast hash is enough; a leaked database yields no token).
Any API of the gateway reuses `BearerAuth.require` (reports today).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.models import Frozen

TOKEN_PREFIX = "gwt_"  # recognisable in logs and secret scanners

TokenLookup = Callable[[str], Awaitable[int | None]]
"""sha256 hex of a presented token -> the id of the live stored token, or None."""


class ApiCaller(Frozen):
    """Who made an API request: the configured token (`token_id` None) or a stored one."""

    token_id: int | None = None


def new_token() -> tuple[str, str]:
    """(token to show once, its hash to store)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(message: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=json.dumps({"error": "unauthorized", "message": message}),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
    )


class BearerAuth:
    """Checks `Authorization: Bearer` against the static token and the stored ones."""

    def __init__(self, static_token: str | None, lookup: TokenLookup) -> None:
        self._static = static_token.encode() if static_token else None
        self._lookup = lookup

    async def require(self, request: web.Request) -> ApiCaller:
        """The caller, or 401 (with `WWW-Authenticate: Bearer`) without a valid token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("send Authorization: Bearer <API token>")
        if self._static is not None and hmac.compare_digest(token.encode(), self._static):
            return ApiCaller()
        token_id = await self._lookup(hash_token(token))
        if token_id is None:
            raise _unauthorized("unknown or revoked API token")
        return ApiCaller(token_id=token_id)


__all__ = ["ApiCaller", "BearerAuth", "TokenLookup", "hash_token", "new_token"]
