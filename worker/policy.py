"""The policy interface: what a policy sees (a versioned observation) and what it decides (an action).

Policies are pure: ``decide(observation) -> Action``. The worker (and the RL environment) build the
observation from ticks, fills and the job, and turn the action into child orders. Keeping both sides of
the interface here, as plain data, is what lets a trained policy file run unchanged in the live worker.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from enum import IntEnum
from typing import Protocol

import numpy as np

OBS_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Observation:
    """Schema v1. Every field is a float so the observation is also a fixed-order vector (``vector``).

    Fractions are in [0, 1]; prices relative to the arrival mid are in basis points, signed so that positive
    is *worse for us* (higher for a buy, lower for a sell).
    """

    time_elapsed: float  # fraction of the job's window gone
    inventory_left: float  # fraction of the job's quantity not yet filled
    open_frac: float  # fraction of the job's quantity resting in open child orders
    schedule_gap: float  # (filled fraction) - (elapsed fraction): negative means behind a linear schedule
    spread_bps: float
    imbalance_1: float  # top-of-book imbalance, signed toward our side: + means our side is heavy
    imbalance_5: float
    drift_bps: float  # mid against the arrival mid, signed as above
    ret_short_bps: float  # mid return over the last ~30 s, signed as above
    vol_bps: float  # realised volatility of mid returns over the last few minutes, per sqrt(minute)
    volume_ratio: float  # market volume since the start / volume the curve expected by now
    market_volume: float  # market volume since the start, in units of the job's quantity

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def vector(self) -> np.ndarray:
        return np.asarray(astuple(self), dtype=np.float32)


OBS_DIM = len(Observation.names())


class PriceKind(IntEnum):
    HOLD = 0  # do nothing now
    MARKET = 1  # take liquidity
    LIMIT_TOUCH = 2  # rest at our side's best price
    LIMIT_INSIDE = 3  # rest one tick inside the spread (improves the touch when the spread allows)


@dataclass(frozen=True, slots=True)
class Action:
    """What to do at this decision: send ``quantity`` (shares) at ``price``; ``cancel`` open orders first."""

    price: PriceKind
    quantity: int = 0
    cancel: bool = False

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise ValueError(f"negative quantity {self.quantity}")
        if self.price is PriceKind.HOLD and self.quantity:
            raise ValueError("HOLD with a quantity")


HOLD = Action(PriceKind.HOLD)

# The discrete action set of trained policies (a policy file's manifest records its own copy): price kind
# and multiple of the job's TWAP slice. The RL environment, the live engine and the policy files all map an
# action index to child orders through ``action_of``.
ACTIONS: tuple[tuple[PriceKind, float], ...] = (
    (PriceKind.HOLD, 0.0),
    (PriceKind.MARKET, 1.0),
    (PriceKind.MARKET, 2.0),
    (PriceKind.LIMIT_TOUCH, 1.0),
    (PriceKind.LIMIT_TOUCH, 2.0),
    (PriceKind.LIMIT_INSIDE, 1.0),
)
OBS_SCALE = np.array([1, 1, 1, 1, 0.1, 1, 1, 0.02, 0.05, 0.1, 0.5, 1], dtype=np.float32)
OBS_LIMIT = 10.0


def scale(obs: Observation) -> np.ndarray:
    """The network's input: the observation vector scaled to order 1 and clipped."""
    return np.clip(obs.vector() * OBS_SCALE, -OBS_LIMIT, OBS_LIMIT)


def action_of(kind: PriceKind, multiple: float, slice_qty: int) -> Action:
    """One action of a discrete spec for a job whose TWAP slice is ``slice_qty`` shares."""
    return Action(kind) if kind is PriceKind.HOLD else Action(kind, int(slice_qty * multiple))


@dataclass(frozen=True, slots=True)
class JobContext:
    """The facts of the job a policy may need beyond the observation (fixed for the job's life)."""

    quantity: int
    lot: int = 100
    participation_rate: float | None = None


class Policy(Protocol):
    name: str

    def decide(self, obs: Observation, job: JobContext) -> Action: ...


class Agent:
    """A job whose decisions come from outside the engine (the RL environment's learner): when it is due
    the engine waits for ``Engine.act`` instead of deciding."""

    name = "agent"

    def decide(self, obs: Observation, job: JobContext) -> Action:
        raise RuntimeError("an agent's job is decided by Engine.act, not by the engine")
