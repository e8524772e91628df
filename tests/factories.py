"""Valid messages for tests; override any field by keyword."""

from __future__ import annotations

from typing import Any

from models import (
    AckStatus,
    ChildOrderAck,
    ChildOrderAction,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    ParentOrder,
    Side,
    Tick,
)

T0 = 1_763_900_000_000_000_000


def tick(**kw: Any) -> Tick:
    base: dict[str, Any] = {
        "symbol": "AAPL", "seq": 1, "ts_event": T0, "ts_init": T0 + 1000,
        "bid_px": 100.00, "bid_sz": 500, "ask_px": 100.01, "ask_sz": 700,
    }  # fmt: skip
    base.update(kw)
    return Tick(**base)


def parent(**kw: Any) -> ParentOrder:
    base: dict[str, Any] = {
        "parent_id": "P-1", "client_id": "CLIENT1", "cl_ord_id": "C-1", "symbol": "AAPL",
        "side": Side.BUY, "quantity": 1000, "start_ns": T0, "end_ns": T0 + 3600 * 10**9, "ts_init": T0,
    }  # fmt: skip
    base.update(kw)
    return ParentOrder(**base)


def report(**kw: Any) -> ExecutionReport:
    base: dict[str, Any] = {
        "report_id": "R-1", "parent_id": "P-1", "client_id": "CLIENT1", "cl_ord_id": "C-1",
        "exec_type": ExecType.TRADE, "ord_status": OrdStatus.PARTIALLY_FILLED, "symbol": "AAPL",
        "side": Side.BUY, "order_qty": 1000, "last_qty": 100, "last_px": 100.01, "cum_qty": 100,
        "leaves_qty": 900, "avg_px": 100.01, "ts_event": T0, "ts_init": T0,
    }  # fmt: skip
    base.update(kw)
    return ExecutionReport(**base)


def fill(**kw: Any) -> Fill:
    base: dict[str, Any] = {
        "fill_id": "F1", "child_id": "J1.1.0", "job_id": "J1", "parent_id": "P-1", "symbol": "AAPL",
        "side": Side.BUY, "qty": 100, "px": 100.01, "ts_event": T0, "ts_init": T0,
    }  # fmt: skip
    base.update(kw)
    return Fill(**base)


def ack(**kw: Any) -> ChildOrderAck:
    base: dict[str, Any] = {
        "child_id": "J1.1.0", "job_id": "J1", "epoch": 1, "status": AckStatus.ACCEPTED, "leaves_qty": 100,
        "ts_event": T0, "ts_init": T0,
    }  # fmt: skip
    base.update(kw)
    return ChildOrderAck(**base)


def fill_for(action: ChildOrderAction, fill_id: str, qty: int, px: float, ts: int) -> Fill:
    """The fill a test venue reports for one execution of ``action``."""
    return fill(fill_id=fill_id, child_id=action.child_id, job_id=action.job_id, parent_id=action.parent_id,
                symbol=action.symbol, side=action.side, qty=qty, px=px, ts_event=ts, ts_init=ts)  # fmt: skip
