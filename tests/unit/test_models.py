from __future__ import annotations

import pytest
from pydantic import ValidationError

from models import (
    BookLevel,
    ChildAction,
    ChildOrderAction,
    ExecType,
    JobAssignment,
    OrdStatus,
    OrdType,
    Side,
    Strategy,
)
from tests.factories import T0, parent, report, tick


class TestTick:
    def test_valid_tick_has_mid_and_spread(self) -> None:
        t = tick(bid_px=100.00, ask_px=100.02)
        assert t.mid == pytest.approx(100.01)
        assert t.spread == pytest.approx(0.02)

    def test_is_frozen(self) -> None:
        t = tick()
        with pytest.raises(ValidationError):
            t.seq = 2  # type: ignore[misc]

    @pytest.mark.parametrize("bid,ask", [(100.01, 100.01), (100.02, 100.01)])
    def test_crossed_or_locked_quote_rejected(self, bid: float, ask: float) -> None:
        with pytest.raises(ValidationError, match="crossed or locked"):
            tick(bid_px=bid, ask_px=ask)

    @pytest.mark.parametrize(
        "field,value",
        [("bid_px", 0.0), ("ask_px", -1.0), ("bid_sz", -5), ("seq", -1), ("symbol", "aapl"),
         ("symbol", "A" * 17), ("bid_px", float("nan")), ("ts_event", -1)],
    )  # fmt: skip
    def test_bad_fields_rejected(self, field: str, value: object) -> None:
        with pytest.raises(ValidationError):
            tick(**{field: value})

    def test_unknown_field_rejected(self) -> None:
        with pytest.raises(ValidationError, match="Extra inputs"):
            tick(colour="red")

    def test_depth_levels_must_be_ordered_and_match_l1(self) -> None:
        ok = tick(
            bids=(BookLevel(px=100.00, sz=1), BookLevel(px=99.99, sz=2)),
            asks=(BookLevel(px=100.01, sz=1), BookLevel(px=100.02, sz=2)),
        )
        assert len(ok.bids) == 2
        with pytest.raises(ValidationError, match="descending"):
            tick(bids=(BookLevel(px=100.00, sz=1), BookLevel(px=100.00, sz=2)))
        with pytest.raises(ValidationError, match="ascending"):
            tick(asks=(BookLevel(px=100.01, sz=1), BookLevel(px=100.00, sz=2)))
        with pytest.raises(ValidationError, match="first bid"):
            tick(bids=(BookLevel(px=99.5, sz=1),))

    def test_trade_size_needs_price(self) -> None:
        with pytest.raises(ValidationError, match="trade_sz without trade_px"):
            tick(trade_sz=100)


class TestParentOrder:
    def test_defaults(self) -> None:
        p = parent()
        assert p.strategy is Strategy.TWAP and p.ord_type is OrdType.MARKET

    def test_end_before_start_rejected(self) -> None:
        with pytest.raises(ValidationError, match="end_ns must be after"):
            parent(end_ns=T0)

    def test_limit_needs_price_and_market_refuses_one(self) -> None:
        with pytest.raises(ValidationError, match="needs limit_px"):
            parent(ord_type=OrdType.LIMIT)
        with pytest.raises(ValidationError, match="cannot carry limit_px"):
            parent(limit_px=101.0)
        assert parent(ord_type=OrdType.LIMIT, limit_px=101.0).limit_px == 101.0

    def test_pov_needs_a_rate_in_range(self) -> None:
        with pytest.raises(ValidationError, match="participation_rate"):
            parent(strategy=Strategy.POV)
        with pytest.raises(ValidationError):
            parent(strategy=Strategy.POV, participation_rate=1.5)
        assert parent(strategy=Strategy.POV, participation_rate=0.1).participation_rate == 0.1

    @pytest.mark.parametrize("qty", [0, -10])
    def test_quantity_must_be_positive(self, qty: int) -> None:
        with pytest.raises(ValidationError):
            parent(quantity=qty)


class TestExecutionReport:
    def test_consistent_partial_fill(self) -> None:
        r = report()
        assert r.leaves_qty == r.order_qty - r.cum_qty

    def test_over_execution_rejected(self) -> None:
        with pytest.raises(ValidationError, match="over-execution"):
            report(cum_qty=1001, leaves_qty=0, ord_status=OrdStatus.FILLED)

    def test_leaves_must_match_while_live(self) -> None:
        with pytest.raises(ValidationError, match="leaves_qty 800 != 900"):
            report(leaves_qty=800)

    def test_leaves_zero_once_terminal(self) -> None:
        r = report(exec_type=ExecType.CANCELED, ord_status=OrdStatus.CANCELED, last_qty=0, leaves_qty=0)
        assert r.ord_status.terminal
        with pytest.raises(ValidationError):
            report(exec_type=ExecType.CANCELED, ord_status=OrdStatus.CANCELED, last_qty=0, leaves_qty=900)

    def test_trade_needs_last_qty_and_px(self) -> None:
        with pytest.raises(ValidationError, match="TRADE report"):
            report(last_qty=0)

    def test_avg_px_required_once_filled(self) -> None:
        with pytest.raises(ValidationError, match="avg_px"):
            report(avg_px=0.0)


class TestChildAndJobs:
    def _child(self, **kw: object) -> ChildOrderAction:
        base: dict[str, object] = {
            "action": ChildAction.NEW, "child_id": "J1-1-0", "job_id": "J1", "parent_id": "P-1",
            "worker_id": "w1", "epoch": 1, "symbol": "AAPL", "side": Side.BUY, "quantity": 100,
            "ts_event": T0, "ts_init": T0,
        }  # fmt: skip
        base.update(kw)
        return ChildOrderAction(**base)  # type: ignore[arg-type]

    def test_new_child_needs_quantity(self) -> None:
        assert self._child().quantity == 100
        with pytest.raises(ValidationError, match="positive quantity"):
            self._child(quantity=0)
        assert self._child(action=ChildAction.CANCEL, quantity=0).quantity == 0

    def test_epoch_starts_at_one(self) -> None:
        with pytest.raises(ValidationError):
            self._child(epoch=0)

    def test_limit_child_needs_price(self) -> None:
        with pytest.raises(ValidationError, match="limit_px"):
            self._child(ord_type=OrdType.LIMIT)

    def test_assignment_carries_parent_and_epoch(self) -> None:
        a = JobAssignment(job_id="J1", worker_id="w1", epoch=3, parent=parent(), quantity=400, ts_init=T0)
        assert a.epoch == 3 and a.parent.quantity == 1000 and not a.revoked
