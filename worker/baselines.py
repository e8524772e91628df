"""The schedules every desk knows. Each is a target for the fraction of the job filled by a fraction of
the window; at each decision the policy sends the shortfall against that target (rounded to lots) as a
marketable order, and nothing when ahead. The last decision sends whatever is left.

- TWAP: linear in time.
- VWAP: follows a cumulative intraday volume curve (``volume_curve``), the U shape of equity volume.
- POV: a participation rate of the market volume seen so far (not a schedule in time).
- Almgren-Chriss: the closed-form optimal trajectory for risk aversion ``lam``:
  remaining(t) = X sinh(kappa (T - t)) / sinh(kappa T), kappa = sqrt(lam sigma^2 / eta).

And one fixed placement rule, a research reference for the RL policy (the backtest's ``passive``; not a
live strategy): the TWAP schedule worked with resting orders (``PassiveSchedule``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from worker.policy import HOLD, Action, ActionDef, JobContext, Observation, PriceKind, action_of

# A U-shaped intensity over the trading day (same family as market.synthetic's), as a cumulative curve
# sampled on 391 one-minute points from 09:30 to 16:00.
_MIN = np.linspace(0.0, 1.0, 391)
_U = 1 + 3.0 * np.exp(-_MIN / 0.05) + 2.0 * np.exp(-(1 - _MIN) / 0.05)
_CUM = np.concatenate([[0.0], np.cumsum((_U[1:] + _U[:-1]) / 2)])
DAY_CURVE = _CUM / _CUM[-1]


def volume_curve(start_frac: float, end_frac: float) -> Callable[[float], float]:
    """Cumulative expected volume over a job window [start, end] (fractions of the trading day),
    rescaled to go from 0 to 1 over the window."""
    lo, hi = float(np.interp(start_frac, _MIN, DAY_CURVE)), float(np.interp(end_frac, _MIN, DAY_CURVE))

    def curve(elapsed: float) -> float:
        day = start_frac + min(max(elapsed, 0.0), 1.0) * (end_frac - start_frac)
        return (float(np.interp(day, _MIN, DAY_CURVE)) - lo) / (hi - lo) if hi > lo else elapsed

    return curve


def _catch_up(target_frac: float, obs: Observation, job: JobContext) -> Action:
    done = 1.0 - obs.inventory_left + obs.open_frac  # filled or already working
    if obs.time_elapsed >= 1.0 - 1e-9:
        target_frac = 1.0
    want = (target_frac - done) * job.quantity
    left = obs.inventory_left * job.quantity - obs.open_frac * job.quantity
    qty = min(round(left), int(want // job.lot) * job.lot)
    if target_frac >= 1.0:
        qty = round(left)
    return Action(PriceKind.MARKET, qty) if qty > 0 else HOLD


@dataclass
class TWAP:
    name: str = "twap"

    def target(self, elapsed: float) -> float:
        return min(max(elapsed, 0.0), 1.0)

    def decide(self, obs: Observation, job: JobContext) -> Action:
        return _catch_up(self.target(obs.time_elapsed), obs, job)


@dataclass
class VWAP:
    curve: Callable[[float], float] = field(default_factory=lambda: volume_curve(0.0, 1.0))
    name: str = "vwap"

    def target(self, elapsed: float) -> float:
        return self.curve(elapsed)

    def decide(self, obs: Observation, job: JobContext) -> Action:
        return _catch_up(self.target(obs.time_elapsed), obs, job)


@dataclass
class POV:
    rate: float = 0.1
    name: str = "pov"

    def decide(self, obs: Observation, job: JobContext) -> Action:
        rate = job.participation_rate or self.rate
        # Our own fills are part of the market volume: rate * (others + ours) = ours.
        return _catch_up(min(1.0, rate * obs.market_volume), obs, job)


@dataclass
class AlmgrenChriss:
    """``kappa_t`` = kappa * T (dimensionless urgency): 0 is TWAP, larger front-loads the schedule."""

    kappa_t: float = 2.0
    name: str = "almgren-chriss"

    @staticmethod
    def urgency(lam: float, sigma: float, eta: float, horizon: float) -> float:
        """kappa T from risk aversion ``lam``, volatility ``sigma``, temporary impact ``eta``, horizon T."""
        return math.sqrt(lam * sigma**2 / eta) * horizon

    def remaining(self, elapsed: float) -> float:
        e = min(max(elapsed, 0.0), 1.0)
        if self.kappa_t < 1e-9:
            return 1.0 - e
        return math.sinh(self.kappa_t * (1 - e)) / math.sinh(self.kappa_t)

    def target(self, elapsed: float) -> float:
        return 1.0 - self.remaining(elapsed)

    def decide(self, obs: Observation, job: JobContext) -> Action:
        return _catch_up(self.target(obs.time_elapsed), obs, job)


@dataclass
class PassiveSchedule:
    """Every decision, rest one tick inside the touch (at it when the spread is one tick) what brings the
    filled fraction to the TWAP target ``lead`` ahead; cross at market once more than ``band`` behind. The
    placement an RL policy anchored on the schedule starts from (``worker.policy.SCHEDULE_ACTIONS[4]``)."""

    lead: float = 0.02
    band: float = 0.05
    name: str = "passive"

    def decide(self, obs: Observation, job: JobContext) -> Action:
        return action_of(ActionDef(PriceKind.LIMIT_INSIDE, lead=self.lead), 0, obs, job, self.band)
