"""Pulsar token authentication: one role per service, a JWT (HS256, Pulsar's ``AuthenticationProviderToken``)
per role signed with the broker's secret key, and where a process finds its own token.

A process authenticates with ``PACELINE_PULSAR_TOKEN`` (the token itself) or ``PACELINE_PULSAR_TOKEN_FILE``
(a file holding it); with neither it connects without credentials, which a broker with authentication on
refuses. ``paceline broker start --auth`` writes the secret key and one token file per role into the run
folder (``auth/``); what each role may do is granted there (``paceline.ops.broker.GRANTS``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import jwt

# The roles: one per service, an operator (the kill switch), a read-only viewer (the live page) and the
# superuser that sets the broker up (and the drills' checks, which read everything).
ROLES = ("receiver", "worker", "health-checker", "endpoint", "operator", "viewer", "admin")
SUPERUSER = "admin"
SECRET_FILE = "secret.key"


def new_secret(path: Path) -> bytes:
    """A fresh 256-bit HS256 key in ``path`` (readable by its owner only), or the one already there."""
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def mint(secret: bytes, role: str) -> str:
    """A token for ``role`` (Pulsar reads the role from the ``sub`` claim); no expiry, like
    ``pulsar tokens create`` without ``--expiry-time``: revoke by rotating the key."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return jwt.encode({"sub": role}, secret, algorithm="HS256")


def role_of(token: str, secret: bytes) -> str:
    """The role a token carries, after checking its signature (raises ``jwt.InvalidTokenError``)."""
    return str(jwt.decode(token, secret, algorithms=["HS256"])["sub"])


def write_tokens(auth_dir: Path) -> dict[str, Path]:
    """The secret key and one ``<role>.token`` file per role in ``auth_dir``; returns the token files."""
    secret = new_secret(auth_dir / SECRET_FILE)
    out = {}
    for role in ROLES:
        path = auth_dir / f"{role}.token"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(mint(secret, role))
        out[role] = path
    return out


def token_from_env() -> str | None:
    """This process's token: ``PACELINE_PULSAR_TOKEN``, else the file ``PACELINE_PULSAR_TOKEN_FILE`` names."""
    token = os.environ.get("PACELINE_PULSAR_TOKEN", "").strip()
    if token:
        return token
    path = os.environ.get("PACELINE_PULSAR_TOKEN_FILE", "").strip()
    return Path(path).read_text().strip() if path else None


def admin_headers() -> dict[str, str]:
    """HTTP headers that present this process's token to the broker's admin API (none without a token)."""
    token = token_from_env()
    return {"Authorization": f"Bearer {token}"} if token else {}


def env_for(token_file: Path | None) -> dict[str, str]:
    """The environment that gives a child process the role of ``token_file`` (nothing without one)."""
    return {"PACELINE_PULSAR_TOKEN_FILE": str(token_file)} if token_file is not None else {}
