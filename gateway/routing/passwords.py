"""Rep passwords: scrypt from the standard library (`hashlib.scrypt`).

scrypt is memory-hard and needs no extra dependency (argon2-cffi would be a
compiled one for the same protection). Parameters follow OWASP's scrypt
guidance (N=2^14, r=8, p=5: 16 MiB per hash) and are stored with each hash,
so they can be raised later without invalidating old passwords. Hashing takes
tens of milliseconds: callers on the event loop run it in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 5
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64)."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=_MAXMEM
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` result."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=_MAXMEM,
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Checked against when the username is unknown, so a login takes as long either way.
DUMMY_HASH = "scrypt$16384$8$5$" + "A" * 22 + "==$" + "A" * 43 + "="
