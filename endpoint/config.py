"""The endpoint's configuration: its FIX acceptor, its clients (FIX CompIDs, native-protocol tokens, risk
limits) and the tradable universe. Loaded from TOML (``deploy/endpoint/endpoint.toml`` by default).

Credentials may live outside that file: ``PACELINE_ENDPOINT_CREDENTIALS`` names a TOML file of
``[<client_id>]`` tables (``token_hash``, ``password_hash``, ``allowed_addresses``) laid over the clients.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from models import DEFAULT_SYMBOLS
from runtime.secrets import verify_token
from runtime.shipped import shipped

DEFAULT_FILE = shipped("deploy") / "endpoint" / "endpoint.toml"
CREDENTIALS_ENV = "PACELINE_ENDPOINT_CREDENTIALS"
TOKEN_HASH = r"^sha256\$[0-9a-f]{64}$"


class Limits(BaseModel):
    """Pre-trade risk limits for one client (notional in the instrument's currency)."""

    max_order_notional: float = Field(default=5_000_000.0, gt=0)  # one parent
    max_open_notional: float = Field(default=20_000_000.0, gt=0)  # all live parents' leaves together
    max_position: int = Field(default=200_000, gt=0)  # |net shares| per symbol, after this order
    max_child_notional: float = Field(default=500_000.0, gt=0)  # one child order
    price_band_bps: float = Field(default=500.0, gt=0)  # a limit this far from the mid is a fat finger
    max_participation: float = Field(default=0.3, gt=0, le=1)  # POV rate
    max_orders_per_s: float = Field(default=20.0, gt=0)  # parents and amendments, per client
    max_children_per_s: float = Field(default=200.0, gt=0)  # child orders, per client


class Client(BaseModel):
    client_id: str
    comp_id: str  # the client's SenderCompID (our TargetCompID)
    # Native protocol: the bearer token's hash (``runtime.secrets.hash_token``; ``paceline secret token``
    # makes a token and its hash). None: the client has no native access.
    token_hash: str | None = Field(default=None, pattern=TOKEN_HASH)
    # Public credentials for demos and tests: the endpoint refuses to listen beyond loopback with one.
    demo: bool = False
    limits: Limits = Field(default_factory=Limits)
    # FIX logon: Username (553) must be the client id and Password (554) match this hash
    # (``runtime.secrets.hash_password``; ``paceline secret hash`` makes one). None: no password asked.
    password_hash: str | None = None
    # Remote addresses a FIX logon may come from (None: the endpoint's ``fix_allowed_addresses``).
    allowed_addresses: tuple[str, ...] | None = None


class BrokerRoute(BaseModel):
    """An outside broker reached over FIX 4.4 (we initiate), as the venue for child orders."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    comp_id: str = "PACELINE"  # our SenderCompID towards the broker
    target_comp_id: str = "BROKER"


class EndpointConfig(BaseModel):
    name: str = "endpoint"
    comp_id: str = "PACELINE"  # our SenderCompID
    fix_port: int = Field(default=9878, ge=0, le=65535)  # 0: no FIX acceptor
    native_port: int = Field(default=9879, ge=0, le=65535)  # 0: no WebSocket server
    native_host: str = "127.0.0.1"
    # QuickFIX 1.15's acceptor listens on every interface (it has no bind-address setting): a session
    # accepts a logon only from these remote addresses (QuickFIX's AllowedRemoteAddresses). Empty: any.
    fix_allowed_addresses: tuple[str, ...] = ("127.0.0.1",)
    # Native protocol: TLS (wss://) when both are set; caps, each answered with a close code and a reason.
    native_tls_cert: Path | None = None
    native_tls_key: Path | None = None
    native_max_connections_per_client: int = Field(default=4, ge=1)
    native_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    native_idle_s: float = Field(default=300.0, gt=0)  # no message from the client for this long: closed
    native_open_s: float = Field(default=10.0, gt=0)  # opening handshake (TLS, upgrade) in this, or dropped
    native_auth_failures_per_min: int = Field(default=5, ge=1)  # per source address; then refused a minute
    # Demo credentials are public: with one configured the endpoint listens on loopback only, unless this
    # says otherwise (a container network, ``PACELINE_ALLOW_DEMO_CREDENTIALS=1``).
    allow_demo_credentials_anywhere: bool = False
    state_dir: Path = Field(default_factory=lambda: Path.home() / ".paceline" / "endpoint")
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    clients: tuple[Client, ...] = ()
    # Where child orders go: the simulated exchange (default) or a broker over FIX.
    route: Literal["simulated", "fix"] = "simulated"
    broker: BrokerRoute | None = None
    # A new order's request also goes on the requests' non-persistent twin, which the health-checker starts
    # the parent from a storage write sooner (docs/PERFORMANCE.md). False: on the record only, as before.
    request_twin: bool = True
    # A new order's New told before the saga's commit, once the order's request is stored (how: see
    # ``new_on_store``): one storage round trip sooner or more, the same New (docs/PERFORMANCE.md, "the New
    # told early"). False: every report after its commit, as before.
    early_new: bool = True
    # With ``early_new``: a new order's New is told once its request is stored, built here as the saga builds
    # it (``models.new_report``) for an order that passed the saga's admission rule at the desk, without
    # waiting for the leader's decision (docs/PERFORMANCE.md, "the New on the request's store"). False: it
    # waits for the leader's New on the reports' twin as well.
    new_on_store: bool = True

    def client_by_comp_id(self, comp_id: str) -> Client | None:
        return next((c for c in self.clients if c.comp_id == comp_id), None)

    def client_by_token(self, token: str) -> Client | None:
        """The client whose token hash ``token`` matches; every client is compared (no early exit)."""
        found = None
        for c in self.clients:
            if c.token_hash is not None and verify_token(token, c.token_hash):
                found = c
        return found

    def exposed_demo_credentials(self) -> list[str]:
        """Why this configuration would expose a demo credential beyond loopback (empty: it does not)."""
        demo = [c.client_id for c in self.clients if c.demo]
        if not demo or self.allow_demo_credentials_anywhere:
            return []
        why = []
        if self.native_port and not _loopback(self.native_host):
            why.append(f"the native protocol listens on {self.native_host}")
        if self.fix_port:
            for c in self.clients:
                allowed = self.fix_allowed_addresses if c.allowed_addresses is None else c.allowed_addresses
                if c.demo and (not allowed or not all(_loopback(a) for a in allowed)):
                    why.append(f"FIX logons for {c.client_id} are allowed from {', '.join(allowed) or 'any'}")
        return [f"{w} with demo credentials ({', '.join(demo)})" for w in why]

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(path: Path | None = None, credentials: Path | None = None) -> EndpointConfig:
    """The configuration, with the credentials file (``credentials`` or ``$PACELINE_ENDPOINT_CREDENTIALS``)
    laid over its clients."""
    with (path or DEFAULT_FILE).open("rb") as f:
        doc: dict[str, Any] = tomllib.load(f)
    env = os.environ.get(CREDENTIALS_ENV)
    creds_path = credentials or (Path(env) if env else None)
    if creds_path is not None:
        with creds_path.open("rb") as f:
            creds: dict[str, Any] = tomllib.load(f)
        clients = doc.get("clients", [])
        known = {c.get("client_id") for c in clients}
        if unknown := sorted(set(creds) - known):
            raise ValueError(f"{creds_path}: credentials for unknown clients {', '.join(unknown)}")
        for c in clients:
            if (own := creds.get(c["client_id"])) is not None:
                # Credentials of one's own replace the file's (a credential not given is none, never demo).
                c.update({"token_hash": None, "password_hash": None, **own, "demo": False})
    return EndpointConfig.model_validate(doc)
