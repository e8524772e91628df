"""Each baseline's schedule, driven through a simple fill-everything loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.baselines import POV, TWAP, VWAP, AlmgrenChriss, volume_curve
from worker.policy import HOLD, Action, JobContext, Observation, Policy, PriceKind


def _obs(elapsed: float, filled: int, qty: int, market_volume: float = 0.0) -> Observation:
    return Observation(
        time_elapsed=elapsed,
        inventory_left=1 - filled / qty,
        open_frac=0.0,
        schedule_gap=filled / qty - elapsed,
        spread_bps=1.0,
        imbalance_1=0.0,
        imbalance_5=0.0,
        drift_bps=0.0,
        ret_short_bps=0.0,
        vol_bps=1.0,
        volume_ratio=1.0,
        market_volume=market_volume,
    )


def _run(policy: Policy, qty: int, steps: int, market: list[float] | None = None) -> list[int]:
    """Fill every order at once; return the cumulative filled quantity after each decision."""
    job = JobContext(quantity=qty)
    filled, path = 0, []
    for i in range(steps + 1):
        mv = market[i] / qty if market else 0.0
        act = policy.decide(_obs(i / steps, filled, qty, mv), job)
        if act.price is not PriceKind.HOLD:
            filled += act.quantity
        path.append(filled)
    return path


def test_twap_is_even_in_time() -> None:
    path = _run(TWAP(), 10_000, 100)
    assert path[-1] == 10_000
    for i, cum in enumerate(path):
        assert abs(cum - 10_000 * i / 100) <= 100  # within a lot of the straight line


def test_vwap_follows_the_u_shaped_curve() -> None:
    curve = volume_curve(0.0, 1.0)
    path = _run(VWAP(curve=curve), 100_000, 390)
    assert path[-1] == 100_000
    for i, cum in enumerate(path):
        assert abs(cum - 100_000 * curve(i / 390)) <= 100
    # U shape: more in the first and last half hours than in a mid-day half hour
    first, mid, last = path[30] - path[0], path[210] - path[180], path[390] - path[360]
    assert first > 1.5 * mid and last > 1.3 * mid


def test_vwap_curve_of_a_sub_window_is_rescaled() -> None:
    c = volume_curve(0.5, 0.75)
    assert c(0.0) == 0.0 and c(1.0) == pytest.approx(1.0)
    assert all(c(a) <= c(b) for a, b in zip(np.linspace(0, 1, 50), np.linspace(0, 1, 50)[1:], strict=False))


def test_pov_participates_near_its_rate() -> None:
    rng = np.random.default_rng(1)
    others = np.cumsum(rng.integers(0, 2_000, size=201)).astype(float)
    qty, rate = 50_000, 0.1
    job = JobContext(quantity=qty, participation_rate=rate)
    pol, filled = POV(), 0
    for i in range(200):
        act = pol.decide(_obs(i / 200, filled, qty, (others[i] + filled) / qty), job)
        if act.price is not PriceKind.HOLD:
            filled += act.quantity
        total_market = others[i] + filled
        if total_market > 20_000:
            assert filled / total_market == pytest.approx(rate, abs=0.02)
    assert filled < qty  # the market was too thin to finish at 10 %: POV does not chase


def test_pov_finishes_at_the_end_of_the_window() -> None:
    act = POV().decide(_obs(1.0, 1_000, 5_000, 0.5), JobContext(quantity=5_000, participation_rate=0.1))
    assert act == Action(PriceKind.MARKET, 4_000)


@pytest.mark.parametrize("kappa_t", [0.5, 2.0, 5.0])
def test_almgren_chriss_matches_the_closed_form(kappa_t: float) -> None:
    qty, steps = 100_000, 200
    path = _run(AlmgrenChriss(kappa_t=kappa_t), qty, steps)
    for i, cum in enumerate(path):
        remaining = qty * math.sinh(kappa_t * (1 - i / steps)) / math.sinh(kappa_t)
        assert abs((qty - cum) - remaining) <= 100
    assert path[-1] == qty


def test_almgren_chriss_limits() -> None:
    assert AlmgrenChriss(kappa_t=0.0).target(0.3) == pytest.approx(0.3)  # no risk aversion: TWAP
    assert AlmgrenChriss(kappa_t=8.0).target(0.2) > 0.75  # very risk averse: front-loaded
    assert AlmgrenChriss.urgency(lam=1e-6, sigma=0.02, eta=1e-7, horizon=2.0) == pytest.approx(
        math.sqrt(1e-6 * 0.02**2 / 1e-7) * 2.0
    )


def test_nothing_is_sent_when_ahead_or_done() -> None:
    job = JobContext(quantity=1_000)
    assert TWAP().decide(_obs(0.2, 500, 1_000), job) is HOLD
    assert TWAP().decide(_obs(1.0, 1_000, 1_000), job) is HOLD


def test_action_validation() -> None:
    with pytest.raises(ValueError):
        Action(PriceKind.MARKET, -1)
    with pytest.raises(ValueError):
        Action(PriceKind.HOLD, 100)
    assert len(_obs(0, 0, 1).vector()) == len(Observation.names())
