"""The drill's promise checks on fabricated histories: a clean run passes, each broken promise fails."""

from __future__ import annotations

from dataclasses import replace

from models import (
    AckStatus,
    ChildAction,
    ChildOrderAction,
    ExecType,
    ExecutionReport,
    OrdStatus,
    Side,
    VenueCommandAck,
    VenueOp,
)
from paceline.drills.drill import History, evaluate
from tests.factories import T0, ack, fill, parent, report

P = parent(parent_id="P-1", cl_ord_id="C-1", quantity=300)


def _action(child: str, qty: int = 100, epoch: int = 1) -> ChildOrderAction:
    return ChildOrderAction(
        action=ChildAction.NEW,
        child_id=child,
        job_id="J1",
        parent_id="P-1",
        worker_id="w1",
        epoch=epoch,
        symbol="AAPL",
        side=Side.BUY,
        quantity=qty,
        ts_event=T0,
        ts_init=T0,
    )


def _clean() -> History:
    actions = [_action(f"J1.1.{i}") for i in range(3)]
    fills = [fill(fill_id=f"F{i}", child_id=f"J1.1.{i}", qty=100, px=100.0 + i) for i in range(3)]
    reports = [
        report(
            exec_type=ExecType.NEW,
            ord_status=OrdStatus.NEW,
            order_qty=300,
            cum_qty=0,
            leaves_qty=300,
            last_qty=0,
            last_px=None,
            avg_px=0.0,
        )
    ]
    cum, notional = 0, 0.0
    for i, f in enumerate(fills):
        cum += f.qty
        notional += f.qty * f.px
        last = i == 2
        reports.append(
            report(
                report_id=f"R{i}",
                order_qty=300,
                last_qty=100,
                last_px=f.px,
                cum_qty=cum,
                leaves_qty=0 if last else 300 - cum,
                avg_px=notional / cum,
                ord_status=OrdStatus.FILLED if last else OrdStatus.PARTIALLY_FILLED,
            )
        )
    return History(
        parents={"C-1": P},
        reports=reports,
        actions=actions,
        executions=[(1000 + i, f) for i, f in enumerate(fills)],
        job_executions=[("J1", 1000 + i, f) for i, f in enumerate(fills)],
        fix_final={"C-1": 300},
    )


def _failed(h: History) -> set[str]:
    checks, _ = evaluate(h)
    assert len(checks) == 6
    return {c.name for c in checks if not c.ok}


def test_a_clean_history_passes() -> None:
    checks, rows = evaluate(_clean())
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert rows == [{"cl_ord_id": "C-1", "cum_qty": 300, "status": "FILLED", "fills": 3}]


def test_an_unfinished_parent_fails() -> None:
    h = _clean()
    assert _failed(replace(h, reports=h.reports[:-1])) >= {"every parent finished"}
    assert _failed(replace(h, fix_final={})) == {"every parent finished"}


def test_over_execution_fails() -> None:
    h = _clean()
    extra = fill(fill_id="F9", child_id="J1.1.2", qty=100, px=102.0)  # a second fill of a 100-share child
    h = replace(
        h, executions=[*h.executions, (2000, extra)], job_executions=[*h.job_executions, ("J1", 2000, extra)]
    )
    assert "no over-execution" in _failed(h)


def test_a_fill_the_reports_never_counted_is_lost() -> None:
    h = _clean()
    extra_action = _action("J1.1.3")
    extra = fill(fill_id="F3", child_id="J1.1.3", qty=50, px=99.0)
    h = replace(
        h,
        actions=[*h.actions, extra_action],
        executions=[*h.executions, (2000, extra)],
        job_executions=[*h.job_executions, ("J1", 2000, extra)],
    )
    assert "no lost fill" in _failed(h)
    only_saga = replace(_clean(), job_executions=_clean().job_executions[:-1])
    assert "no lost fill" in _failed(only_saga)


def test_a_child_taken_twice_or_a_reused_id_is_a_duplicate() -> None:
    h = _clean()
    twice = [("J1", 900, ack(child_id="J1.1.0", status=AckStatus.ACCEPTED, ts_init=T0 + i)) for i in range(2)]
    assert "no duplicate child order" in _failed(replace(h, job_executions=[*h.job_executions, *twice]))
    reused = replace(h, actions=[*h.actions, _action("J1.1.0", qty=200)])
    assert "no duplicate child order" in _failed(reused)
    conflicting = replace(
        h, executions=[*h.executions, (3000, fill(fill_id="F0", child_id="J1.1.0", qty=100, px=55.0))]
    )
    assert "no duplicate child order" in _failed(conflicting)


def test_inconsistent_reports_fail() -> None:
    h = _clean()
    down = [*h.reports[:2], replace_report(h.reports[2], cum_qty=50, leaves_qty=250), h.reports[3]]
    assert "consistent execution reports" in _failed(replace(h, reports=down))
    after_terminal = [*h.reports, h.reports[2]]
    assert "consistent execution reports" in _failed(replace(h, reports=after_terminal))
    assert "consistent execution reports" in _failed(replace(h, fix_final={"C-1": 200}))


def test_a_zombie_trading_after_its_fence_fails() -> None:
    h = _clean()
    fence = VenueCommandAck(
        command_id="c", op=VenueOp.FENCE, job_id="J1", parent_id="P-1", epoch=2, filled=100, ts_init=T0
    )
    # The fence is confirmed at 1500 ms; the epoch-1 fills published at 1001 and 1002 come before it: fine.
    ok = replace(h, executions=[(1500, fence), *h.executions])
    assert _failed(ok) == set()
    late = replace(h, executions=[(500, fence), *h.executions])
    assert "fenced epochs stay fenced" in _failed(late)


def replace_report(r: ExecutionReport, **kw: object) -> ExecutionReport:
    return r.model_copy(update=kw)
