"""The dashboard's snapshot, folded from messages (no broker, no browser)."""

from __future__ import annotations

import pytest

from dashboard.service import State
from models import JobRef, JobRequest, KillState, OrdStatus, RiskControl, WorkerHeartbeat
from tests.factories import T0, fill, parent, report, tick

H = 3600 * 10**9


def _state() -> State:
    s = State()
    s.on_message(tick(symbol="AAPL", bid_px=100.00, ask_px=100.02, ts_event=T0))  # arrival mid 100.01
    s.on_message(JobRequest(job_id="J1", parent=parent(quantity=1000, end_ns=T0 + H), ts_init=T0))
    return s


def test_progress_schedule_and_running_shortfall() -> None:
    s = _state()
    s.on_message(report(cum_qty=400, leaves_qty=600, avg_px=100.06))
    s.on_message(fill(qty=400, px=100.06))
    s.on_message(tick(symbol="AAPL", bid_px=100.10, ask_px=100.12, ts_event=T0 + H // 4, seq=2))
    (p,) = s.snapshot()["parents"]
    assert p["filled"] == 0.4
    assert p["schedule"] == 0.25  # a quarter of the window elapsed on the market's clock
    # A buy above arrival is a cost; the 600 still to buy are marked at the mid now (100.11).
    assert p["is_bps"] == round(
        (400 * (100.06 - 100.01) + 600 * (100.11 - 100.01)) / (1000 * 100.01) * 1e4, 2
    )
    assert p["live"] and p["fills"] == 1
    assert s.snapshot()["fills"]["shares"] == 400


def test_final_report_figure_replaces_the_running_one_and_closes_the_parent() -> None:
    s = _state()
    s.on_message(report(ord_status=OrdStatus.FILLED, cum_qty=1000, leaves_qty=0, avg_px=100.03, is_bps=2.5))
    (p,) = s.snapshot()["parents"]
    assert (p["status"], p["is_bps"], p["live"]) == ("FILLED", 2.5, False)


def test_sell_below_arrival_is_a_cost() -> None:
    s = State()
    s.on_message(tick(bid_px=100.00, ask_px=100.02))
    s.on_message(JobRequest(job_id="J1", parent=parent(side="SELL"), ts_init=T0))
    s.on_message(report(side="SELL", avg_px=99.96))
    assert s.snapshot()["parents"][0]["is_bps"] > 0


def test_workers_and_kill_switch() -> None:
    s = State()
    s.on_message(WorkerHeartbeat(worker_id="w1", incarnation="i1", seq=1, capacity=10, ts_init=T0))
    s.on_message(RiskControl(client_id="C9", state=KillState.HALTED, ts_init=T0))
    snap = s.snapshot()
    assert snap["workers"][0]["worker_id"] == "w1" and snap["workers"][0]["state"] == "ok"
    assert snap["risk"] == {"ALL": "ACTIVE", "C9": "HALTED"}
    s.workers["w1"]["seen"] -= 10  # silent past the timeout
    assert s.snapshot()["workers"][0]["state"] == "lost"


def test_version_moves_only_on_input() -> None:
    s = _state()
    v = s.version
    s.snapshot()
    assert s.version == v
    s.on_message(fill())
    assert s.version == v + 1


def test_closed_parents_are_trimmed_first() -> None:
    s = State(max_parents=3)
    for i in range(5):
        pid = f"P-{i}"
        s.on_message(JobRequest(job_id=f"J{i}", parent=parent(parent_id=pid, cl_ord_id=f"C{i}"), ts_init=T0))
        if i < 2:
            s.on_message(report(parent_id=pid, cl_ord_id=f"C{i}", ord_status=OrdStatus.CANCELED, cum_qty=0,
                                leaves_qty=0, avg_px=0.0, exec_type="CANCELED", last_qty=0))  # fmt: skip
    assert sorted(s.parents) == ["P-2", "P-3", "P-4"]


def test_a_parents_chart_samples_the_touch_over_its_window_and_keeps_its_fills_and_participation() -> None:
    from dashboard.service import CHART_POINTS, PART_BUCKETS

    s = _state()
    for i in range(1, 3001):  # 3,000 ticks over the hour: sampled to one point per 1/600 of the window
        s.on_message(tick(symbol="AAPL", bid_px=100.00, ask_px=100.02, ts_event=T0 + i * H // 3000, seq=i + 1,
                          trade_px=100.02, trade_sz=10))  # fmt: skip
    s.on_message(fill(fill_id="F1", qty=30, px=100.02, ts_event=T0 + H // 2))
    s.on_message(fill(fill_id="F1", qty=30, px=100.02, ts_event=T0 + H // 2))  # a redelivery: drawn once
    s.on_message(WorkerHeartbeat(worker_id="w", incarnation="i", seq=1, capacity=1, ts_init=T0,
                                 jobs=(JobRef(job_id="J1", epoch=1, band=0.05),)))  # fmt: skip
    c = s.chart("P-1")
    assert c is not None and s.chart("nope") is None
    assert CHART_POINTS - 1 <= len(c["t"]) <= CHART_POINTS + 1 and c["t"] == sorted(c["t"])
    assert c["t"][-1] == (T0 + H) / 1e9  # the latest tick is always the last point: the chart follows
    assert c["fills"] == [[(T0 + H // 2) / 1e9, 30, 100.02, 30]]
    assert c["arrival_mid"] == pytest.approx(100.01) and c["band"] == 0.05
    b = PART_BUCKETS // 2
    assert c["part"]["ours"][b] == 30 and c["part"]["market"][b] == 3000 * 10 // PART_BUCKETS
