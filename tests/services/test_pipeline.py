"""Every service shell in one process on the bus, on both transports: the health-checker (its lease on the
saga log, the coordinator), a worker, the endpoint's venue router and a receiver feeding a synthetic market.
A TWAP parent sent as a JobRequest is assigned, worked, filled and reported once per fill; again with the
child orders also on their topics' non-persistent twins (``PACELINE_LIVE_ACTIONS``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from endpoint.action_order import COPIES
from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from health_checker.coordinator import Config
from health_checker.service import HealthChecker
from models import ChildAction
from paceline.ops.stack import Feed
from runtime.bus import Bus
from tests.broker.pipeline import check_reports, filled_qty, parent_order, session_ticks, submit, wait_for
from worker.service import DECISIONS, WorkerService

QTY = 4_000


def test_job_assigned_worked_and_completed(bus: Bus, venue: EndpointService) -> None:
    _work_one_parent(bus, venue)


def _copies(copy: str, fate: str) -> float:
    return float(COPIES.labels(copy, fate)._value.get())


def test_job_worked_with_its_child_orders_also_on_the_twin(bus: Bus, tmp_path: Path) -> None:
    """The endpoint reads both copies of every action and hands each on once (the twin's usually comes
    first on Pulsar, the record's always on the in-memory broker), and the parent is worked as without the
    twin: filled, every fill reported once."""
    cfg = EndpointConfig(name=f"ep-{uuid.uuid4().hex[:6]}", symbols=(), fix_port=0, native_port=0,
                         state_dir=tmp_path)  # fmt: skip
    ep = EndpointService(bus, cfg, live_actions=True)
    ep.start()
    fates = [
        (c, f) for c in ("record", "twin") for f in ("handled", "duplicate", "held", "let_go", "released")
    ]
    before = {k: _copies(*k) for k in fates}
    sent_before = _sent()
    try:
        _work_one_parent(bus, ep, live_actions=True)
    finally:
        ep.stop()
    moved = {k: _copies(*k) - v for k, v in before.items()}
    sent = _sent() - sent_before
    handed_on = moved["record", "handled"] + moved["twin", "handled"] + moved["twin", "released"]
    assert sent > 0 and handed_on == sent, (sent, moved)
    assert sum(v for (c, _), v in moved.items() if c == "twin") > 0, moved  # the twin's copies were read


def _sent() -> float:
    return sum(float(DECISIONS.labels(a.value)._value.get()) for a in ChildAction)


def _work_one_parent(bus: Bus, venue: EndpointService, *, live_actions: bool = False) -> None:
    tag = uuid.uuid4().hex[:6]
    symbol = f"H{tag.upper()}"
    start, ticks = session_ticks(symbol, 4)
    hc = HealthChecker(bus, f"hc-{tag}", Config(heartbeat_timeout_s=3))
    hc.start()
    w = WorkerService(bus, f"w-{tag}", None, heartbeat_s=0.2, live_actions=live_actions)
    w.start()
    try:
        assert hc.is_leader.wait(60), "the health-checker never took the lease"
        wait_for(lambda: hc.coordinator is not None and w.worker_id in hc.coordinator.pool.workers, 20,
                 "the worker in the pool")  # fmt: skip
        p = parent_order(tag, symbol, QTY, start, 4)
        submit(bus, p)
        wait_for(lambda: bool(w.engine.jobs), 20, "the assignment")
        feed = Feed(bus, f"h{tag}", ticks, speed=25).start()
        wait_for(lambda: filled_qty(bus, p.parent_id) == QTY, 60, "the parent filled")
        feed.stop()
        # The last fill's report comes before the saga ends: it closes the venue job and waits for the venue.
        orch = hc.coordinator.orch if hc.coordinator else None

        def ended() -> str | None:  # its final status, live or already pruned to its record
            if orch is None:
                return None
            if (record := orch.ended.get(p.parent_id)) is not None:
                return record.status
            sg = orch.sagas.get(p.parent_id)
            return sg.status if sg is not None and sg.terminal else None

        wait_for(lambda: ended() is not None, 20, "the saga's end")
        assert ended() == "filled"
        job = venue.venue.jobs[f"J{p.parent_id}"]
        assert job.filled == QTY and job.closed
        check_reports(bus, p.parent_id, QTY)
    finally:
        w.stop()
        hc.stop()
