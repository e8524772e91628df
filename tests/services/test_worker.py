"""The Worker service on the bus (both transports): ticks in, child orders out, fills back, job complete."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from market.fills import FillModel
from market.prices import to_float, to_units
from market.session import SESSION_OPEN_S, midnight_ns
from market.synthetic import SymbolSim, SymbolSpec
from models import (
    ChildAction,
    ChildOrderAction,
    JobAssignment,
    OrdType,
    ParentOrder,
    Side,
    Strategy,
    Tick,
    WorkerHeartbeat,
    topics,
)
from receiver.service import Receiver
from runtime.bus import Bus, Delivery
from runtime.membus import MemoryBroker
from tests import factories
from tests.factories import fill_for
from worker import service
from worker.service import WorkerService

S = 1_000_000_000


@pytest.mark.parametrize(
    ("live", "source"),
    [(False, "record"), (True, "twin"), (True, "both"), (True, "record")],
    ids=["record", "live-twin", "live-twin-and-record", "live-twin-silent"],
)
def test_worker_turns_ticks_into_child_orders_and_completes_the_job(
    bus: Bus, tmp_path: Path, live: bool, source: str
) -> None:
    """``live``: the worker reads the ticks' non-persistent twins (``PACELINE_LIVE_TICKS``). ``source``: where
    the ticks are published. On the twin only, a worker still reading the record would never decide; on
    both, as the Receiver publishes them, it keeps to the twin; on the record only (a receiver without
    the setting), it finds its twin silent while the record moves, and reads the record instead."""
    tag = uuid.uuid4().hex[:6]
    symbol, job_id, worker_id = f"W{tag.upper()}", f"J{tag}", f"w-{tag}"
    start_s = SESSION_OPEN_S + 3600
    ticks = list(SymbolSim(SymbolSpec(symbol), 3, depth=2, start_s=start_s - 30, close_s=start_s + 6 * 60))
    t0 = start_s * S + midnight_ns(ticks[0].ts_event)
    parent = ParentOrder(
        parent_id=f"P{tag}",
        client_id="C1",
        cl_ord_id=f"c{tag}",
        symbol=symbol,
        side=Side.BUY,
        quantity=4_000,
        start_ns=t0,
        end_ns=t0 + 5 * 60 * S,
        strategy=Strategy.TWAP,
        ts_init=t0,
    )
    svc = WorkerService(
        bus, worker_id, None, decision_s=30, heartbeat_s=0.2, live_ticks=live, twin_silence_s=0.3
    )
    svc.start()
    heartbeats = bus.subscribe(topics.HEARTBEATS, f"hb-{tag}", WorkerHeartbeat, from_earliest=False)
    # A venue for the test: execute every NEW with the shared fill model, report fills on the symbol's topic.
    fm, fills_out = FillModel(), bus.producer(topics.job_executions(symbol))
    last_tick: list[Tick] = [ticks[0]]
    received: list[ChildOrderAction] = []
    n_fill = [0]

    def venue(d: Delivery[ChildOrderAction]) -> None:
        a = d.message
        received.append(a)
        if a.action is not ChildAction.NEW:
            return
        tick = last_tick[0]
        execs = (
            fm.market(a.child_id, a.side, a.quantity, tick)
            if a.ord_type is OrdType.MARKET
            else fm.limit(a.child_id, a.side, a.quantity, to_units(a.limit_px or 0), tick)
        )
        for e in execs:
            n_fill[0] += 1
            fill = fill_for(a, f"F{n_fill[0]}", e.qty, to_float(e.price), tick.ts_event)
            fills_out.send(fill, key=a.job_id)  # keyed by job, as the endpoint does: the worker reads by key

    actions = bus.subscribe(topics.job_actions(symbol), f"venue-{tag}", ChildOrderAction, handler=venue)
    try:
        bus.producer(topics.ASSIGNMENTS).send(
            JobAssignment(
                job_id=job_id, worker_id=worker_id, epoch=1, parent=parent, quantity=4_000, ts_init=t0
            )
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker has taken the job when its heartbeat says so
            hb = heartbeats.receive(timeout_ms=1000)
            if hb is not None and any(j.job_id == job_id for j in hb.message.jobs):
                break
        else:
            pytest.fail("the worker never reported the job in a heartbeat")
        time.sleep(0.5)  # its tick subscription is in place before the first tick is published
        rx = Receiver(bus, name=f"w{tag}", speed=50.0, live=source == "both")
        twin = bus.producer(topics.live_ticks(symbol))
        done = threading.Event()

        def feed() -> None:
            for t in ticks:
                last_tick[0] = t
                if source == "twin":
                    twin.send_async(t, key=symbol)
                else:
                    rx.publish(t)
                time.sleep(0.002)
            rx.flush()
            twin.flush()
            done.set()

        threading.Thread(target=feed, daemon=True).start()
        done.wait(60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and svc.engine.jobs[job_id].filled < 4_000:
            time.sleep(0.2)
    finally:
        svc.stop()
        actions.close()
        heartbeats.close()
    news = [a for a in received if a.action is ChildAction.NEW]
    assert news, "no child orders"
    assert all(a.epoch == 1 and a.worker_id == worker_id and a.job_id == job_id for a in received)
    assert len({a.child_id for a in news}) == len(news)
    assert sum(a.quantity for a in news) >= 4_000  # some limit orders were cancelled and re-sent
    assert svc.engine.jobs[job_id].filled == 4_000
    assert sum(a.quantity for a in news if a.ord_type is OrdType.MARKET) <= 4_000
    fell_back = REGISTRY.get_sample_value("paceline_worker_live_twin_fallbacks_total", {"symbol": symbol})
    assert fell_back == (1 if live and source == "record" else None)


def test_a_silent_twin_is_looked_at_less_while_its_record_is_quiet_and_given_up_once_the_record_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watch's schedule, on a clock of its own (the memory transport): a look at the record per period
    while the twin is silent, each quiet look doubling the wait; a tick on the twin starts over; a record
    that moved between two looks makes the worker read it instead."""
    bus, symbol, clock = Bus.memory(MemoryBroker()), "WQUIET", [0]
    monkeypatch.setattr(service, "now_ns", lambda: clock[0])
    svc = WorkerService(bus, "w-quiet", None, live_ticks=True, twin_silence_s=1.0)
    svc._ticks[symbol] = svc._read_ticks(topics.live_ticks(symbol))
    svc._twins[symbol] = service._Twin(checked_ns=0)
    looked: list[int] = []
    read_at = bus.read_at

    def counted(topic: str, model: type[Tick]) -> Delivery[Tick] | None:
        looked.append(clock[0] // S)
        return read_at(topic, model)

    monkeypatch.setattr(bus, "read_at", counted)
    record = bus.producer(topics.ticks(symbol))
    tick = next(
        iter(SymbolSim(SymbolSpec(symbol), 1, depth=1, start_s=SESSION_OPEN_S, close_s=SESSION_OPEN_S + 60))
    )
    for t in range(1, 12):
        clock[0] = t * S
        if t == 9:
            svc._heard[symbol] = int(8.5 * S)  # the twin spoke
        if t == 11:
            record.send(tick)  # the record moves; the twin does not
        if symbol in svc._twins:
            svc._watch(symbol, svc._twins[symbol])
    assert looked == [1, 2, 4, 8, 10, 11]
    assert symbol not in svc._twins and svc._ticks[symbol].topic == topics.ticks(symbol)
    assert len(bus._client.broker.topic(topics.ticks(symbol)).readers) == 1
    assert not bus._client.broker.topic(topics.live_ticks(symbol)).readers  # the twin's reader closed
    svc._ticks[symbol].close()


@pytest.mark.parametrize("live", [False, True], ids=["record", "live-twin"])
def test_a_symbol_is_let_go_once_none_of_the_workers_jobs_is_on_it(
    monkeypatch: pytest.MonkeyPatch, live: bool
) -> None:
    """A worker reads a symbol's ticks while one of its jobs is on it: once the last is revoked (the parent
    ended, or moved to another worker) its reader is closed and the engine forgets the symbol; a later job
    on it reads it again. A twin watch that was about to give up the symbol's twin for its record meanwhile
    does not open the record."""
    broker = MemoryBroker()
    bus, worker_id = Bus.memory(broker), "w-go"
    topic = topics.live_ticks if live else topics.ticks
    svc = WorkerService(bus, worker_id, None, live_ticks=live, twin_silence_s=1.0)

    def job(job_id: str, symbol: str, *, epoch: int = 1, revoked: bool = False) -> JobAssignment:
        p = factories.parent(parent_id=f"P{job_id}", cl_ord_id=f"c{job_id}", symbol=symbol,
                             strategy=Strategy.TWAP)  # fmt: skip
        return JobAssignment(job_id=job_id, worker_id=worker_id, epoch=epoch, parent=p, quantity=p.quantity,
                             revoked=revoked, ts_init=p.ts_init)  # fmt: skip

    def reads(symbol: str) -> bool:
        on_broker = len(broker.topic(topic(symbol)).readers) == 1
        assert on_broker == (symbol in svc._ticks)
        assert not live or on_broker == (symbol in svc._twins)
        return on_broker

    for a in (job("J1", "XA"), job("J2", "XA"), job("J3", "XB")):
        svc._on_assignment(a)
    assert reads("XA") and reads("XB")
    twin = svc._twins.get("XA")
    svc._on_assignment(job("J1", "XA", epoch=2, revoked=True))
    assert reads("XA")  # J2 is still on it
    svc._on_assignment(job("J2", "XA", epoch=2, revoked=True))
    assert not reads("XA") and reads("XB")
    assert "XA" not in svc.engine._symbols and svc.engine.on_tick(factories.tick(symbol="XA")) == []
    assert REGISTRY.get_sample_value("paceline_worker_symbols") == 1
    if twin is not None:  # the watch finds the record moved while the twin was silent, after the let-go
        monkeypatch.setattr(service, "now_ns", lambda: 100 * S)
        twin.record_at, twin.checked_ns = "an earlier message", 0
        bus.producer(topics.ticks("XA")).send(factories.tick(symbol="XA"))
        svc._watch("XA", twin)
        assert not broker.topic(topics.ticks("XA")).readers and "XA" not in svc._ticks
    svc._on_assignment(job("J4", "XA"))
    assert reads("XA") and set(svc._ticks) == {"XA", "XB"}
    for c in svc._ticks.values():
        c.close()


def test_a_worker_started_again_reads_the_ticks_from_the_present_not_from_where_it_stopped() -> None:
    """A worker's ticks come through a non-durable reader: one restarted under the same id after ticks went
    by meanwhile starts at the present. Through a durable subscription it was handed every tick since it
    stopped, and decided on them as if live."""
    bus, symbol = Bus.memory(MemoryBroker()), "WAGAIN"
    record = bus.producer(topics.ticks(symbol))
    seen: list[int] = []

    def counted(svc: WorkerService) -> None:
        inner = svc._on_tick

        def on_tick(d: Delivery[Tick]) -> None:
            seen.append(d.message.seq)
            inner(d)

        svc._on_tick = on_tick  # type: ignore[method-assign]

    for life in (1, 2):
        svc = WorkerService(bus, "w-again", None)
        counted(svc)
        svc._ticks[symbol] = svc._read_ticks(topics.ticks(symbol))
        record.send(factories.tick(symbol=symbol, seq=10 * life))
        deadline = time.monotonic() + 5
        while 10 * life not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        svc._ticks.pop(symbol).close()  # stopped
        record.send(factories.tick(symbol=symbol, seq=10 * life + 1))  # while it is down
    assert seen == [10, 20]


def test_the_answers_to_other_workers_jobs_are_passed_over_undecoded() -> None:
    """A symbol's executions topic carries every job's answers on it, keyed by job: a worker decodes those
    of its own jobs only (an undecodable payload shows which were decoded: it is counted as rejected)."""
    bus, symbol = Bus.memory(MemoryBroker()), "WKEYS"
    svc = WorkerService(bus, "w-keys", None)
    svc.engine.jobs["J-mine"] = None  # type: ignore[assignment]  # only its key is looked at
    svc._open_symbol(symbol)

    def rejected() -> float:
        labels = {"stream": "executions", "reason": "malformed"}
        return REGISTRY.get_sample_value("paceline_bus_rejected_total", labels) or 0.0

    before = rejected()
    out = bus.producer(topics.job_executions(symbol))
    try:
        out.send_async(b"not a message", key="J-other")
        out.send_async(b"not a message", key="J-mine")
        out.flush()
        deadline = time.monotonic() + 5
        while rejected() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # in order: the other one, had it been decoded, was counted first
        assert rejected() == before + 1
    finally:
        svc._let_go(symbol)
        out.close()
        bus.close()
