"""The pre-trade risk gate on its own: each limit refuses with its code; the kill switch's three states."""

from __future__ import annotations

from endpoint.config import Limits
from endpoint.risk import RiskGate
from models import ChildAction, ChildOrderAction, KillState, OrdType, Side, Strategy
from tests.factories import T0, parent

LIM = Limits(max_order_notional=100_000, max_open_notional=150_000, max_position=2_000,
             max_child_notional=20_000, price_band_bps=100, max_participation=0.2, max_orders_per_s=3,
             max_children_per_s=2)  # fmt: skip


def _gate() -> tuple[RiskGate, list[float]]:
    clock = [0.0]
    return RiskGate({"CLIENT1": LIM}, clock=lambda: clock[0]), clock


def _child(qty: int, px: float | None = None, side: Side = Side.BUY) -> ChildOrderAction:
    return ChildOrderAction(
        action=ChildAction.NEW, child_id="J1.1.0", job_id="J1", parent_id="P-1", worker_id="w1", epoch=1,
        symbol="AAPL", side=side, quantity=qty, ord_type=OrdType.LIMIT if px else OrdType.MARKET, limit_px=px,
        ts_event=T0, ts_init=T0,
    )  # fmt: skip


def test_parent_limits() -> None:
    g, _ = _gate()
    assert g.check_parent(parent(quantity=500), 100.0, 0.0) is None
    assert g.check_parent(parent(quantity=1_500), 100.0, 0.0).code == "order_notional"  # type: ignore[union-attr]
    assert g.check_parent(parent(quantity=900), 100.0, 100_000).code == "open_notional"  # type: ignore[union-attr]
    g2, _ = _gate()
    g2.on_fill("CLIENT1", "AAPL", Side.BUY, 1_800)
    assert g2.check_parent(parent(quantity=300), 100.0, 0.0).code == "position"  # type: ignore[union-attr]
    g3, _ = _gate()
    fat = parent(quantity=10, ord_type="LIMIT", limit_px=102.0)
    assert g3.check_parent(fat, 100.0, 0.0).code == "price_band"  # type: ignore[union-attr]
    pov = parent(quantity=10, strategy=Strategy.POV, participation_rate=0.5)
    assert g3.check_parent(pov, 100.0, 0.0).code == "participation"  # type: ignore[union-attr]


def test_order_rate_is_a_token_bucket() -> None:
    g, clock = _gate()
    codes = [g.check_parent(parent(quantity=10), 100.0, 0.0) for _ in range(5)]
    assert [c.code if c else None for c in codes] == [None, None, None, "rate", "rate"]
    clock[0] += 1.0
    assert g.check_parent(parent(quantity=10), 100.0, 0.0) is None


def test_child_limits() -> None:
    g, clock = _gate()
    assert g.check_child("CLIENT1", _child(100), 100.0) is None
    assert g.check_child("CLIENT1", _child(300), 100.0).code == "child_notional"  # type: ignore[union-attr]
    clock[0] += 1.0
    assert g.check_child("CLIENT1", _child(10, px=110.0), 100.0).code == "price_band"  # type: ignore[union-attr]
    g.check_child("CLIENT1", _child(10), 100.0)
    assert g.check_child("CLIENT1", _child(10), 100.0).code == "child_rate"  # type: ignore[union-attr]


def test_kill_switch_states_and_scopes() -> None:
    g, _ = _gate()
    g.on_fill("CLIENT1", "AAPL", Side.BUY, 1_000)
    g.set_state(None, KillState.REDUCING)
    assert g.check_parent(parent(quantity=10), 100.0, 0.0).code == "reducing_only"  # type: ignore[union-attr]
    assert g.check_parent(parent(quantity=400, side=Side.SELL), 100.0, 0.0) is None  # reduces the long
    assert g.check_child("CLIENT1", _child(10, side=Side.SELL), 100.0) is None
    g.set_state("CLIENT1", KillState.HALTED)  # the stricter scope wins
    assert g.check_child("CLIENT1", _child(10, side=Side.SELL), 100.0).code == "halted"  # type: ignore[union-attr]
    g.set_state("CLIENT1", KillState.ACTIVE)
    g.set_state(None, KillState.ACTIVE)
    assert g.state("CLIENT1") is KillState.ACTIVE
