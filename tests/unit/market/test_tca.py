"""The client's TCA uses the one shortfall definition: what did not fill is costed at the mid at the end, and
the shortfall splits into delay, spread and impact, timing and opportunity that add up to it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.costs import shortfall_bps, shortfall_parts
from market.tca import Tca, tracked_from
from models import Liquidity, Side
from tests.factories import T0, fill, tick


def test_a_parent_that_ends_part_filled_pays_the_opportunity_cost() -> None:
    tca = Tca()
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0 - 1))
    tca.track("P1", "AAPL", Side.BUY, T0)
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0, trade_px=100.02, trade_sz=1000))  # arrival
    tca.on_tick(tick(bid_px=100.20, ask_px=100.22, ts_event=T0 + 60, seq=2, trade_px=100.22, trade_sz=1000))
    f = tca.finish("P1", avg_px=100.05, filled=400, quantity=1000)
    assert f is not None
    expected = (400 * (100.05 - 100.01) + 600 * (100.21 - 100.01)) / (1000 * 100.01) * 1e4
    assert f.is_bps == pytest.approx(expected, abs=1e-3)
    assert f.is_bps == pytest.approx(
        shortfall_bps(Side.BUY, 100.01, quantity=1000, filled=400, notional=400 * 100.05, end_mid=100.21),
        abs=1e-3,
    )
    assert f.interval_vwap == pytest.approx(100.12)
    assert f.vwap_slippage_bps is not None and f.vwap_slippage_bps < 0  # bought below the interval's VWAP
    assert tca.finish("P1", 100.05, 400, 1000) is None  # once


def test_the_shortfall_splits_into_delay_spread_timing_and_opportunity() -> None:
    tca = Tca()
    tca.track("P1", "AAPL", Side.BUY, T0)
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0))  # arrival mid 100.01
    tca.on_tick(tick(bid_px=100.04, ask_px=100.06, ts_event=T0 + 10, seq=2))  # mid 100.05
    tca.on_tick(tick(bid_px=100.10, ask_px=100.12, ts_event=T0 + 20, seq=3))  # mid 100.11
    # The fill of T0+10 reaches us after the next tick: it is costed against the mid of its own time.
    tca.on_fill(fill(fill_id="F1", parent_id="P1", qty=400, px=100.06, ts_event=T0 + 10))
    tca.on_fill(fill(fill_id="F2", parent_id="P1", qty=200, px=100.10, ts_event=T0 + 20))  # below the mid
    tca.on_fill(fill(fill_id="F2", parent_id="P1", qty=200, px=100.10, ts_event=T0 + 20))  # a redelivery
    tca.on_tick(tick(bid_px=100.20, ask_px=100.22, ts_event=T0 + 60, seq=4))  # mid 100.21 at the end
    avg = (400 * 100.06 + 200 * 100.10) / 600
    f = tca.finish("P1", avg_px=avg, filled=600, quantity=1000)
    assert f is not None
    scale = 1e4 / (1000 * 100.01)
    assert f.delay_bps == pytest.approx(600 * (100.05 - 100.01) * scale, abs=1e-3)
    assert f.spread_bps == pytest.approx((400 * 0.01 - 200 * 0.01) * scale, abs=1e-3)
    assert f.timing_bps == pytest.approx(200 * (100.11 - 100.05) * scale, abs=1e-3)
    assert f.opportunity_bps == pytest.approx(400 * (100.21 - 100.01) * scale, abs=1e-3)
    assert f.delay_bps + f.spread_bps + f.timing_bps + f.opportunity_bps == pytest.approx(f.is_bps, abs=3e-3)
    assert f.first_fill_mid == pytest.approx(100.05)
    # TWAP at the far touch, held from each tick to the next: 100.02 for 10 ns, 100.06 for 10, 100.12 for 40.
    twap = (100.02 * 10 + 100.06 * 10 + 100.12 * 40) / 60
    assert f.twap_px == pytest.approx(twap, abs=1e-6)
    assert f.twap_slippage_bps == pytest.approx((avg - twap) / twap * 1e4, abs=1e-3)
    assert (f.arrival_ts, f.end_ts) == (T0, T0 + 60)


def test_a_maker_fill_is_costed_against_the_quote_it_rested_in() -> None:
    tca = Tca()
    tca.track("P1", "AAPL", Side.BUY, T0)
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0))  # our bid rests at 100.00; mid 100.01
    tca.on_tick(tick(bid_px=99.96, ask_px=99.98, ts_event=T0 + 5, seq=2, trade_px=100.00, trade_sz=500))
    mid = tca.on_fill(fill(fill_id="F1", parent_id="P1", qty=100, px=100.00, ts_event=T0 + 5,
                           liquidity=Liquidity.MAKER))  # fmt: skip
    assert mid == pytest.approx(100.01)  # the quote it rested in, not the one after the trade through it
    f = tca.finish("P1", avg_px=100.00, filled=100, quantity=100)
    assert f is not None and f.spread_bps == pytest.approx(
        -0.01 / 100.01 * 1e4, abs=1e-3
    )  # half the spread earned
    assert f.delay_bps == 0 and f.timing_bps == pytest.approx(0, abs=1e-3)


def test_a_sell_takes_the_bid_as_its_twap_touch_and_gains_when_it_sells_above_the_mid() -> None:
    tca = Tca()
    tca.track("P1", "AAPL", Side.SELL, T0)
    tca.on_tick(tick(bid_px=50.00, ask_px=50.02, ts_event=T0))
    tca.on_fill(fill(fill_id="F1", parent_id="P1", side=Side.SELL, qty=100, px=50.02, ts_event=T0))
    tca.on_tick(tick(bid_px=50.00, ask_px=50.02, ts_event=T0 + 100, seq=2))
    f = tca.finish("P1", avg_px=50.02, filled=100, quantity=100)
    assert f is not None and f.twap_px == pytest.approx(50.00)
    assert f.spread_bps == pytest.approx(-0.01 / 50.01 * 1e4, abs=1e-3) and f.opportunity_bps == 0
    assert f.twap_slippage_bps is not None and f.twap_slippage_bps < 0  # sold above what TWAP would get


@given(
    side=st.sampled_from(list(Side)),
    arrival=st.floats(1.0, 500.0),
    fills=st.lists(st.tuples(st.integers(1, 500), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)), max_size=8),
    quantity=st.integers(1, 5000),
    end_move=st.floats(-1.0, 1.0),
)
def test_the_parts_add_up_to_the_shortfall(
    side: Side, arrival: float, fills: list[tuple[int, float, float]], quantity: int, end_move: float
) -> None:
    filled = min(quantity, sum(q for q, _, _ in fills))
    notional = sum(q * (arrival + m + d) for q, m, d in fills)
    mids = sum(q * (arrival + m) for q, m, _ in fills)
    notional = notional * filled / max(1, sum(q for q, _, _ in fills))
    parts = shortfall_parts(
        side, arrival, quantity=quantity, filled=filled, notional=notional, end_mid=arrival + end_move,
        first_mid=arrival + fills[0][1] if fills else None, mid_notional=mids, seen_notional=notional,
    )  # fmt: skip
    total = shortfall_bps(side, arrival, quantity=quantity, filled=filled, notional=notional,
                          end_mid=arrival + end_move)  # fmt: skip
    assert parts.total == pytest.approx(total, abs=1e-6)


def test_the_arrival_ticks_print_counts_whether_the_order_or_the_tick_came_first() -> None:
    """The endpoint may see an order just after the tick it arrives at (the replay always sees it before):
    the interval VWAP must not depend on which."""
    ticks = [
        tick(bid_px=100.00, ask_px=100.02, ts_event=T0, trade_px=100.02, trade_sz=900),  # the arrival tick
        tick(bid_px=100.10, ask_px=100.12, ts_event=T0 + 50, seq=2, trade_px=100.12, trade_sz=100),
    ]
    figures = []
    for order_first in (True, False):
        tca = Tca()
        if order_first:
            tca.track("P1", "AAPL", Side.BUY, T0)
        tca.on_tick(ticks[0])
        if not order_first:
            tca.track("P1", "AAPL", Side.BUY, T0)
        tca.on_tick(ticks[1])
        figures.append(tca.finish("P1", avg_px=100.05, filled=100, quantity=100))
    assert figures[0] is not None and figures[0] == figures[1]
    assert figures[0].interval_vwap == pytest.approx((100.02 * 900 + 100.12 * 100) / 1000)


@pytest.mark.parametrize("cut", [3, 6, 9])
def test_a_restarted_service_restores_a_working_parents_figures_from_the_recorded_ticks_and_fills(
    cut: int,
) -> None:
    """One instance lives through the day; another stops after ``cut`` ticks, is restored from everything
    recorded up to then (the order was accepted after its start, at tick 2), and goes on from a
    subscription that redelivers the last three ticks it had already seen: the same figures."""
    ticks = [
        tick(bid_px=100.00 + 0.03 * i - 0.05 * (i % 3), ask_px=100.02 + 0.03 * i - 0.05 * (i % 3),
             ts_event=T0 + 10 * i, seq=i + 1, trade_px=100.02 + 0.03 * i, trade_sz=100 + 10 * i)
        for i in range(12)
    ]  # fmt: skip
    fills = {3: fill(fill_id="F1", parent_id="P1", qty=300, px=100.10, ts_event=T0 + 30),
             5: fill(fill_id="F2", parent_id="P1", qty=200, px=100.12, ts_event=T0 + 50,
                     liquidity=Liquidity.MAKER),
             8: fill(fill_id="F3", parent_id="P1", qty=400, px=100.30, ts_event=T0 + 80)}  # fmt: skip
    accepted = 2  # the desk took the order at tick 2 (its ts_init); its window started at T0 - 100
    live, restored = Tca(), Tca()
    for tca in (live, restored):
        for i, t in enumerate(ticks[:cut]):
            tca.on_tick(t)
            if i == accepted:  # already started: it arrives at the mid now
                tca.track("P1", "AAPL", Side.BUY, T0 - 100)
            if i in fills:
                tca.on_fill(fills[i])
    before = restored
    restored = Tca()
    restored.track("P1", "AAPL", Side.BUY, tracked_from(T0 - 100, ticks[accepted].ts_event))
    restored.restore(ticks[:cut], [f for i, f in fills.items() if i < cut])
    assert restored.arrival("P1") == before.arrival("P1") == ticks[accepted].mid
    for i, t in enumerate(ticks):
        if i >= cut - 3:  # the subscription redelivers from where it acknowledged
            restored.on_tick(t)
        if i >= cut:
            live.on_tick(t)
            if i in fills:
                live.on_fill(fills[i])
                restored.on_fill(fills[i])
    a = live.finish("P1", avg_px=100.2, filled=900, quantity=1000)
    b = restored.finish("P1", avg_px=100.2, filled=900, quantity=1000)
    assert a is not None and a == b


def test_a_restore_does_not_pass_over_a_replayed_earlier_day() -> None:
    """Only the ticks redelivered after a restore are passed over: once a newer one came, an earlier day
    replayed on the topic counts again."""
    tca = Tca()
    tca.restore([tick(ts_event=T0 + 10, seq=5)], [])
    tca.on_tick(tick(ts_event=T0 + 10, seq=5, bid_px=99.0, ask_px=99.02))  # redelivered: not counted
    assert tca.mid("AAPL") == pytest.approx(100.005)
    tca.on_tick(tick(ts_event=T0 + 20, seq=6, bid_px=101.0, ask_px=101.02))
    tca.on_tick(tick(ts_event=T0 - 10**12, seq=1, bid_px=98.0, ask_px=98.02))  # an earlier day, replayed
    assert tca.mid("AAPL") == pytest.approx(98.01)
