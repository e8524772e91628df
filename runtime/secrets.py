"""Client credentials. FIX passwords: scrypt from the standard library (memory-hard, salted), stored
as ``scrypt$n$r$p$<salt hex>$<hash hex>`` and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

N, R, P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for a wrong password or a malformed hash."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2)  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


# Native-protocol tokens are random and long (``new_token``): a salted slow hash buys nothing against
# guessing them, so they are stored as SHA-256 (as API tokens usually are) and checked in constant time.
TOKEN_MIN_LEN = 16


def new_token() -> str:
    """A fresh bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return f"sha256${hashlib.sha256(token.encode()).hexdigest()}"


def verify_token(token: str, stored: str) -> bool:
    """True when ``token`` hashes to ``stored`` (``sha256$<hex>``)."""
    kind, _, digest = stored.partition("$")
    return kind == "sha256" and hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), digest)
