"""Valid messages for tests; override any field by keyword."""

from __future__ import annotations

from typing import Any

from models import ExecType, ExecutionReport, OrdStatus, ParentOrder, Side, Tick

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
