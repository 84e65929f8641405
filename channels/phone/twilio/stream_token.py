"""One-time tokens that bind a Media Stream to the call our voice webhook answered.

Twilio signs the websocket upgrade of a Media Stream over the bare stream URL,
so one captured upgrade signature would open a stream for any call, and the
`start` message (call sid, custom parameters) is not signed at all. The signed
voice webhook therefore puts a token in the TwiML's `<Parameter>`s: the call
sid and the caller's number as Twilio told them to us, HMAC-signed with a key
derived from `GATEWAY_SECRET_KEY` and time-stamped (itsdangerous). `start` must
carry it back for the same call sid, within `TTL_S`, and only once; the caller
identity is taken from the token, never from the stream.

The used-token record is per node and bounded by the TTL (entries are dropped
once expired): on several nodes a token replayed to another node within its
TTL is refused there only if that node holds the call; the TTL keeps that
window short.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.errors import AuthError
from gateway.secrets import derive_key

TTL_S = 60
"""Twilio opens the stream right after reading our TwiML; a token older than this is refused."""
PARAMETER = "token"


@dataclass(frozen=True)
class StreamGrant:
    """What the signed voice webhook said about the call a stream belongs to."""

    call_sid: str
    caller: str


class StreamTokens:
    """Issues and redeems stream tokens (one instance per app)."""

    def __init__(self, master_key: bytes, *, ttl_s: int = TTL_S) -> None:
        self._signer = URLSafeTimedSerializer(
            derive_key(master_key, "twilio-media-stream"), salt="stream"
        )
        self.ttl_s = ttl_s
        self._used: dict[str, float] = {}  # call sid -> when its token expires (wall clock)

    def issue(self, call_sid: str, caller: str) -> str:
        """The token for the stream of `call_sid`, as the signed webhook described it."""
        return self._signer.dumps({"c": call_sid, "f": caller})

    def redeem(self, token: str, call_sid: str) -> StreamGrant:
        """The grant in `token` if it is ours, fresh, for `call_sid` and not used
        before; AuthError otherwise."""
        if not token:
            raise AuthError("the stream's start carries no token")
        try:
            data = self._signer.loads(token, max_age=self.ttl_s)
        except BadSignature as exc:  # also SignatureExpired
            raise AuthError(f"bad or expired stream token: {type(exc).__name__}") from None
        if not isinstance(data, dict) or data.get("c") != call_sid:
            raise AuthError(f"the stream token is for another call than {call_sid[:40]!r}")
        now = time.time()
        self._forget_expired(now)
        if call_sid in self._used:
            raise AuthError(f"the stream token of {call_sid} was used before")
        self._used[call_sid] = now + self.ttl_s
        return StreamGrant(call_sid=call_sid, caller=str(data.get("f", "")))

    def _forget_expired(self, now: float) -> None:
        # Insertion order is expiry order (one TTL for all): drop from the front.
        while self._used:
            sid, expires = next(iter(self._used.items()))
            if expires > now:
                break
            del self._used[sid]


__all__ = ["PARAMETER", "TTL_S", "StreamGrant", "StreamTokens"]
