from __future__ import annotations

import math

import pytest

from market.fills import FillModel, FillParams
from market.impact import Impact, ImpactParams
from models import BookLevel, Side
from tests.factories import T0, tick

S = 1_000_000_000


def _book_tick(**kw: object) -> object:
    base: dict[str, object] = {
        "bid_px": 100.00, "bid_sz": 300, "ask_px": 100.01, "ask_sz": 200,
        "bids": (BookLevel(px=100.00, sz=300), BookLevel(px=99.99, sz=500)),
        "asks": (BookLevel(px=100.01, sz=200), BookLevel(px=100.02, sz=400)),
    }  # fmt: skip
    base.update(kw)
    return tick(**base)


def _no_impact() -> FillModel:
    return FillModel(FillParams(impact=ImpactParams(permanent=0.0, transient=0.0)))


class TestImpact:
    def test_permanent_stays_transient_decays_by_half_life(self) -> None:
        imp = Impact(ImpactParams(permanent=10.0, transient=40.0, half_life_s=30.0))
        jump = imp.trade(Side.BUY, 400, T0)  # sqrt(4 lots) = 2
        assert jump == pytest.approx(100.0)
        assert imp.offset(T0) == pytest.approx(100.0)
        assert imp.offset(T0 + 30 * S) == pytest.approx(20 + 40)
        assert imp.offset(T0 + 3000 * S) == pytest.approx(20, abs=1e-6)

    def test_sells_push_down_and_square_root_in_size(self) -> None:
        a, b = Impact(), Impact()
        a.trade(Side.SELL, 100, T0)
        b.trade(Side.SELL, 400, T0)
        assert a.offset(T0) < 0 and b.offset(T0) == pytest.approx(2 * a.offset(T0))

    def test_our_permanent_impact_is_linear_so_lumping_or_splitting_moves_the_price_alike(self) -> None:
        params = FillParams().impact
        assert params.permanent_linear
        one, many = Impact(params), Impact(params)
        one.trade(Side.BUY, 1000, T0)
        for k in range(10):
            many.trade(Side.BUY, 100, T0 + k)
        assert many.permanent == pytest.approx(one.permanent) == pytest.approx(10 * params.permanent)
        # The crowd's impact in the synthetic market keeps the square-root law per trade.
        crowd = Impact(ImpactParams(permanent=3.0, transient=8.0))
        crowd.trade(Side.BUY, 400, T0)
        assert crowd.permanent == pytest.approx(6.0)


class TestMarketOrders:
    def test_walks_the_book(self) -> None:
        fm = _no_impact()
        fills = fm.market("c1", Side.BUY, 500, _book_tick())
        assert [(f.price, f.qty) for f in fills] == [(1_000_100, 200), (1_000_200, 300)]

    def test_beyond_shown_depth_the_profile_of_the_shown_book_continues_until_filled(self) -> None:
        fm = _no_impact()
        t = _book_tick()
        fm.observe(t)  # shown levels: one cent apart, 350 shares on average
        fills = fm.market("c1", Side.SELL, 5_000, t)
        assert sum(f.qty for f in fills) == 5_000  # a market order always completes
        assert [(f.price, f.qty) for f in fills[:4]] == [
            (1_000_000, 300),
            (999_900, 500),
            (999_800, 350),
            (999_700, 350),
        ]
        prices = [f.price for f in fills]
        assert prices == sorted(prices, reverse=True) and len(set(prices)) == len(prices)

    def test_the_depth_profile_learns_spacing_and_size_from_the_data(self) -> None:
        fm = _no_impact()
        wide = _book_tick(
            bids=(BookLevel(px=100.00, sz=1000), BookLevel(px=99.95, sz=1000)),
            asks=(BookLevel(px=100.01, sz=1000), BookLevel(px=100.06, sz=1000)),
            bid_sz=1000, ask_sz=1000,
        )  # fmt: skip
        for _ in range(5000):
            fm.observe(wide)
        assert fm.profile.step() == 500  # five cents between hidden levels
        fills = fm.market("c1", Side.BUY, 4_000, wide)
        assert [(f.price, f.qty) for f in fills] == [
            (1_000_100, 1000), (1_000_600, 1000), (1_001_100, 1000), (1_001_600, 1000),
        ]  # fmt: skip

    def test_our_fills_move_the_price_we_see_next(self) -> None:
        fm = FillModel(FillParams(impact=ImpactParams(permanent=100.0, transient=300.0, half_life_s=60.0)))
        t = _book_tick()
        before = fm.touch(t)
        fm.market("c1", Side.BUY, 400, t)  # sqrt(4 lots) = 2: 2 cents permanent, 6 transient
        after = fm.touch(t)
        assert after[1] > before[1]
        later = fm.touch(_book_tick(ts_event=T0 + 3600 * S))
        assert before[1] < later[1] < after[1]  # the transient part has decayed, the permanent stays


class TestLimitOrders:
    def test_marketable_part_fills_and_rest_rests(self) -> None:
        fm = _no_impact()
        fills = fm.limit("c1", Side.BUY, 300, 1_000_100, _book_tick())
        assert [(f.price, f.qty) for f in fills] == [(1_000_100, 200)]
        assert fm.resting["c1"].qty == 100

    def test_queue_ahead_is_consumed_by_trades_before_we_fill(self) -> None:
        fm = _no_impact()
        assert fm.limit("c1", Side.BUY, 200, 1_000_000, _book_tick()) == []
        assert fm.resting["c1"].queue_ahead == 300
        hit = dict(trade_px=100.00, trade_sz=250, trade_side=Side.SELL)
        assert (
            fm.on_tick(
                _book_tick(bid_sz=50, bids=(BookLevel(px=100.0, sz=50), BookLevel(px=99.99, sz=500)), **hit)
            )
            == []
        )
        assert fm.resting["c1"].queue_ahead == 50
        fills = fm.on_tick(_book_tick(**hit))
        assert [(f.qty, f.aggressive) for f in fills] == [(200, False)]
        assert "c1" not in fm.resting

    def test_buy_trades_do_not_fill_a_resting_buy(self) -> None:
        fm = _no_impact()
        fm.limit("c1", Side.BUY, 100, 1_000_000, _book_tick())
        assert fm.on_tick(_book_tick(trade_px=100.01, trade_sz=1000, trade_side=Side.BUY)) == []

    def test_improving_the_touch_puts_us_first(self) -> None:
        fm = _no_impact()
        t = _book_tick(bid_px=100.00, ask_px=100.03, asks=(BookLevel(px=100.03, sz=200),))
        fm.limit("c1", Side.BUY, 100, 1_000_100, t)
        assert fm.resting["c1"].queue_ahead == 0
        fills = fm.on_tick(_book_tick(ask_px=100.03, asks=(BookLevel(px=100.03, sz=200),), trade_px=100.01,
                                      trade_sz=40, trade_side=Side.SELL))  # fmt: skip
        assert [f.qty for f in fills] == [40] and fm.resting["c1"].qty == 60

    def test_a_quote_crossing_our_price_meets_the_queue_ahead_first_once_per_crossing(self) -> None:
        fm = _no_impact()
        fm.limit("c1", Side.SELL, 100, 1_000_200, _book_tick())  # behind the 400 shown at 100.02
        crossing = {"bid_px": 100.02, "ask_px": 100.03, "bids": (), "asks": ()}
        assert fm.on_tick(_book_tick(bid_sz=300, **crossing)) == []  # 300 bid there: the queue ahead takes it
        # Nothing is shown at our price any more (the asks start at 100.03): nobody is left ahead of us.
        assert fm.resting["c1"].queue_ahead == 0
        assert fm.on_tick(_book_tick(bid_sz=300, **crossing)) == []  # the same quote again: not new liquidity
        assert fm.on_tick(_book_tick(ask_px=100.03, asks=())) == []  # the quote leaves our price
        fills = fm.on_tick(_book_tick(bid_sz=60, **crossing))  # a new crossing: 60 for us
        assert [(f.price, f.qty) for f in fills] == [(1_000_200, 60)] and fm.resting["c1"].qty == 40

    def test_a_crossing_larger_than_the_queue_ahead_fills_us(self) -> None:
        fm = _no_impact()
        fm.limit("c1", Side.SELL, 300, 1_000_200, _book_tick())  # behind the 400 shown at 100.02
        fills = fm.on_tick(_book_tick(bid_px=100.02, bid_sz=500, ask_px=100.03, bids=(), asks=()))
        assert [(f.price, f.qty) for f in fills] == [(1_000_200, 100)]

    def test_cancel_returns_open_quantity(self) -> None:
        fm = _no_impact()
        fm.limit("c1", Side.BUY, 100, 999_900, _book_tick())
        assert fm.cancel("c1") == 100 and fm.cancel("c1") == 0
        with pytest.raises(ValueError):
            fm.limit("c2", Side.BUY, 100, 999_900, _book_tick())
            fm.limit("c2", Side.BUY, 100, 999_900, _book_tick())

    def test_passive_fills_cause_no_impact(self) -> None:
        fm = FillModel()
        fm.limit("c1", Side.BUY, 100, 1_000_000, _book_tick())
        fm.on_tick(_book_tick(trade_px=100.0, trade_sz=1000, trade_side=Side.SELL))
        assert math.isclose(fm.impact.offset(T0), 0.0)
