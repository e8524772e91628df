"""A new order's request goes twice: on ``control/job-requests`` (the record) and on its non-persistent twin,
which the broker dispatches without a storage write first. The leading health-checker starts the parent from
whichever copy reaches it first and passes over the other; cancels and amends go on the record only. On
both transports."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from endpoint.service import EndpointService
from health_checker.coordinator import Config
from health_checker.service import REQUEST_COPIES, HealthChecker
from models import CancelRequest, ExecType, JobRequest, Message, OrdStatus, now_ns, topics
from runtime.bus import Bus, BusError, Delivery
from tests.broker.pipeline import parent_order, reports_of, saga_events, session_ticks, wait_for


def _request(tag: str) -> JobRequest:
    start, _ = session_ticks(f"T{tag.upper()}", 1)
    p = parent_order(tag, f"T{tag.upper()}", 1_000, start, 30)
    return JobRequest(job_id=f"J{p.parent_id}", parent=p, ts_init=p.ts_init)


def _copies() -> dict[tuple[str, str], float]:
    return {
        (c, p): REQUEST_COPIES.labels(c, p)._value.get() for c in ("twin", "record") for p in ("new", "known")
    }


def _cancel(bus: Bus, pids: list[str]) -> None:
    """Cancel the test's parents and wait for their final reports: the saga log is shared, and a later
    test's health-checker must not inherit them."""
    prod = bus.producer(topics.JOB_REQUESTS)
    for pid in pids:
        prod.send(
            CancelRequest(request_id=f"X{pid}", parent_id=pid, client_id="C1", ts_init=now_ns()), key=pid
        )
    prod.close()

    def closed(pid: str) -> bool:
        return any(r.ord_status is OrdStatus.CANCELED for r in reports_of(bus, pid))

    wait_for(lambda: all(closed(pid) for pid in pids), 60, "the parents cancelled")


@pytest.mark.parametrize("copies", ["twin", "twin, record", "record, twin"])
def test_a_new_order_starts_once_from_whichever_copy_comes_first(
    bus: Bus, venue: EndpointService, leader: HealthChecker, copies: str
) -> None:
    before = _copies()
    record, twin = bus.producer(topics.JOB_REQUESTS), bus.producer(topics.LIVE_JOB_REQUESTS)
    tag = uuid.uuid4().hex[:6]
    req = _request(tag)
    pid = req.parent.parent_id
    try:
        for where in copies.split(", "):
            (twin if where == "twin" else record).send(req, key=pid)
        wait_for(lambda: any(r.exec_type is ExecType.NEW for r in reports_of(bus, pid)), 30, "the New")
        # A later parent on the record only: once it is answered, the copy sent before it has been handled.
        later = _request(f"{tag}b")
        record.send(later, key=later.parent.parent_id)
        wait_for(lambda: bool(reports_of(bus, later.parent.parent_id)), 30, "the later parent's New")
    finally:
        record.close()
        twin.close()
    _cancel(bus, [pid, later.parent.parent_id])
    news = [r for r in reports_of(bus, pid) if r.exec_type is ExecType.NEW]
    assert len(news) == 1, f"the parent was answered {len(news)} times"
    starts = [e for e in saga_events(bus, pid) if e.name == "accepted"]
    assert len(starts) == 1, [e.name for e in saga_events(bus, pid)]
    # The twin's copy counted, as new when it came alone (which copy comes first otherwise is the broker's
    # timing: a stored message may be dispatched after a later one on the twin). Only the twin's counts are
    # this test's own: on the shared broker the record may still hold earlier tests' requests.
    after = _copies()
    got = {k: after[k] - before[k] for k in after}
    assert got["twin", "new"] + got["twin", "known"] == 1
    if copies == "twin":
        assert got["twin", "new"] == 1


@pytest.mark.parametrize("twin", [True, False], ids=["twin", "request_twin = false"])
def test_the_endpoint_sends_new_orders_on_the_twin_and_cancels_on_the_record_only(
    bus: Bus, venue: EndpointService, tmp_path: Path, twin: bool
) -> None:
    """And, set to (``request_twin = false``), new orders on the record only too."""
    ep = venue
    if not twin:
        cfg = venue.cfg.model_copy(
            update={"name": f"{venue.cfg.name}-r", "state_dir": tmp_path / "r", "request_twin": False}
        )
        ep = EndpointService(bus, cfg)
        ep.start()
    seen: list[Message] = []
    got = threading.Event()

    def on_twin(d: Delivery[Message]) -> None:
        seen.append(d.message)
        got.set()

    reader = bus.tail(topics.LIVE_JOB_REQUESTS, Message, on_twin)
    tag = uuid.uuid4().hex[:6]
    req = _request(tag)
    pid = req.parent.parent_id
    cancel = CancelRequest(request_id=f"R{tag}", parent_id=pid, client_id="C1", cl_ord_id=f"x{tag}",
                           ts_init=now_ns())  # fmt: skip
    try:
        ep._publish_request(topics.JOB_REQUESTS, req, pid)
        ep._publish_request(topics.JOB_REQUESTS, cancel, pid)
        assert ep._requests is not None
        ep._requests.flush()
        assert got.wait(30 if twin else 2) is twin, "nothing on the twin" if twin else "a copy on the twin"
        time.sleep(0.5)  # long enough for a copy of the cancel, sent right after it, to arrive too
        on_record = [d.message for d in bus.read_all(topics.JOB_REQUESTS, Message)
                     if getattr(d.message, "parent_id", None) == pid
                     or getattr(getattr(d.message, "parent", None), "parent_id", None) == pid]  # fmt: skip
    finally:
        reader.close()
        if ep is not venue:
            ep.stop()
    assert on_record == [req, cancel]
    assert seen == ([req] if twin else [])  # the cancel, sent after it, never came on the twin


def test_a_health_checker_that_may_not_read_the_twin_leads_on_the_record(
    bus: Bus, venue: EndpointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker whose grants predate the twin refuses its reader: the leader says so and goes on without."""
    tail = bus.tail

    def refusing(topic: str, *args: Any, **kw: Any) -> Any:
        if topic == topics.LIVE_JOB_REQUESTS:
            raise BusError(f"cannot follow {topic}: AuthorizationError")
        return tail(topic, *args, **kw)

    monkeypatch.setattr(bus, "tail", refusing)
    hc = HealthChecker(bus, f"hc-{uuid.uuid4().hex[:6]}", Config(heartbeat_timeout_s=3))
    hc.start()
    try:
        assert hc.is_leader.wait(60), "the health-checker never took the lease"
        req = _request(uuid.uuid4().hex[:6])
        record = bus.producer(topics.JOB_REQUESTS)
        record.send(req, key=req.parent.parent_id)
        record.close()
        wait_for(lambda: bool(reports_of(bus, req.parent.parent_id)), 30, "the New")
        _cancel(bus, [req.parent.parent_id])
    finally:
        hc.stop()
