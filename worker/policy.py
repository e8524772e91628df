"""The policy interface: what a policy sees (a versioned observation) and what it decides (an action).

Policies are pure: ``decide(observation) -> Action``. The worker (and the RL environment) build the
observation from ticks, fills and the job, and turn the action into child orders. Keeping both sides of
the interface here, as plain data, is what lets a trained policy file run unchanged in the live worker.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, fields
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
        return np.asarray(_values(self), dtype=np.float32)


OBS_DIM = len(Observation.names())
# The fields in order as a tuple, in C (``dataclasses.astuple`` deep-copies: 60 µs of a 1,000-job batch each).
_values = operator.attrgetter(*Observation.names())


def observation_values(obs: Observation) -> tuple[float, ...]:
    """An observation's fields in order, as a tuple."""
    values: tuple[float, ...] = _values(obs)
    return values


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
# Actions are immutable: the columns share one per (kind, quantity) (an aligned batch repeats a few of them,
# and a frozen dataclass costs ~1 µs to build).
_shared_action = functools.lru_cache(maxsize=4096)(Action)


@dataclass(frozen=True, slots=True)
class ActionDef:
    """One discrete action of a trained policy (a policy file's manifest records its own list).

    Sized in multiples of the job's TWAP slice (``lead`` None), or anchored on the TWAP schedule: send what
    brings the filled fraction to the schedule's target ``lead`` (a fraction of the window) ahead of now,
    so that ``ActionDef(MARKET, lead=0)`` is TWAP itself and a policy can only deviate from it by choice.
    """

    price: PriceKind
    slice_multiple: float = 0.0
    lead: float | None = None


# The discrete action sets. "slice": hold, market or limit at / inside the touch, in TWAP slices.
# "schedule": the same placements, sized to the TWAP schedule (and a little ahead of it).
ACTIONS: tuple[ActionDef, ...] = (
    ActionDef(PriceKind.HOLD),
    ActionDef(PriceKind.MARKET, 1.0),
    ActionDef(PriceKind.MARKET, 2.0),
    ActionDef(PriceKind.LIMIT_TOUCH, 1.0),
    ActionDef(PriceKind.LIMIT_TOUCH, 2.0),
    ActionDef(PriceKind.LIMIT_INSIDE, 1.0),
)
SCHEDULE_ACTIONS: tuple[ActionDef, ...] = (
    ActionDef(PriceKind.HOLD),
    ActionDef(PriceKind.MARKET, lead=0.0),  # = TWAP
    ActionDef(PriceKind.LIMIT_TOUCH, lead=0.0),
    ActionDef(PriceKind.LIMIT_TOUCH, lead=0.02),
    ActionDef(PriceKind.LIMIT_INSIDE, lead=0.02),
    ActionDef(PriceKind.MARKET, lead=0.02),
)
# "placement": where and how far ahead to rest against the schedule (the passive rule's own placement,
# LIMIT_INSIDE 2 % ahead, among them), a catch-up at market, or hold (``worker.placement`` learns on it).
PLACEMENT_ACTIONS: tuple[ActionDef, ...] = (
    ActionDef(PriceKind.HOLD),
    ActionDef(PriceKind.MARKET, lead=0.0),
    ActionDef(PriceKind.MARKET, lead=0.02),
    ActionDef(PriceKind.LIMIT_TOUCH, lead=0.0),
    ActionDef(PriceKind.LIMIT_TOUCH, lead=0.02),
    ActionDef(PriceKind.LIMIT_INSIDE, lead=0.0),
    ActionDef(PriceKind.LIMIT_INSIDE, lead=0.02),
    ActionDef(PriceKind.LIMIT_INSIDE, lead=0.05),
)
ACTION_SETS: dict[str, tuple[ActionDef, ...]] = {
    "slice": ACTIONS,
    "schedule": SCHEDULE_ACTIONS,
    "placement": PLACEMENT_ACTIONS,
}
OBS_SCALE = np.array([1, 1, 1, 1, 0.1, 1, 1, 0.02, 0.05, 0.1, 0.5, 1], dtype=np.float32)
OBS_LIMIT = 10.0


def scale(obs: Observation) -> np.ndarray:
    """The network's input: the observation vector scaled to order 1 and clipped."""
    return np.clip(obs.vector() * OBS_SCALE, -OBS_LIMIT, OBS_LIMIT)


def scale_rows(rows: np.ndarray) -> np.ndarray:
    """``scale`` of observations given as rows of their fields (float64, as the fields are Python floats)."""
    out: np.ndarray = np.clip(rows.astype(np.float32) * OBS_SCALE, -OBS_LIMIT, OBS_LIMIT)
    return out


def action_of(
    d: ActionDef, slice_qty: int, obs: Observation, job: JobContext, band: float | None = None
) -> Action:
    """A discrete action as child-order intent for one job. ``band`` (a fraction of the quantity) bounds how
    far behind the TWAP schedule a policy may fall: beyond it, the gap is crossed at market whatever the
    policy chose, so a learned policy stays within its band around the schedule."""
    if band is not None:
        behind = obs.time_elapsed - (1.0 - obs.inventory_left)
        if behind > band:
            return Action(PriceKind.MARKET, _lots(behind * job.quantity, job.lot))
    if d.price is PriceKind.HOLD:
        return HOLD
    if d.lead is None:
        return Action(d.price, int(slice_qty * d.slice_multiple))
    # Resting orders are cancelled before the new one goes out: aim from what is filled.
    target = min(1.0, obs.time_elapsed + d.lead)
    qty = _lots((target - (1.0 - obs.inventory_left)) * job.quantity, job.lot)
    return Action(d.price, qty) if qty > 0 else HOLD


def sized_columns(
    defs: tuple[ActionDef, ...], index: np.ndarray, rows: np.ndarray, sizes: np.ndarray, *,
    band: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``action_of`` for many jobs at once, as two int64 columns: each job's price kind (its value;
    ``KINDS`` turns it back) and quantity (``shared_action`` makes the ``Action``). ``index`` is each job's
    action in ``defs``, ``rows`` their observations as columns (``observe_columns``), ``sizes`` their (TWAP
    slice, quantity, lot) as integer rows. The sizes are the same float64 operations in the same order, so
    each equals ``action_of``'s for that job exactly (``np.rint`` rounds half to even, as ``round``)."""
    slice_qty, quantity, lot = sizes[:, 0], sizes[:, 1], sizes[:, 2]
    elapsed, done = rows[:, _ELAPSED], 1.0 - rows[:, _INVENTORY_LEFT]
    kind = np.array([int(d.price) for d in defs])[index]
    mult = np.array([d.slice_multiple for d in defs])[index]
    lead = np.array([np.nan if d.lead is None else d.lead for d in defs])[index]
    by_slice = np.trunc(slice_qty * mult).astype(np.int64)
    target = np.minimum(1.0, elapsed + np.nan_to_num(lead))
    by_lead = _lots_array((target - done) * quantity, lot)
    anchored = ~np.isnan(lead)
    qty = np.where(anchored, by_lead, by_slice)
    hold = (kind == PriceKind.HOLD) | (anchored & (by_lead <= 0))
    kind, qty = np.where(hold, int(PriceKind.HOLD), kind), np.where(hold, 0, qty)
    if band is not None:  # beyond the band behind the schedule: the gap at market, whatever was chosen
        behind = elapsed - done
        over = behind > band
        kind = np.where(over, int(PriceKind.MARKET), kind)
        qty = np.where(over, _lots_array(behind * quantity, lot), qty)
    return kind, qty


def shared_action(kind: PriceKind, quantity: int) -> Action:
    """An ``Action``, one object per (kind, quantity): actions are immutable, and a batch repeats a few."""
    return _shared_action(kind, quantity)


KINDS: tuple[PriceKind, ...] = tuple(PriceKind)  # by value
if any(k.value != i for i, k in enumerate(KINDS)):
    raise ImportError("PriceKind's values must count from 0: KINDS is indexed by them")
_ELAPSED, _INVENTORY_LEFT = (Observation.names().index(n) for n in ("time_elapsed", "inventory_left"))


def _lots_array(shares: np.ndarray, lot: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.maximum(0.0, np.rint(shares / lot)) * lot).astype(np.int64)
    return out


def _lots(shares: float, lot: int) -> int:
    return max(0, round(shares / lot)) * lot


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
