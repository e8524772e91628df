"""Each stylised fact of real equity books, checked on generated data."""

from __future__ import annotations

import numpy as np
import pytest

from market.synthetic import MarketParams, SymbolSim, SymbolSpec, SyntheticMarket
from models import Side, Tick

MIN = 60 * 1_000_000_000


@pytest.fixture(scope="module")
def session() -> list[Tick]:
    return list(SymbolSim(SymbolSpec("AAPL"), seed=1, depth=0))


def _bucket(ticks: list[Tick], seconds: int) -> np.ndarray:
    ts = np.array([t.ts_event for t in ticks])
    return ((ts - ts[0]) // (seconds * 1_000_000_000)).astype(int)


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[lag:] * x[:-lag]).sum() / (x * x).sum())


def _returns(ticks: list[Tick], seconds: int) -> np.ndarray:
    b = _bucket(ticks, seconds)
    mid = np.array([t.mid for t in ticks])
    last = mid[np.searchsorted(b, np.arange(b.max() + 1), side="right") - 1]
    return np.diff(np.log(last))


def test_deterministic_from_a_seed() -> None:
    a = list(SyntheticMarket(["AAPL", "MSFT"], seed=5, close_s=9 * 3600 + 40 * 60))
    b = list(SyntheticMarket(["AAPL", "MSFT"], seed=5, close_s=9 * 3600 + 40 * 60))
    c = list(SyntheticMarket(["AAPL", "MSFT"], seed=6, close_s=9 * 3600 + 40 * 60))
    assert a == b and a != c


def test_symbols_merge_in_event_time_and_keep_their_own_sequence() -> None:
    ticks = list(SyntheticMarket(["AAPL", "MSFT", "NVDA"], seed=2, close_s=9 * 3600 + 35 * 60))
    assert [t.ts_event for t in ticks] == sorted(t.ts_event for t in ticks)
    for sym in ("AAPL", "MSFT", "NVDA"):
        seqs = [t.seq for t in ticks if t.symbol == sym]
        assert seqs == list(range(1, len(seqs) + 1))


def test_u_shaped_intraday_volume(session: list[Tick]) -> None:
    b = _bucket(session, 30 * 60)  # 13 half-hours
    vol = np.array([t.trade_sz for t in session])
    per = np.bincount(b, weights=vol)
    middle = np.median(per[3:10])
    assert per[0] > 1.5 * middle and per[-1] > 1.3 * middle


def test_spread_wider_after_the_open(session: list[Tick]) -> None:
    b = _bucket(session, 60)
    spread = np.array([t.spread for t in session])
    assert spread[b < 10].mean() > 1.8 * spread[(b > 120) & (b < 300)].mean()


def test_discrete_tick_size(session: list[Tick]) -> None:
    for t in session[:20_000]:
        for px in (t.bid_px, t.ask_px):
            assert abs(px * 100 - round(px * 100)) < 1e-6
        assert round(t.spread * 100) >= 1


def test_volatility_clustering(session: list[Tick]) -> None:
    r = _returns(session, 10)
    abs_ac = np.mean([_autocorr(np.abs(r), lag) for lag in range(1, 11)])
    raw_ac = np.mean([_autocorr(r, lag) for lag in range(1, 11)])
    assert abs_ac > 0.08 and abs(raw_ac) < 0.05
    # Against the same market without GARCH feedback: the clustering is the model's, not the U-shape's.
    flat = list(
        SymbolSim(SymbolSpec("AAPL"), seed=1, depth=0, params=MarketParams(garch_alpha=0, garch_beta=0))
    )
    flat_r = _returns(flat, 10)
    assert abs_ac > np.mean([_autocorr(np.abs(flat_r), lag) for lag in range(1, 11)]) + 0.04


def test_fat_tails(session: list[Tick]) -> None:
    r = _returns(session, 10)
    kurtosis = float(((r - r.mean()) ** 4).mean() / r.var() ** 2)
    assert kurtosis > 4.0  # a Gaussian has 3


def test_autocorrelated_trade_signs(session: list[Tick]) -> None:
    signs = np.array([1 if t.trade_side is Side.BUY else -1 for t in session if t.trade_sz])
    assert _autocorr(signs, 1) > 0.4 and _autocorr(signs, 5) > 0.05


def test_impact_of_aggressive_flow_partly_decays() -> None:
    close = 10 * 3600
    base = SymbolSim(SymbolSpec("AAPL"), seed=3, depth=0, close_s=close)
    hit = SymbolSim(SymbolSpec("AAPL"), seed=3, depth=0, close_s=close)
    for _ in range(500):
        base.step()
        hit.step()
    t0 = hit.t_ns
    hit.trade(Side.BUY, 100_000)  # our own large market order: 1,000 lots
    diffs = []
    while (a := base.step()) is not None and (b := hit.step()) is not None:
        diffs.append(((b.ts_event - t0) / 1e9, b.mid - a.mid))
    peak = max(d for s, d in diffs if s < 5)
    late = np.mean([d for s, d in diffs if 300 < s < 400])
    assert peak >= 0.025  # dollars: the order lifted the price by several cents
    assert 0 < late < 0.5 * peak  # most of it decays, some stays


def test_every_tick_is_a_valid_message(session: list[Tick]) -> None:
    assert all(t.bid_px < t.ask_px for t in session)
    vols = [t.volume for t in session]
    assert vols == sorted(vols)


def test_depth_levels_are_ordered_and_match_the_touch() -> None:
    ticks = list(SymbolSim(SymbolSpec("MSFT", price=400.0), seed=1, close_s=9 * 3600 + 35 * 60, depth=5))
    assert all(len(t.bids) == 5 and len(t.asks) == 5 for t in ticks)
    assert all(t.bids[0].px == t.bid_px and t.asks[0].px == t.ask_px for t in ticks)
