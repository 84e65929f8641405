"""Who is on the other end of a chat socket: signed visitor tokens and
HMAC-signed user ids from the embedding site. Pure (keys are passed in).

A visitor token is our own signature over a random visitor id, so it survives a
page reload (the widget keeps it in localStorage) and cannot be guessed or
forged. A user claim is trusted only when the site signed the user id with the
shared identity secret; the comparison is constant-time and an unsigned or
wrongly signed claim is never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from itsdangerous import BadSignature, URLSafeSerializer

VISITOR_ID_BYTES = 16
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class VisitorTokens:
    """Issues and checks visitor tokens signed with a key only the gateway knows."""

    def __init__(self, key: bytes) -> None:
        # The salt separates these signatures from any other use of the same key.
        self._serializer = URLSafeSerializer(key, salt="webchat-visitor")

    def issue(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor_id = secrets.token_urlsafe(VISITOR_ID_BYTES)
        return visitor_id, self.dump(visitor_id)

    def dump(self, visitor_id: str) -> str:
        return self._serializer.dumps(visitor_id)

    def load(self, token: str | None) -> str | None:
        """The visitor id a token carries, or None when it is missing, forged or malformed."""
        if not token:
            return None
        try:
            payload = self._serializer.loads(token)
        except (BadSignature, ValueError, UnicodeError):
            return None
        if not isinstance(payload, str) or not _VISITOR_ID.match(payload):
            return None
        return payload


def sign_user_id(secret: bytes, user_id: str) -> str:
    """What the embedding site computes: hex HMAC-SHA256 of the user id."""
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_user_id(secret: bytes, user_id: str, signature: str) -> bool:
    """True only when `signature` is the site's HMAC of `user_id` (constant-time)."""
    expected = sign_user_id(secret, user_id).encode("ascii")
    try:
        given = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Whether a browser Origin may open the chat socket. An empty list allows any
    (the demo); otherwise the Origin must be listed, and a missing one is refused."""
    if not allowed:
        return True
    if not origin:
        return False
    wanted = origin.strip().rstrip("/").lower()
    return any(wanted == entry.strip().rstrip("/").lower() for entry in allowed)


__all__ = ["VisitorTokens", "origin_allowed", "sign_user_id", "verify_user_id"]
