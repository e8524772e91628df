"""A new order's New told early. By default the endpoint that wrote the order's request tells its client the
New once that request is stored, built as the saga builds it (``new_on_store``). Otherwise the leading
health-checker publishes it on the reports' twin as it decides it, before the saga's commit, and the endpoint
tells it once the request is stored. A refusal is never published early. On both transports."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from health_checker.service import HealthChecker
from models import ExecType, ExecutionReport, JobRequest, Message, OrdStatus, new_report, now_ns, topics
from runtime.bus import Bus
from tests.broker.pipeline import parent_order, reports_of, session_ticks, wait_for
from tests.factories import report, tick
from tests.services.test_request_twin import _cancel, _request


def test_the_leader_publishes_a_new_orders_new_on_the_twin_and_never_a_refusal(
    bus: Bus, venue: EndpointService, leader: HealthChecker
) -> None:
    early: list[ExecutionReport] = []
    reader = bus.tail(topics.LIVE_REPORTS, ExecutionReport, lambda d: early.append(d.message))
    tag = uuid.uuid4().hex[:6]
    req = _request(tag)
    pid = req.parent.parent_id
    start, _ = session_ticks(f"T{tag.upper()}", 1)
    # Sent now, for a window that ended 90 minutes ago: refused.
    over = parent_order(f"{tag}x", f"T{tag.upper()}", 1_000, start - 7_200 * 10**9, 30)
    over = over.model_copy(update={"ts_init": start})
    record = bus.producer(topics.JOB_REQUESTS)
    try:
        record.send(JobRequest(job_id=f"J{over.parent_id}", parent=over, ts_init=start), key=over.parent_id)
        record.send(req, key=pid)
        wait_for(lambda: any(r.exec_type is ExecType.NEW for r in reports_of(bus, pid)), 30, "the New")
        wait_for(lambda: any(r.parent_id == pid for r in early), 30, "the New on the twin")
        time.sleep(0.3)  # a copy of anything else would have come by now
    finally:
        record.close()
        reader.close()
    _cancel(bus, [pid])
    committed = [r for r in reports_of(bus, pid) if r.exec_type is ExecType.NEW]
    told = [r for r in early if r.parent_id in (pid, over.parent_id)]
    assert told == committed, "the twin's New is the one the saga committed, once"
    refused = reports_of(bus, over.parent_id)
    assert [r.ord_status for r in refused] == [OrdStatus.REJECTED], refused


def _told(ep: EndpointService, client_id: str) -> tuple[list[Message], threading.Event, Callable[[], None]]:
    """What the endpoint's desk tells ``client_id``, an event set at the first, and the detach."""
    got: list[Message] = []
    arrived = threading.Event()

    def sink(m: Message) -> None:
        got.append(m)
        arrived.set()

    return got, arrived, ep.desk.attach(client_id, sink)


def test_on_the_store_the_endpoint_tells_the_new_with_no_saga_running(bus: Bus, tmp_path: Path) -> None:
    """No health-checker runs here. The client is told the New once its order's request is stored (nothing
    is in the saga log), the New the saga builds for it; the saga's own copy, when its commit brings it, is a
    duplicate. The reports' twin is not read."""
    tag = uuid.uuid4().hex[:6]
    p = _request(tag).parent
    cfg = EndpointConfig(name=f"ep-{tag}", symbols=(p.symbol,), fix_port=0, native_port=0, state_dir=tmp_path)
    ep = EndpointService(bus, cfg)
    ep.start()
    got, arrived, detach = _told(ep, p.client_id)
    try:
        assert ep._news is None
        ep.tca.on_tick(tick(symbol=p.symbol, ts_event=p.ts_init, ts_init=p.ts_init))
        assert ep.desk.submit(p) is None
        assert arrived.wait(30), "never told"
        ep.desk.on_report(new_report(p, now_ns()))  # the saga's, as its commit would bring it
        time.sleep(0.3)
    finally:
        detach()
        ep.stop()
    assert len(got) == 1 and isinstance(got[0], ExecutionReport), got
    assert got[0].model_dump(exclude={"ts_event", "ts_init"}) == new_report(p, 0).model_dump(
        exclude={"ts_event", "ts_init"}
    )
    stored = [d.message for d in bus.read_all(topics.JOB_REQUESTS, Message) if d.key == p.parent_id]
    assert [r.parent for r in stored if isinstance(r, JobRequest)] == [p], "told New for a request not stored"


@pytest.mark.parametrize("early_new", [True, False], ids=["on the decision", "early_new = false"])
def test_the_endpoint_tells_an_early_new_only_for_a_request_it_stored(
    bus: Bus, venue: EndpointService, tmp_path: Path, early_new: bool
) -> None:
    """With ``new_on_store = false``. No health-checker runs here: the test decides for it. The client is
    told the New with nothing in the saga log, because its request is stored; a New for a request this
    endpoint never wrote waits for its commit. Set to ``early_new = false``, the twin is not read at all."""
    cfg = venue.cfg.model_copy(update={"name": f"{venue.cfg.name}-r", "state_dir": tmp_path / "r",
                                       "early_new": early_new, "new_on_store": False})  # fmt: skip
    ep = EndpointService(bus, cfg)
    ep.start()
    got, arrived, detach = _told(ep, "C1")
    tag = uuid.uuid4().hex[:6]
    req = _request(tag)
    pid = req.parent.parent_id
    stranger = _request(f"{tag}s").parent.parent_id  # another endpoint's order

    def new(parent_id: str) -> ExecutionReport:
        return report(report_id=f"{parent_id}.1", parent_id=parent_id, client_id="C1", cl_ord_id=f"c{tag}",
                      exec_type=ExecType.NEW, ord_status=OrdStatus.NEW, last_qty=0, last_px=None, cum_qty=0,
                      leaves_qty=1000, avg_px=0.0)  # fmt: skip

    twin = bus.producer(topics.LIVE_REPORTS)
    try:
        ep._publish_request(topics.JOB_REQUESTS, req, pid)
        assert ep._requests is not None
        ep._requests.flush()
        wait_for(lambda: pid in ep.desk._stored or not early_new, 30, "the request's store")
        twin.send(new(stranger), key="C1")
        twin.send(new(pid), key="C1")
        assert arrived.wait(30 if early_new else 1) is early_new, "told" if not early_new else "never told"
        time.sleep(0.3)  # the stranger's, sent first, would have come by now
    finally:
        twin.close()
        detach()
        ep.stop()
    assert [getattr(m, "parent_id", None) for m in got] == ([pid] if early_new else [])
    if early_new:
        assert stranger in ep.desk._held  # until its commit's copy, or until it is trimmed
