"""The venue's topics per equity, on the in-memory broker: a worker's child order that comes before the saga's
OPEN of its job waits for it and is then taken, ahead of the job's later ones; one whose job is never opened
here is refused once ``HOLD_S`` has passed; the answers reach the workers on the symbol's executions topic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from endpoint import service
from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from models import (
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    Message,
    OrdType,
    Side,
    VenueCommand,
    VenueOp,
    topics,
)
from runtime.bus import Bus, Consumer
from runtime.membus import MemoryBroker
from tests.factories import T0, tick

SYM = "HOLD"


def _new(job_id: str, n: int, ord_type: OrdType = OrdType.MARKET) -> ChildOrderAction:
    return ChildOrderAction(
        action=ChildAction.NEW, child_id=f"{job_id}.1.{n}", job_id=job_id, parent_id=f"P{job_id}",
        worker_id="w1", epoch=1, symbol=SYM, side=Side.BUY, quantity=100, ord_type=ord_type,
        limit_px=99.0 if ord_type is OrdType.LIMIT else None, ts_event=T0, ts_init=T0,
    )  # fmt: skip


def _answers(seen: Consumer[Message], want: int) -> list[Message]:
    out: list[Message] = []
    deadline = time.monotonic() + 5
    while len(out) < want and time.monotonic() < deadline:
        d = seen.receive(timeout_ms=200)
        if d is not None:
            out.append(d.message)
    return out


def _held() -> float:
    return float(service.HELD._value.get())


@pytest.fixture
def venue(tmp_path: Path) -> tuple[EndpointService, Bus]:
    broker = MemoryBroker()
    cfg = EndpointConfig(name="ep-hold", symbols=(SYM,), fix_port=0, native_port=0, state_dir=tmp_path)
    ep = EndpointService(Bus.memory(broker), cfg)
    ep.start()
    return ep, Bus.memory(broker)


def test_a_child_order_before_its_jobs_open_waits_for_it_and_keeps_its_place(
    venue: tuple[EndpointService, Bus],
) -> None:
    ep, worker = venue
    try:
        seen = worker.subscribe(topics.job_executions(SYM), "w1", Message)
        worker.producer(topics.ticks(SYM)).send(tick(symbol=SYM), key=SYM)
        deadline = time.monotonic() + 5
        while SYM not in ep.venue.last and time.monotonic() < deadline:
            time.sleep(0.02)
        actions = worker.producer(topics.job_actions(SYM))
        # A resting order, then its cancel: taken in the other order, the cancel would find nothing open.
        actions.send(_new("J1", 0, OrdType.LIMIT), key="J1")
        cancel = _new("J1", 0, OrdType.LIMIT).model_copy(update={"action": ChildAction.CANCEL, "quantity": 0})
        actions.send(cancel, key="J1")
        deadline = time.monotonic() + 5
        while _held() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _held() == 2
        assert seen.receive(timeout_ms=300) is None  # nothing answered while the job is unknown here
        open_ = VenueCommand(command_id="c1", op=VenueOp.OPEN, job_id="J1", parent_id="PJ1", symbol=SYM,
                             side=Side.BUY, quantity=1_000, epoch=1, ts_init=T0)  # fmt: skip
        worker.producer(topics.VENUE_COMMANDS).send(open_, key="J1")
        got = _answers(seen, 2)
        assert [(m.child_id, m.status) for m in got if isinstance(m, ChildOrderAck)] == [
            ("J1.1.0", AckStatus.ACCEPTED),
            ("J1.1.0", AckStatus.CANCELED),
        ]
        assert _held() == 0
        # A later one of the job's goes straight through.
        actions.send(_new("J1", 1), key="J1")
        later = _answers(seen, 1)
        assert later and isinstance(later[0], Fill | ChildOrderAck) and later[0].child_id == "J1.1.1"
    finally:
        ep.stop()
        worker.close()


def test_a_child_order_whose_job_never_opens_here_is_refused_after_the_hold(
    venue: tuple[EndpointService, Bus], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "HOLD_S", 0.2)
    ep, worker = venue
    try:
        seen = worker.subscribe(topics.job_executions(SYM), "w1", Message)
        worker.producer(topics.job_actions(SYM)).send(_new("J9", 0), key="J9")
        got = _answers(seen, 1)
        assert len(got) == 1 and isinstance(got[0], ChildOrderAck)
        assert got[0].status is AckStatus.REJECTED and (got[0].reason or "").startswith("unknown_job")
        assert _held() == 0
    finally:
        ep.stop()
        worker.close()


def test_a_child_order_from_well_before_the_endpoint_of_a_job_it_never_had_is_passed_over(
    venue: tuple[EndpointService, Bus],
) -> None:
    """Its first read of a symbol's topic hands a new endpoint the day's earlier child orders: those of jobs
    it never had are acknowledged and counted, neither held nor answered."""
    ep, worker = venue
    ep._started_ms += 120_000  # as if this endpoint started two minutes after the order below was sent
    refused = service.REFUSED.labels("unknown_job")
    before = refused._value.get()
    try:
        seen = worker.subscribe(topics.job_executions(SYM), "w1", Message)
        worker.producer(topics.job_actions(SYM)).send(_new("J7", 0), key="J7")
        deadline = time.monotonic() + 5
        while refused._value.get() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert refused._value.get() == before + 1
        assert _held() == 0 and not ep._held
        assert seen.receive(timeout_ms=300) is None
    finally:
        ep.stop()
        worker.close()


def test_a_restarted_venue_reads_its_jobs_answers_off_the_symbols_topic_and_cancels_what_rested(
    tmp_path: Path,
) -> None:
    """After a restart the venue rebuilds an open job from the symbol's executions topic: a child order
    that rested is cancelled and its worker told; one that traded is known (a redelivered NEW trades no
    more), and the job's filled quantity is back."""
    broker = MemoryBroker()
    cfg = EndpointConfig(name="ep-restart", symbols=(SYM,), fix_port=0, native_port=0, state_dir=tmp_path)
    worker = Bus.memory(broker)
    seen = worker.subscribe(topics.job_executions(SYM), "w1", Message)
    ticks, actions = worker.producer(topics.ticks(SYM)), worker.producer(topics.job_actions(SYM))
    open_ = VenueCommand(command_id="c1", op=VenueOp.OPEN, job_id="J1", parent_id="PJ1", symbol=SYM,
                         side=Side.BUY, quantity=1_000, epoch=1, ts_init=T0)  # fmt: skip
    first = EndpointService(Bus.memory(broker), cfg)
    first.start()
    try:
        ticks.send(tick(symbol=SYM), key=SYM)
        deadline = time.monotonic() + 5
        while SYM not in first.venue.last and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.producer(topics.VENUE_COMMANDS).send(open_, key="J1")
        actions.send(_new("J1", 0, OrdType.LIMIT), key="J1")  # rests
        actions.send(_new("J1", 1), key="J1")  # trades at once
        before = _answers(seen, 3)
        assert {type(m).__name__ for m in before} == {"ChildOrderAck", "Fill"}
    finally:
        first.stop()
    second = EndpointService(Bus.memory(broker), cfg)
    second.start()
    try:
        [told] = _answers(seen, 1)
        assert isinstance(told, ChildOrderAck) and told.child_id == "J1.1.0"
        assert told.status is AckStatus.CANCELED and "venue restarted" in (told.reason or "")
        assert {"J1.1.0", "J1.1.1"} <= second.venue.known
        assert second.venue.jobs["J1"].filled == 100
    finally:
        second.stop()
        worker.close()
