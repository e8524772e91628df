"""Every service shell in one process on the bus, on both transports: the health-checker (its lease on the
saga log, the coordinator), a worker, the endpoint's venue router and a receiver feeding a synthetic market.
A TWAP parent sent as a JobRequest is assigned, worked, filled and reported once per fill."""

from __future__ import annotations

import uuid

from endpoint.service import EndpointService
from health_checker.coordinator import Config
from health_checker.service import HealthChecker
from paceline.ops.stack import Feed
from runtime.bus import Bus
from tests.broker.pipeline import check_reports, filled_qty, parent_order, session_ticks, submit, wait_for
from worker.service import WorkerService

QTY = 4_000


def test_job_assigned_worked_and_completed(bus: Bus, venue: EndpointService) -> None:
    tag = uuid.uuid4().hex[:6]
    symbol = f"H{tag.upper()}"
    start, ticks = session_ticks(symbol, 4)
    hc = HealthChecker(bus, f"hc-{tag}", Config(heartbeat_timeout_s=3))
    hc.start()
    w = WorkerService(bus, f"w-{tag}", None, heartbeat_s=0.2)
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
