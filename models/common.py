"""Shared building blocks of the message contract: enums, identifiers and the frozen base model."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Symbols and ids end up inside Pulsar topic names, so they are restricted to characters that are
# legal there and unambiguous in logs.
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,15}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
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


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"
