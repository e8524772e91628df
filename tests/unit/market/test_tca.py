"""The client's TCA uses the one shortfall definition: what did not fill is costed at the mid at the end."""

from __future__ import annotations

import pytest

from market.costs import shortfall_bps
from market.tca import Tca
from models import Side
from tests.factories import T0, tick


def test_a_parent_that_ends_part_filled_pays_the_opportunity_cost() -> None:
    tca = Tca()
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0 - 1))
    tca.track("P1", "AAPL", Side.BUY, T0)
    tca.on_tick(tick(bid_px=100.00, ask_px=100.02, ts_event=T0, trade_px=100.02, trade_sz=1000))  # arrival
    tca.on_tick(tick(bid_px=100.20, ask_px=100.22, ts_event=T0 + 60, seq=2, trade_px=100.22, trade_sz=1000))
    shortfall, slip = tca.finish("P1", avg_px=100.05, filled=400, quantity=1000)
    expected = (400 * (100.05 - 100.01) + 600 * (100.21 - 100.01)) / (1000 * 100.01) * 1e4
    assert shortfall == pytest.approx(expected, abs=1e-3)
    assert shortfall == pytest.approx(
        shortfall_bps(Side.BUY, 100.01, quantity=1000, filled=400, notional=400 * 100.05, end_mid=100.21),
        abs=1e-3,
    )
    assert slip is not None and slip < 0  # bought below the interval's VWAP (100.12)
    assert tca.finish("P1", 100.05, 400, 1000) == (None, None)  # once
