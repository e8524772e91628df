"""Shared building blocks of the message contract: enums, identifiers and the frozen base model."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Symbols and ids end up inside Pulsar topic names, so they are restricted to characters that are
# legal there and unambiguous in logs.
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,15}$")]
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
Price = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Size = Annotated[int, Field(ge=0)]
Quantity = Annotated[int, Field(gt=0)]
TimestampNs = Annotated[int, Field(ge=0)]


def now_ns() -> int:
    """Wall-clock time in integer nanoseconds (the unit of every ts_* field)."""
    return time.time_ns()


class Message(BaseModel):
    """Base of every message on the bus: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrdType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTD = "GTD"
    IOC = "IOC"


class Strategy(StrEnum):
    """Execution algorithm a parent order asks for (FIX TargetStrategy 847 maps onto these)."""

    TWAP = "TWAP"
    VWAP = "VWAP"
    POV = "POV"
    IS = "IS"  # implementation shortfall, worked by an Almgren-Chriss trajectory
    RL = "RL"


# The demo's universe: the default wherever a list of equities is not given.
DEFAULT_SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN")
# The policy file an RL parent gets when it names none: the learned placement, which beat the rule, TWAP and
# Almgren-Chriss at every horizon on held-out calibrated days (docs/RESEARCH.md, round 7).
DEFAULT_RL_POLICY = "rl-place"


def policy_name(strategy: Strategy, policy: str | None = None) -> str:
    """The policy a worker must advertise to work a parent: the policy file it names, else the strategy's."""
    if policy:
        return policy
    return DEFAULT_RL_POLICY if strategy is Strategy.RL else strategy.value.lower()


# The rule-based strategies every worker can run without a policy file.
RULE_POLICIES: tuple[str, ...] = tuple(policy_name(s) for s in Strategy if s is not Strategy.RL)


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"
