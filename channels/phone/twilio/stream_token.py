"""One-time tokens that bind a Media Stream to the call our voice webhook answered.

Twilio signs the websocket upgrade of a Media Stream over the bare stream URL,
so one captured upgrade signature would open a stream for any call, and the
`start` message (call sid, custom parameters) is not signed at all. The signed
voice webhook therefore puts a token in the TwiML's `<Parameter>`s: the call
sid and the caller's number as Twilio told them to us, HMAC-signed with a key
derived from `GATEWAY_SECRET_KEY` and time-stamped (itsdangerous). `start` must
carry it back for the same call sid, within `TTL_S`, and only once; the caller
identity is taken from the token, never from the stream. The token of an outbound
call of outreach (channels/phone/outbound/) also names the outreach, its
conversation and customer.

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
class OutreachLeg:
    """An outbound call of proactive outreach: the conversation and the outreach the
    answered call belongs to (carried inside the signed token, so a stream cannot
    claim another conversation)."""

    outreach_id: str
    conversation_id: int
    customer_id: int


@dataclass(frozen=True)
class StreamGrant:
    """What the signed voice webhook said about the call a stream belongs to."""

    call_sid: str
    caller: str  # for an outbound call: the number we called
    outreach: OutreachLeg | None = None


class StreamTokens:
    """Issues and redeems stream tokens (one instance per app)."""

    def __init__(self, master_key: bytes, *, ttl_s: int = TTL_S) -> None:
        self._signer = URLSafeTimedSerializer(
            derive_key(master_key, "twilio-media-stream"), salt="stream"
        )
        self.ttl_s = ttl_s
        self._used: dict[str, float] = {}  # call sid -> when its token expires (wall clock)

    def issue(self, call_sid: str, caller: str, outreach: OutreachLeg | None = None) -> str:
        """The token for the stream of `call_sid`, as the signed webhook described it
        (`outreach`: an outbound call answered by a person)."""
        data: dict[str, object] = {"c": call_sid, "f": caller}
        if outreach is not None:
            data["o"] = [outreach.outreach_id, outreach.conversation_id, outreach.customer_id]
        return self._signer.dumps(data)

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
        leg = data.get("o")
        outreach = None
        if isinstance(leg, list) and len(leg) == 3:
            outreach = OutreachLeg(str(leg[0]), int(leg[1]), int(leg[2]))
        return StreamGrant(call_sid=call_sid, caller=str(data.get("f", "")), outreach=outreach)

    def _forget_expired(self, now: float) -> None:
        # Insertion order is expiry order (one TTL for all): drop from the front.
        while self._used:
            sid, expires = next(iter(self._used.items()))
            if expires > now:
                break
            del self._used[sid]


__all__ = ["PARAMETER", "TTL_S", "OutreachLeg", "StreamGrant", "StreamTokens"]
