"""The endpoint takes a client's execution reports from the saga log (committed, one broker hop sooner than
the reports topic) and from the reports topic: the client gets each report once, on its first arrival, and
what only the topic carries (a request's reject) still reaches it. On the in-memory broker only: writing a
made-up event into the session broker's saga log would be replayed by every later health-checker there.
On Pulsar, the FIX tests (``tests/broker/test_endpoint_fix.py``) count what a client receives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from models import (
    ExecType,
    Message,
    OrdStatus,
    RequestKind,
    RequestReject,
    SagaEvent,
    topics,
)
from runtime.bus import Bus
from runtime.membus import MemoryBroker
from saga.core import effect
from tests.broker.pipeline import wait_for
from tests.factories import T0, report


@pytest.fixture
def bus() -> Iterator[Bus]:
    b = Bus.memory(MemoryBroker())
    yield b
    b.close()


@pytest.fixture
def venue(bus: Bus, tmp_path: Path) -> Iterator[EndpointService]:
    cfg = EndpointConfig(name="ep", symbols=(), fix_port=0, native_port=0, state_dir=tmp_path)
    ep = EndpointService(bus, cfg)
    ep.start()
    yield ep
    ep.stop()


def test_a_client_gets_each_report_once_though_it_arrives_twice(
    bus: Bus, venue: EndpointService, unique: str
) -> None:
    client, pid = f"CL{unique}", f"P-{unique}"
    got: list[Message] = []
    venue.desk.attach(client, got.append)
    new = report(report_id=f"R-{unique}-1", parent_id=pid, client_id=client, exec_type=ExecType.NEW,
                 ord_status=OrdStatus.NEW, last_qty=0, cum_qty=0, leaves_qty=1000, avg_px=0.0)  # fmt: skip
    trade = report(report_id=f"R-{unique}-2", parent_id=pid, client_id=client)
    reject = RequestReject(parent_id=pid, client_id=client, cl_ord_id="X-1", orig_cl_ord_id="C-1",
                           request=RequestKind.CANCEL, ord_status=OrdStatus.NEW, reason="test",
                           ts_init=T0)  # fmt: skip
    # The log holds both reports and the reject; the endpoint takes only execution reports from it.
    event = SagaEvent(event_id=f"{pid}.1", saga_id=pid, seq=1, position=1, name="test", ts_init=T0,
                      effects=(effect(topics.REPORTS, new), effect(topics.REPORTS, trade),
                               effect(topics.REPORTS, reject)))  # fmt: skip
    log = bus.producer(topics.SAGA_LOG)
    log.send(event)
    wait_for(lambda: len(got) >= 2, 20, "the reports from the log")
    assert got == [new, trade]
    reports = bus.producer(topics.REPORTS)
    for m in (new, trade, reject):  # what the outbox publishes after the append
        reports.send(m, key=pid)
    wait_for(lambda: len(got) >= 3, 20, "the reject from the reports topic")
    # One more report behind them on the topic: once it is here, the duplicates before it were passed over.
    last = report(report_id=f"R-{unique}-3", parent_id=pid, client_id=client, cum_qty=200, leaves_qty=800)
    reports.send(last, key=pid)
    wait_for(lambda: len(got) >= 4, 20, "the report after the duplicates")
    assert got == [new, trade, reject, last]
    log.close()
    reports.close()
