"""Rep login for the console: scrypt-checked passwords, a signed HttpOnly
SameSite=Strict session cookie, and a per-session CSRF token on every write.

The cookie carries a random session id signed with itsdangerous (a key derived
from the gateway's secret); the store keeps only the id's SHA-256, so a leaked
database does not yield live sessions, and logout revokes the session there.
Writes must echo the session's CSRF token in `X-CSRF-Token` (the login answer
and `GET /console/api/me` hand it to the page): a cross-site form cannot read it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.routing.models import Session
from gateway.routing.passwords import DUMMY_HASH, verify_password
from gateway.routing.store import RoutingStore
from gateway.routing.throttle import LoginThrottle

COOKIE = "gw_console"
CSRF_HEADER = "X-CSRF-Token"
_MEMORY_MAX = 10_000  # sessions cached in memory before a purge (they are in the store)
# A cached session is read back from the store this often, so one revoked elsewhere
# (a rep disabled or given a new password on another node, or by `gateway reps`) ends.
RECHECK_S = 30.0


def _json_error(cls: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": code, "message": message})
    return cls(text=body, content_type="application/json")


class ConsoleAuth:
    """Logins, sessions and CSRF checks of the rep console."""

    def __init__(
        self,
        routing: RoutingStore,
        key: bytes,
        *,
        max_age_s: float,
        secure: bool,
        throttle: LoginThrottle,
    ) -> None:
        self.routing = routing
        self.throttle = throttle
        self.signer = URLSafeTimedSerializer(key, salt="console-session")
        self.max_age_s = max_age_s
        self.secure = secure
        self._cache: dict[str, tuple[Session, float]] = {}  # id -> (session, when read)

    async def login(
        self, username: str, password: str, remote: str | None = None
    ) -> tuple[Session, str] | None:
        """(session, cookie value) for right credentials, else None (same time either way).
        LoginThrottled, unchecked, after too many wrong passwords for this username or
        from this client address (`remote`) lately (routing/throttle.py)."""
        keys = await self.throttle.begin(username, remote)
        outcome: bool | None = None
        try:
            creds = await self.routing.credentials(username)
            stored = creds.password_hash if creds is not None else DUMMY_HASH
            # scrypt takes tens of milliseconds of CPU: never on the event loop.
            ok = await asyncio.to_thread(verify_password, password, stored)
            outcome = ok and creds is not None and not creds.disabled
        finally:
            await self.throttle.end(keys, ok=outcome)
        if not outcome or creds is None:
            return None
        raw = secrets.token_urlsafe(32)
        session = Session(
            id=hashlib.sha256(raw.encode()).hexdigest(),
            rep_id=creds.rep_id,
            csrf=secrets.token_urlsafe(32),
            expires_at=datetime.now(UTC) + timedelta(seconds=self.max_age_s),
        )
        await self.routing.create_session(session)
        self._remember(session)
        return session, self.signer.dumps(raw)

    def set_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(
            COOKIE, value, max_age=int(self.max_age_s), path="/", httponly=True,
            samesite="Strict", secure=self.secure,
        )  # fmt: skip

    async def session(self, request: web.Request) -> Session | None:
        """The request's live session, or None."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            raw = self.signer.loads(value, max_age=int(self.max_age_s))
        except BadSignature:
            return None
        if not isinstance(raw, str):
            return None
        sid = hashlib.sha256(raw.encode()).hexdigest()
        cached = self._cache.get(sid)
        if cached is None or time.monotonic() - cached[1] > RECHECK_S:
            session = await self.routing.get_session(sid)
            if session is None:
                self._cache.pop(sid, None)
                return None
            self._remember(session)
        else:
            session = cached[0]
        if session.expires_at <= datetime.now(UTC):
            self._cache.pop(sid, None)
            return None
        return session

    def _remember(self, session: Session) -> None:
        if len(self._cache) > _MEMORY_MAX:
            self._cache.clear()  # a cache: sessions are read back from the store
        self._cache[session.id] = (session, time.monotonic())

    def forget_rep(self, rep_id: int) -> None:
        """Read this rep's sessions back from the store (revoked there: disabled, new
        password) at their next request on this node."""
        for sid in [sid for sid, (s, _) in self._cache.items() if s.rep_id == rep_id]:
            self._cache.pop(sid, None)

    async def require(self, request: web.Request, *, write: bool) -> Session:
        """401 without a live session; 403 on a write without the session's CSRF token."""
        session = await self.session(request)
        if session is None:
            raise _json_error(web.HTTPUnauthorized, "unauthorized", "log in first")
        if write:
            token = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(token.encode(), session.csrf.encode()):
                raise _json_error(web.HTTPForbidden, "csrf", "missing or wrong CSRF token")
        return session

    async def logout(self, session: Session) -> None:
        self._cache.pop(session.id, None)
        await self.routing.revoke_session(session.id)
