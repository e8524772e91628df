"""The one definition of execution cost (market.costs)."""

from __future__ import annotations

import pytest

from market.costs import fill_cost_bps, shortfall_bps, traded, vwap, vwap_slippage_bps
from models import Fill, Liquidity, Side


def test_a_completed_buy_above_arrival_is_a_cost_and_a_sell_below_it_too() -> None:
    assert shortfall_bps(
        Side.BUY, 100.0, quantity=1000, filled=1000, notional=1000 * 100.05, end_mid=99.0
    ) == pytest.approx(5.0)
    assert shortfall_bps(
        Side.SELL, 100.0, quantity=1000, filled=1000, notional=1000 * 99.95, end_mid=101.0
    ) == pytest.approx(5.0)
    # Completed: the end mid plays no part.
    assert shortfall_bps(
        Side.BUY, 100.0, quantity=1000, filled=1000, notional=100_050.0, end_mid=None
    ) == pytest.approx(5.0)


def test_what_did_not_fill_is_costed_at_the_end_mid_so_leaving_quantity_cannot_look_cheap() -> None:
    full = shortfall_bps(
        Side.BUY, 100.0, quantity=1000, filled=1000, notional=500 * 100.02 + 500 * 100.10, end_mid=100.10
    )
    half = shortfall_bps(Side.BUY, 100.0, quantity=1000, filled=500, notional=500 * 100.02, end_mid=100.10)
    # Filled half at +2 bps and the price ran to +10 bps: the unfilled half costs +10 bps of opportunity.
    assert half == pytest.approx((500 * 0.02 + 500 * 0.10) / (1000 * 100.0) * 1e4)
    assert half == pytest.approx(full)
    assert shortfall_bps(
        Side.BUY, 100.0, quantity=1000, filled=0, notional=0.0, end_mid=99.90
    ) == pytest.approx(-10.0)


def test_the_per_fill_costs_add_up_to_the_shortfall() -> None:
    fills = [(100.03, 300), (99.98, 500), (100.10, 200)]
    total = sum(fill_cost_bps(Side.BUY, 100.0, px, q, 1000) for px, q in fills)
    notional = sum(px * q for px, q in fills)
    assert total == pytest.approx(
        shortfall_bps(Side.BUY, 100.0, quantity=1000, filled=1000, notional=notional, end_mid=None)
    )


def test_vwap_slippage_and_its_unknowns() -> None:
    assert vwap_slippage_bps(Side.SELL, 99.9, 100.0) == pytest.approx(10.0)
    assert vwap_slippage_bps(Side.BUY, 0.0, 100.0) is None
    assert vwap_slippage_bps(Side.BUY, 100.0, None) is None
    with pytest.raises(ValueError, match="positive arrival"):
        shortfall_bps(Side.BUY, 0.0, quantity=1000, filled=0, notional=0.0, end_mid=100.0)


def test_one_volume_weighted_price_for_the_interval_and_the_fills() -> None:
    fills = [Fill(fill_id=f"F{i}", job_id="J", child_id="C", parent_id="P", symbol="MID", side=Side.BUY,
                  qty=q, px=px, liquidity=Liquidity.MAKER, ts_event=i, ts_init=i)
             for i, (q, px) in enumerate([(100, 10.0), (300, 10.4)])]  # fmt: skip
    qty, notional = traded(fills)
    assert (qty, notional) == (400, 100 * 10.0 + 300 * 10.4)
    assert vwap(notional, qty) == pytest.approx(10.3)
    assert vwap(0.0, 0) is None and traded([]) == (0, 0.0)
