"""The realism gate: generated days must show the facts of real books (``market.facts``, docs/MARKET.md), and
the backtest's replay must fill a passive order exactly when exact FIFO on the same tape says it fills.

A generated day of each profile is measured whole; a fact outside its range fails the test with the figure
(printed for the log either way). Seeds here are used nowhere else (not by training, not by the held-out
backtest days)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from market import facts
from market.facts import LARGE_TICK_RANGES, REAL_RANGES, Tape, outside
from market.prices import to_units
from market.recorded import QueueFillModel, RecordedDay, generate_day
from models import Side

GATE_SEED = 3_141_592


def _day(profile: str, seed: int = GATE_SEED, **kw: int) -> RecordedDay:
    return RecordedDay.from_messages("GEN", "2026-01-05", generate_day(seed, "GEN", profile=profile, **kw), 5)


@pytest.mark.parametrize("profile", ["mid", "high"])
def test_a_wide_spread_profile_shows_the_facts_of_real_large_caps(profile: str) -> None:
    f = facts.facts(Tape.from_day(_day(profile)))
    print(facts.table({profile: f}))
    assert outside(f, REAL_RANGES) == {}


def test_the_large_tick_profile_has_one_tick_spreads_and_deep_queues() -> None:
    f = facts.facts(Tape.from_day(_day("large-tick")))
    print(facts.table({"large-tick": f}))
    assert outside(f, LARGE_TICK_RANGES) == {}
    # Waiting behind thousands of shares: fills take longer than on the wide-spread books' one-order touch.
    wide = facts.facts(Tape.from_day(_day("high")))
    assert f["fill_time_median_s"] > wide["fill_time_median_s"]


def test_the_gate_fails_a_queue_blind_market() -> None:
    """The tick-level synthetic market with its quote-based fill model credits resting orders far more than
    real books do: the gate must see it (the reason backtests run on generated order-level days)."""
    from market.synthetic import SymbolSim, SymbolSpec

    sim = SymbolSim(SymbolSpec("SYN", price=200.0), GATE_SEED, start_s=34_200, close_s=34_200 + 3600)
    f = facts.facts(Tape.from_ticks("synthetic", list(sim)))
    assert f["fill_30s"] > REAL_RANGES["fill_30s"][1]
    assert "fill_30s" in outside(f, REAL_RANGES)


def test_the_replays_passive_fills_match_exact_fifo_on_the_same_tape() -> None:
    """Every order of the facts' experiment on a generated hour, replayed alone through the backtest's
    queue-aware fill model (``QueueFillModel``, the one ``paceline backtest --lobster`` uses): its first
    fill comes on the same message as exact FIFO's, order by order."""
    day = _day("high", seed=GATE_SEED + 1, end_s=34_200 + 3600)
    tape = Tape.from_day(day)
    fates = facts._fates_fifo(tape)
    assert len(fates) >= 60
    horizon = facts.FILL_HORIZONS_S[-1] * facts.S
    agree = 0
    for f in fates:
        fm = QueueFillModel()
        i0 = int(tape.at(f.join_ns))
        side = Side.BUY if f.side == 1 else Side.SELL
        first: int | None = None
        placed = False
        t0 = day.day_ns + f.join_ns
        for tick in day.ticks(fm, t0 - 60 * facts.S, t0 + horizon):
            if not placed and tick.seq >= i0:
                assert to_units(tick.bid_px if f.side == 1 else tick.ask_px) == f.price
                fm.limit("us", side, facts.ORDER, f.price, tick)
                placed = True
                continue
            if placed and fm.on_tick(tick):
                first = tick.ts_event - day.day_ns
                break
        assert placed
        assert first == f.first_ns, (f, first)
        agree += 1
    filled = sum(f.first_ns is not None for f in fates)
    print(f"{agree} orders, {filled} filled within 10 min: first fills identical order by order")
    assert 0 < filled < len(fates)


def test_facts_of_a_day_are_finite_and_consistent() -> None:
    f = facts.facts(Tape.from_day(_day("mid", end_s=34_200 + 5400)))
    for k in ("fill_30s", "fill_120s", "fill_600s"):
        assert 0 <= f[k] <= f[f"naive_{k}"] <= 1  # the queue can only delay a fill
    assert f["fill_30s"] <= f["fill_120s"] <= f["fill_600s"]
    assert all(not math.isnan(f[k]) for k in REAL_RANGES if k not in ("volume_last_30m",))
    assert np.isclose(f["cancel_to_submit"], f["cancels"] / f["submits"])
