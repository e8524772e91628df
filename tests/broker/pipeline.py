"""Helpers for tests that run the pipeline on the real broker: a paced synthetic tick feed, parent orders,
service subprocesses and readers of what the services published."""

from __future__ import annotations

from collections.abc import Callable

from market.session import SESSION_OPEN_S, midnight_ns
from market.synthetic import SymbolSim, SymbolSpec
from models import (
    ExecType,
    ExecutionReport,
    JobRequest,
    OrdStatus,
    ParentOrder,
    SagaEvent,
    Side,
    Strategy,
    Tick,
    topics,
)
from paceline.ops import broker
from paceline.ops.stack import Proc, until
from runtime.bus import Bus

S = 1_000_000_000


def session_ticks(
    symbol: str, minutes: float, *, lead_s: int = 20, tail_s: int = 40
) -> tuple[int, list[Tick]]:
    """Synthetic ticks from ``lead_s`` before a start one hour into the session to ``tail_s`` after its end;
    returns (start in ns, ticks)."""
    start_s = SESSION_OPEN_S + 3600
    sim = SymbolSim(SymbolSpec(symbol), 3, depth=2, start_s=start_s - lead_s,
                    close_s=start_s + round(minutes * 60) + tail_s)  # fmt: skip
    ticks = list(sim)
    day = midnight_ns(ticks[0].ts_event)
    return day + start_s * S, ticks


def parent_order(tag: str, symbol: str, qty: int, start_ns: int, minutes: float) -> ParentOrder:
    return ParentOrder(
        parent_id=f"P{tag}", client_id="C1", cl_ord_id=f"c{tag}", symbol=symbol, side=Side.BUY,
        quantity=qty, start_ns=start_ns, end_ns=start_ns + round(minutes * 60 * S), strategy=Strategy.TWAP,
        ts_init=start_ns,
    )  # fmt: skip


def submit(bus: Bus, p: ParentOrder) -> str:
    job_id = f"J{p.parent_id}"
    prod = bus.producer(topics.JOB_REQUESTS)
    prod.send(JobRequest(job_id=job_id, parent=p, ts_init=p.ts_init), key=p.parent_id)
    prod.close()
    return job_id


def reports_of(bus: Bus, parent_id: str) -> list[ExecutionReport]:
    return [
        d.message for d in bus.read_all(topics.REPORTS, ExecutionReport) if d.message.parent_id == parent_id
    ]


def saga_events(bus: Bus, saga_id: str) -> list[SagaEvent]:
    events = bus.read_all(topics.SAGA_LOG, SagaEvent)
    return [d.message for d in events if d.message.saga_id == saga_id]


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``cond()`` held; raises AssertionError after ``timeout_s``."""
    return until(cond, timeout_s, what, error=AssertionError)


class Service(Proc):
    """A ``paceline`` subprocess against the test broker, JSON logs collected from its output."""

    def __init__(self, pulsar: broker.BrokerConfig, *args: str) -> None:
        super().__init__(
            *args,
            service_url=pulsar.service_url,
            admin_url=pulsar.admin_url,
            auth_dir=pulsar.auth_dir if pulsar.auth else None,
        )  # under the command's role


def filled_qty(bus: Bus, pid: str) -> int:
    """CumQty of the parent's latest report (0 before any)."""
    reps = reports_of(bus, pid)
    return reps[-1].cum_qty if reps else 0


def check_reports(bus: Bus, pid: str, qty: int) -> list[ExecutionReport]:
    """Its reports: each once, CumQty monotone, New first, Filled last at ``qty``, a TRADE per fill."""
    reps = reports_of(bus, pid)
    ids = [r.report_id for r in reps]
    assert len(ids) == len(set(ids)), "a report was published twice"
    cum = 0
    for r in reps:
        assert r.cum_qty >= cum
        cum = r.cum_qty
    assert reps[0].exec_type is ExecType.NEW
    assert reps[-1].ord_status is OrdStatus.FILLED and reps[-1].cum_qty == qty
    trades = [r for r in reps if r.exec_type is ExecType.TRADE]
    assert sum(r.last_qty for r in trades) == qty  # every fill reported once
    return reps
