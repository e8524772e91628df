"""The health-checker, the saga, the venue and workers on the real broker.

Each test feeds a synthetic market for one fresh symbol, sends a TWAP parent as a JobRequest and reads
what the services published (reports, the saga log). Workers and health-checkers that are killed run as
``paceline`` subprocesses and die by SIGKILL, so nothing is cleaned up for them.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from endpoint.service import EndpointService
from health_checker.coordinator import Config
from health_checker.service import HealthChecker
from models import (
    AckStatus,
    CancelRequest,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    JobRequest,
    Message,
    ParentOrder,
    SagaEvent,
    Side,
    now_ns,
    topics,
)
from paceline.ops import broker
from paceline.ops.stack import Feed
from runtime.bus import Bus, stream_of
from tests.broker.pipeline import (
    Service,
    check_reports,
    filled_qty,
    parent_order,
    saga_events,
    session_ticks,
    submit,
    wait_for,
)
from worker.service import WorkerService

pytestmark = pytest.mark.broker
QTY = 4_000


def test_worker_killed_mid_job_is_fenced_and_the_remainder_finished_elsewhere(
    bus: Bus, venue: EndpointService, pulsar: broker.BrokerConfig
) -> None:
    tag = uuid.uuid4().hex[:6]
    symbol = f"K{tag.upper()}"
    start, ticks = session_ticks(symbol, 5)
    hc = HealthChecker(bus, f"hc-{tag}", Config(heartbeat_timeout_s=2))
    hc.start()
    # Two worker processes; whichever takes the job is killed (jobs other tests left behind may load
    # either one first, so least-loaded can pick either).
    wa = Service(pulsar, "worker", "--id", f"a-{tag}")
    wb = Service(pulsar, "worker", "--id", f"b-{tag}")
    try:
        assert hc.is_leader.wait(60)
        both = {f"a-{tag}", f"b-{tag}"}
        wait_for(lambda: hc.coordinator is not None and both <= hc.coordinator.pool.workers.keys(), 60,
                 "both workers in the pool")  # fmt: skip
        p = parent_order(tag, symbol, QTY, start, 5)
        job_id = submit(bus, p)
        wait_for(
            lambda: any(w.saw("job assigned", job_id=job_id) for w in (wa, wb)), 30, "a worker taking the job"
        )
        first, second = (wa, wb) if wa.saw("job assigned", job_id=job_id) else (wb, wa)
        first_id, second_id = (f"a-{tag}", f"b-{tag}") if first is wa else (f"b-{tag}", f"a-{tag}")
        time.sleep(1.0)  # its subscriptions are in place
        feed = Feed(bus, f"k{tag}", ticks, speed=20).start()
        wait_for(lambda: filled_qty(bus, p.parent_id) >= 600, 60, "some fills")
        first.kill()
        killed = time.monotonic()
        wait_for(
            lambda: second.saw("job assigned", job_id=job_id) is not None, 30, "the other worker taking over"
        )
        taken_over = time.monotonic() - killed
        # The zombie case: an action under the old epoch is refused at the venue.
        execs = bus.subscribe(topics.job_executions(symbol), f"t-{tag}", Message, from_earliest=False)
        last = feed.last or ticks[0]
        stale = ChildOrderAction(
            action=ChildAction.NEW, child_id=f"{job_id}.1.999", job_id=job_id, parent_id=p.parent_id,
            worker_id=first_id, epoch=1, symbol=symbol, side=Side.BUY, quantity=100,
            ts_event=last.ts_event, ts_init=last.ts_event,
        )  # fmt: skip
        bus.producer(topics.job_actions(symbol)).send(stale, key=job_id)
        refusal = None
        deadline = time.monotonic() + 20
        while refusal is None and time.monotonic() < deadline:
            d = execs.receive(timeout_ms=500)
            if (
                d is not None
                and isinstance(d.message, ChildOrderAck)
                and d.message.child_id == stale.child_id
            ):
                refusal = d.message
        execs.unsubscribe()
        assert refusal is not None and refusal.status is AckStatus.REJECTED
        assert "stale_epoch" in (refusal.reason or "")
        wait_for(lambda: filled_qty(bus, p.parent_id) == QTY, 90, "the parent filled by the other worker")
        feed.stop()
        # Every open child order of epoch 1 was cancelled before epoch 2 began.
        job = venue.venue.jobs[job_id]
        assert job.filled == QTY
        assert all(o.leaves == 0 for o in venue.venue.orders.values() if o.action.job_id == job_id)
        events = saga_events(bus, p.parent_id)
        names = [e.name for e in events]
        lost = next(e for e in events if e.name == "worker_lost")
        fence_done = next(
            e for e in events if e.name == "compensation.completed" and e.data["name"] == "fence_venue"
        )
        assigned, reassigned = [e for e in events if e.name == "assigned"]
        assert names.index("worker_lost") < events.index(fence_done) < events.index(reassigned)
        assert reassigned.data["epoch"] == 2 and reassigned.data["worker_id"] == second_id
        # The job decides on the grid it was placed on, under either worker (``models.grid``).
        assert isinstance(assigned.data["grid"], float) and reassigned.data["grid"] == assigned.data["grid"]
        filled_at_fence = fence_done.data["filled"]
        assert isinstance(filled_at_fence, int) and 0 < filled_at_fence < QTY
        assert reassigned.data["quantity"] == QTY - filled_at_fence
        detection_ms = lost.data["silent_ms"]
        recovery_ms = (reassigned.ts_init - lost.ts_init) / 1e6
        took_ms = round(taken_over * 1000)
        print(f"\nworker-kill: detection {detection_ms} ms (timeout 2000), "
              f"fence+reassign {recovery_ms:.1f} ms, kill -> the other one working {took_ms} ms")  # fmt: skip
        check_reports(bus, p.parent_id, QTY)
    finally:
        wa.stop()
        wb.stop()
        hc.stop()


@dataclass
class LeaderRun:
    worker: WorkerService
    a: Service  # the leader
    b: Service  # the standby
    parent: ParentOrder
    feed: Feed


@contextlib.contextmanager
def _leader_and_standby_mid_job(bus: Bus, pulsar: broker.BrokerConfig, letter: str) -> Iterator[LeaderRun]:
    """A worker, a leading health-checker ``a`` and a standby ``b`` (processes), a TWAP parent assigned and
    some of it filled, the market flowing: the moment to hurt the leader."""
    tag = uuid.uuid4().hex[:6]
    symbol = f"{letter}{tag.upper()}"
    start, ticks = session_ticks(symbol, 4)
    w = WorkerService(bus, f"w-{tag}", None, heartbeat_s=0.2)
    w.start()
    hc_a = Service(pulsar, "health-checker", "--name", f"a-{tag}")
    hc_b: Service | None = None
    feed: Feed | None = None
    try:
        wait_for(lambda: hc_a.saw("leading") is not None, 60, "health-checker a leading")
        hc_b = Service(pulsar, "health-checker", "--name", f"b-{tag}")
        wait_for(lambda: hc_b is not None and hc_b.saw("standing by for the lease") is not None, 60, "b")
        time.sleep(1.5)  # a has seen the worker's heartbeats
        p = parent_order(tag, symbol, QTY, start, 4)
        submit(bus, p)
        wait_for(lambda: bool(w.engine.jobs), 20, "the assignment")
        feed = Feed(bus, f"{letter.lower()}{tag}", ticks, speed=20).start()
        wait_for(lambda: filled_qty(bus, p.parent_id) >= 800, 60, "some fills")
        yield LeaderRun(w, hc_a, hc_b, p, feed)
    finally:
        if feed is not None:
            feed.stop()
        w.stop()
        hc_a.stop()  # SIGCONT first, if it is paused
        if hc_b is not None:
            hc_b.stop()


def test_orchestrator_killed_mid_job_the_standby_continues_without_loss_or_repeat(
    bus: Bus, venue: EndpointService, pulsar: broker.BrokerConfig
) -> None:
    with _leader_and_standby_mid_job(bus, pulsar, "O") as run:
        p, hc_b = run.parent, run.b
        run.a.kill()
        killed = time.monotonic()
        wait_for(lambda: hc_b.saw("leading") is not None, 30, "b taking over")
        takeover = time.monotonic() - killed
        leading = hc_b.saw("leading") or {}
        wait_for(lambda: filled_qty(bus, p.parent_id) == QTY, 90, "the parent filled")
        run.feed.stop()
        reps = check_reports(bus, p.parent_id, QTY)
        events = saga_events(bus, p.parent_id)
        assert [e.seq for e in events] == list(range(len(events))), "the saga log lost or repeated an event"
        assert len({e.event_id for e in events}) == len(events)
        assigned = [e for e in events if e.name == "assigned"]
        assert len(assigned) == 1, "the job was re-assigned although its worker was fine"
        fills = [e for e in events if e.name == "fill"]
        assert len(fills) == len({e.data["fill_id"] for e in fills}) == len([r for r in reps if r.last_qty])
        assert events[-1].name == "saga.completed"
        took, resent = leading.get("took_ms"), leading.get("resent")
        print(f"\nhealth-checker-kill: kill -> standby leading {takeover * 1000:.0f} ms "
              f"(replay + outbox resume {took} ms, re-sent {resent})")  # fmt: skip


def test_a_hung_leader_is_fenced_out_and_the_standby_finishes_the_parent(
    bus: Bus, venue: EndpointService, pulsar: broker.BrokerConfig
) -> None:
    """SIGSTOP the leader mid-job: its connection stays open, so the broker never releases its lease or
    its input subscriptions. The standby hears its beats stop, fences it out (ExclusiveWithFencing), frees
    the inputs and leads within seconds; the resumed leader steps down; the parent completes exactly."""
    with _leader_and_standby_mid_job(bus, pulsar, "H") as run:
        p, hc_a, hc_b = run.parent, run.a, run.b
        hc_a.signal(signal.SIGSTOP)
        paused = time.monotonic()
        wait_for(lambda: hc_b.saw("leading") is not None, 30, "b taking over")
        takeover = time.monotonic() - paused
        assert hc_b.saw("the leader is silent: taking the lease by fencing it out") is not None
        hc_a.signal(signal.SIGCONT)
        wait_for(lambda: hc_a.saw("stepping down") is not None, 30, "the resumed leader stepping down")
        wait_for(lambda: filled_qty(bus, p.parent_id) == QTY, 90, "the parent filled")
        run.feed.stop()
        check_reports(bus, p.parent_id, QTY)
        events = saga_events(bus, p.parent_id)
        assert [e.seq for e in events] == list(range(len(events))), "the saga log lost or repeated an event"
        assert events[-1].name == "saga.completed"
        assert hc_a.proc.poll() is None  # it stood down and lives on as a standby
        print(f"\nhealth-checker-pause: SIGSTOP -> standby leading {takeover * 1000:.0f} ms")


def test_requests_that_queue_are_committed_together_and_each_acknowledged(
    bus: Bus, venue: EndpointService
) -> None:
    """A burst of requests: those that queue while an append is on its way are decided and appended
    together (fewer log entries than requests; every request one as before this was done), each is answered
    and acknowledged: the next leader gets none of them again. The parents are cancelled and closed before
    the end (the venue confirms): the saga log is shared, and a later test's health-checker must not
    inherit sixty live parents."""
    from prometheus_client import REGISTRY

    tag = uuid.uuid4().hex[:6]
    n = 60
    got: dict[str, list[tuple[str, tuple[int, int]]]] = {}

    def on_log(d: Any) -> None:
        if d.message.saga_id.startswith(f"G{tag}"):
            got.setdefault(d.message.saga_id, []).append(
                (d.message.name, (d.message_id.ledger_id(), d.message_id.entry_id()))
            )

    tail = bus.tail(topics.SAGA_LOG, SagaEvent, on_log)
    hc = HealthChecker(bus, f"hc-{tag}")
    hc.start()
    try:
        assert hc.is_leader.wait(60)
        t = now_ns()
        prod = bus.producer(topics.JOB_REQUESTS)
        for i in range(n):
            p = ParentOrder(parent_id=f"G{tag}-{i}", client_id="C1", cl_ord_id=f"g{tag}-{i}", side=Side.BUY,
                            symbol=f"G{tag.upper()}", quantity=100, start_ns=t, end_ns=t + 3_600 * 10**9,
                            ts_init=t)  # fmt: skip
            prod.send_async(JobRequest(job_id=f"JG{tag}-{i}", parent=p, ts_init=t), key=p.parent_id)
        prod.flush()
        prod.close()
        # A copy of the values first: the tail's listener thread adds sagas to ``got`` meanwhile.
        wait_for(lambda: sum(any(e == "reported" for e, _ in v) for v in list(got.values())) == n, 60,
                 "every request answered")  # fmt: skip
        time.sleep(1.0)  # the tail has had every event of the requests' transactions by then
        answered = {saga: list(evs) for saga, evs in list(got.items())}  # the requests' own transactions
        cancels = bus.producer(topics.JOB_REQUESTS)
        for i in range(n):
            stop = CancelRequest(
                request_id=f"XG{tag}-{i}", parent_id=f"G{tag}-{i}", client_id="C1", ts_init=now_ns()
            )
            cancels.send_async(stop, key=stop.parent_id)
        cancels.flush()
        cancels.close()
        wait_for(lambda: sum(any(e == "saga.completed" for e, _ in v) for v in list(got.values())) == n, 60,
                 "every parent cancelled and closed")  # fmt: skip
    finally:
        hc.stop()
        tail.close()
    entries = {entry for events in answered.values() for _, entry in events}
    assert len(entries) < n, "each request went as an append of its own"
    for events in answered.values():  # one request's events are one transaction: one entry
        assert len({entry for _, entry in events}) == 1
    consumed = stream_of(topics.JOB_REQUESTS)
    before = REGISTRY.get_sample_value("paceline_bus_consumed_total", {"stream": consumed}) or 0.0
    nxt = HealthChecker(bus, f"hc-{tag}-next")
    nxt.start()
    try:
        assert nxt.is_leader.wait(60)
        time.sleep(2.0)  # any request not acknowledged would be redelivered to it by now
    finally:
        nxt.stop()
    assert (REGISTRY.get_sample_value("paceline_bus_consumed_total", {"stream": consumed}) or 0.0) == before
