from __future__ import annotations

import numpy as np
import pytest

from market.session import SESSION_OPEN_S
from market.synthetic import SymbolSpec, SyntheticMarket
from models import BookLevel, Side
from tests.factories import T0, tick
from worker.features import Features, Tape

S = 1_000_000_000


def test_signs_are_toward_our_side() -> None:
    for side, sign in ((Side.BUY, 1), (Side.SELL, -1)):
        f = Features(side, 1_000, T0, T0 + 600 * S)
        f.on_tick(tick(ts_event=T0, bid_px=100.0, ask_px=100.02))
        f.on_tick(tick(ts_event=T0 + 60 * S, bid_px=100.10, ask_px=100.12, bid_sz=900, ask_sz=100))
        obs = f.observe(T0 + 60 * S, filled=250, open_qty=100)
        assert obs.drift_bps == pytest.approx(sign * 1e4 * 0.10 / 100.01)
        assert obs.imbalance_1 == pytest.approx(sign * 0.8)
        assert obs.time_elapsed == pytest.approx(0.1)
        assert obs.inventory_left == 0.75 and obs.open_frac == 0.1
        assert obs.schedule_gap == pytest.approx(0.15)


def test_volume_and_interval_vwap_include_our_fills() -> None:
    f = Features(Side.BUY, 1_000, T0, T0 + 600 * S, expected_volume=2_000)
    f.on_tick(tick(ts_event=T0, trade_px=100.0, trade_sz=500))
    f.add_own_fill(500, 101.0)
    assert f.interval_vwap == pytest.approx(100.5)
    obs = f.observe(T0 + 300 * S, filled=500, open_qty=0)
    assert obs.market_volume == 1.0
    assert obs.volume_ratio == pytest.approx(1000 / (2000 * 0.5))


def test_depth_imbalance_uses_five_levels() -> None:
    f = Features(Side.BUY, 100, T0, T0 + S)
    levels = dict(
        bids=tuple(BookLevel(px=100.0 - i / 100, sz=100) for i in range(5)),
        asks=tuple(BookLevel(px=100.01 + i / 100, sz=300 if i else 100) for i in range(5)),
    )
    f.on_tick(tick(ts_event=T0, bid_sz=100, ask_sz=100, **levels))
    obs = f.observe(T0, 0, 0)
    assert obs.imbalance_1 == 0.0
    assert obs.imbalance_5 == pytest.approx((500 - 1300) / 1800)


def test_no_data_no_observation() -> None:
    with pytest.raises(ValueError):
        Features(Side.BUY, 100, T0, T0 + S).observe(T0, 0, 0)


def test_volatility_is_that_of_the_mids_sampled_so_far_whenever_asked() -> None:
    """The tape keeps its volatility until the next 10 s sample: asked on any tick, between samples or on
    one, it is that of the 10 s log returns of the mids sampled up to that tick (the last 31), annualised
    to 60 s as sqrt(6) x their root mean square, in bps."""
    ticks = list(SyntheticMarket([SymbolSpec("AAPL")], 7, depth=1, close_s=SESSION_OPEN_S + 900))
    tape, next_ns = Tape(), 0
    sampled: list[float] = []
    for i, t in enumerate(ticks):
        tape.on_tick(t)
        if t.ts_event >= next_ns:
            sampled, next_ns = [*sampled, t.mid][-31:], t.ts_event + 10 * 1_000_000_000
        if i % 3 == 0:  # on some ticks only, so that views span samples
            rets = np.diff(np.log(sampled)) * 1e4
            want = float(np.sqrt(np.mean(rets**2)) * np.sqrt(6)) if len(rets) else 0.0
            assert tape.view().vol_bps == pytest.approx(want, rel=1e-9, abs=1e-12)
