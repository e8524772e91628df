"""The endpoint's configuration: its FIX acceptor, its clients (FIX CompIDs, native-protocol tokens, risk
limits) and the tradable universe. Loaded from TOML (``deploy/endpoint/endpoint.toml`` by default)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from runtime.shipped import shipped

DEFAULT_FILE = shipped("deploy") / "endpoint" / "endpoint.toml"


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
    token: str = Field(min_length=16)  # native protocol
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
    state_dir: Path = Field(default_factory=lambda: Path.home() / ".paceline" / "endpoint")
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN")
    clients: tuple[Client, ...] = ()
    # Where child orders go: the simulated exchange (default) or a broker over FIX.
    route: Literal["simulated", "fix"] = "simulated"
    broker: BrokerRoute | None = None

    def client_by_comp_id(self, comp_id: str) -> Client | None:
        return next((c for c in self.clients if c.comp_id == comp_id), None)

    def client_by_token(self, token: str) -> Client | None:
        return next((c for c in self.clients if c.token == token), None)

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


def load(path: Path | None = None) -> EndpointConfig:
    with (path or DEFAULT_FILE).open("rb") as f:
        return EndpointConfig.model_validate(tomllib.load(f))
