"""The saga library on its own: replay, compensation order, timers, terminal states, rollback, outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from models import ExecType, SagaEvent, topics
from saga import (
    WALL,
    CompensationCompleted,
    LeaseLostError,
    MemoryLog,
    MemoryOutbox,
    Orchestrator,
    Saga,
    SagaError,
    SagaPayload,
    effect,
    events_table,
)
from saga.core import client_reports
from tests.factories import report


class Booked(SagaPayload):
    NAME = "booked"
    what: str


class Reported(SagaPayload):
    NAME = "reported"


@dataclass
class Trip(Saga):
    EVENTS: ClassVar[dict[str, type[SagaPayload]]] = events_table(Booked, Reported)

    booked: list[str] = field(default_factory=list)

    def on_event(self, event: SagaPayload) -> None:
        match event:
            case Booked(what=what):
                self.booked.append(what)
            case CompensationCompleted(name=name):
                self.booked.remove(name.removeprefix("unbook-"))


def _orch(log: MemoryLog, outbox: MemoryOutbox | None = None) -> Orchestrator[Trip]:
    o: Orchestrator[Trip] = Orchestrator(log, outbox or MemoryOutbox(), Trip)
    o.recover()
    return o


def test_compensations_run_in_reverse_and_state_is_rebuilt_by_replay() -> None:
    log = MemoryLog()
    o = _orch(log)
    for what in ("flight", "hotel", "car"):
        with o.transaction("T1", create=True) as ctx:
            assert ctx is not None
            ctx.register(f"unbook-{what}")  # registered before the step it undoes
            ctx.emit(Booked(what=what))
    undone: list[str] = []
    while o.sagas["T1"].stack:
        with o.transaction("T1") as ctx:
            assert ctx is not None
            undone.append(ctx.start_compensation())
            ctx.complete_compensation()
    assert undone == ["unbook-car", "unbook-hotel", "unbook-flight"]
    with o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.complete("compensated")
    rebuilt = _orch(log).sagas["T1"]
    assert rebuilt == o.sagas["T1"] and rebuilt.terminal and rebuilt.booked == []
    assert [e.event_id for e in log.events][:2] == ["T1.0", "T1.1"]


def test_a_started_compensation_is_still_running_after_a_restart() -> None:
    log = MemoryLog()
    o = _orch(log)
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.register("unbook-flight")
        ctx.emit(Booked(what="flight"))
        ctx.start_compensation()
    again = _orch(log).sagas["T1"]
    assert again.running == "unbook-flight" and again.stack == ["unbook-flight"]


def test_terminal_states_are_final_and_gaps_are_refused() -> None:
    log = MemoryLog()
    o = _orch(log)
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.complete("done")
    with pytest.raises(SagaError), o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="late"))
    assert o.sagas["T1"].seq == 1 and len(log.events) == 1  # nothing appended, state as before
    t = Trip("T2")
    with pytest.raises(SagaError):
        t.apply(log.events[0].model_copy(update={"saga_id": "T2", "seq": 3}))


def test_a_failing_handler_appends_nothing_and_restores_the_saga() -> None:
    log = MemoryLog()
    o = _orch(log)
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="flight"))
    with pytest.raises(RuntimeError), o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="hotel"))
        raise RuntimeError("boom")
    assert o.sagas["T1"].booked == ["flight"] and len(log.events) == 1


def test_timers_fire_on_their_own_clock() -> None:
    o = _orch(MemoryLog())
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.set_timer("hold", WALL, 100)
        ctx.set_timer("close", "market:AAPL", 50)
    clocks = {WALL: 99}
    assert o.due(clocks.get) == []  # the market clock is unknown: nothing fires on it
    clocks["market:AAPL"] = 50
    assert [t.name for _, t in o.due(clocks.get)] == ["close"]


def test_outbox_resends_only_what_was_not_published_and_a_fenced_log_refuses() -> None:
    log, out = MemoryLog(), MemoryOutbox()
    o = _orch(log, out)
    for i in range(3):
        with o.transaction("T1", create=True) as ctx:
            assert ctx is not None
            ctx.emit(Reported(), (effect(topics.REPORTS, report(report_id=f"R{i}")),))
    assert len(out.sent) == 3
    # A successor whose outbox lost the last publish (crash between append and publish) sends it once.
    out.sent.pop()
    out.last[topics.REPORTS] -= 1
    successor: Orchestrator[Trip] = Orchestrator(log, out, Trip)
    assert successor.recover() == (3, 1)
    assert [e.message["report_id"] for _, e in out.sent] == ["R0", "R1", "R2"]
    log.fenced = True
    with pytest.raises(LeaseLostError), o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Reported())
    with pytest.raises(LeaseLostError), o.transaction("T1"):
        pass


def test_events_are_typed_and_an_unknown_or_malformed_one_is_refused() -> None:
    log = MemoryLog()
    o = _orch(log)
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="flight"))
    entry = log.events[0]
    assert entry.name == "booked" and entry.data == {"what": "flight"}  # the log's shape is unchanged
    assert Trip.decode(entry) == Booked(what="flight")
    with pytest.raises(SagaError, match="unknown event"):
        Trip("T2").apply(entry.model_copy(update={"saga_id": "T2", "name": "teleported"}))
    with pytest.raises(SagaError, match="bad data"):
        Trip("T3").apply(entry.model_copy(update={"saga_id": "T3", "data": {"what": 3, "when": "now"}}))

    class Stranger(SagaPayload):
        NAME = "stranger"

    with pytest.raises(SagaError, match="not an event of Trip"), o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Stranger())


def test_the_outbox_does_not_wait_for_the_broker_but_a_lost_publish_stops_the_orchestrator() -> None:
    from runtime.bus import Bus
    from runtime.membus import MemoryBroker
    from saga import PulsarOutbox

    broker = MemoryBroker()
    bus = Bus.memory(broker)
    out = PulsarOutbox(bus)
    o: Orchestrator[Trip] = Orchestrator(MemoryLog(), out, Trip)
    o.recover()
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Reported(), (effect(topics.REPORTS, report(report_id="R0")),))
    assert out.failure() is None
    out._producers[topics.REPORTS]._raw.close()  # the broker connection goes: the next send fails
    with o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Reported(), (effect(topics.REPORTS, report(report_id="R1")),))  # committed; its send fails
    assert out.failure() is not None and "publishing effects failed" in (out.failure() or "")
    with pytest.raises(LeaseLostError, match="publishing effects failed"):
        o.check()
    with pytest.raises(LeaseLostError), o.transaction("T1"):
        pass
    # What the log holds and the broker lacks goes out once, from the successor.
    successor: Orchestrator[Trip] = Orchestrator(o.log, PulsarOutbox(Bus.memory(broker)), Trip)
    assert successor.recover() == (2, 1)
    bus.close()


def test_a_snapshot_in_parts_on_the_bus_gives_the_state_and_the_tail_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PulsarLog and PulsarSnapshots on the in-memory broker: message ids as text, parts, the last manifest
    found in one read; a save cut short (parts, no manifest) falls back to the whole log, same state."""
    from models import SagaSnapshotPart
    from runtime.bus import Bus
    from runtime.membus import MemoryBroker
    from saga import PulsarLog, PulsarSnapshots, snapshot

    monkeypatch.setattr(snapshot, "PART_BYTES", 300)  # a few sagas per part
    broker = MemoryBroker()
    bus = Bus.memory(broker)
    log = PulsarLog(bus)
    assert log.try_acquire()
    store = PulsarSnapshots(bus)
    o: Orchestrator[Trip] = Orchestrator(log, MemoryOutbox(), Trip)
    o.recover(store)
    for i in range(12):
        with o.transaction(f"T{i}", create=True) as ctx:
            assert ctx is not None
            ctx.emit(Booked(what=f"flight-{i}"))
            if i % 4 == 0:
                ctx.complete("done")
    o.prune(10**12)
    snap = o.snapshot(store)
    assert snap is not None and snap.position == 15 and len(snap.sagas) == 9 and len(snap.ended) == 3
    with o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="hotel"))
    log.release()

    def successor(store: PulsarSnapshots | None) -> tuple[Orchestrator[Trip], tuple[int, int]]:
        plog = PulsarLog(Bus.memory(broker))
        assert plog.try_acquire()
        s: Orchestrator[Trip] = Orchestrator(plog, MemoryOutbox(), Trip)
        got = s.recover(store)
        plog.release()
        return s, got

    manifest = [m for m in broker.topic(topics.SAGA_SNAPSHOTS).messages if b'"saga_snapshot"' in m.payload]
    assert len(manifest) == 1 and len(broker.topic(topics.SAGA_SNAPSHOTS).messages) >= 4  # parts first
    s, (replayed, _) = successor(PulsarSnapshots(Bus.memory(broker)))
    assert replayed == 1 and s.sagas == o.sagas and s.ended == o.ended and s.position == 16
    assert s.sagas["T1"].booked == ["flight-1", "hotel"]
    # A save cut short: a part after the last manifest. The whole log then; the same running sagas.
    bus.producer(topics.SAGA_SNAPSHOTS).send(SagaSnapshotPart(snapshot_id="cut", index=0))
    s2, (replayed, _) = successor(PulsarSnapshots(Bus.memory(broker)))
    assert replayed == 16 and {k: v for k, v in s2.sagas.items() if not v.terminal} == o.sagas
    # A tail event for a saga the state says ended is a corrupt history: refused, never applied.
    o2: Orchestrator[Trip] = Orchestrator(MemoryLog(), MemoryOutbox(), Trip)
    o2.ended = dict(o.ended)
    o2.log.append([e for e in s2.log.replay() if e.saga_id == "T0"])
    with pytest.raises(SagaError, match="after the saga ended"):
        o2.recover()
    bus.close()


def test_a_pulsar_log_fenced_out_refuses_the_whole_append_and_gives_up_the_lease() -> None:
    """On the in-memory broker: a transaction appended after another orchestrator fenced this one out is
    refused as a whole (nothing of it stored), and the log lets the lease go."""
    from runtime.bus import Bus
    from runtime.membus import MemoryBroker
    from saga import PulsarLog

    broker = MemoryBroker()
    first = PulsarLog(Bus.memory(broker))
    assert first.try_acquire()
    o: Orchestrator[Trip] = Orchestrator(first, MemoryOutbox(), Trip)
    with o.transaction("T0", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="seat"))
    assert len(broker.topic(topics.SAGA_LOG).messages) == 1
    second = PulsarLog(Bus.memory(broker))
    assert not second.try_acquire() and second.try_acquire(fence=True)
    with pytest.raises(LeaseLostError), o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="hotel"))
        ctx.emit(Booked(what="car"))
    assert len(broker.topic(topics.SAGA_LOG).messages) == 1 and not first.held
    with pytest.raises(LeaseLostError):
        o.check()


def test_a_group_commits_its_transactions_in_one_append_and_publishes_only_after_it() -> None:
    """Group commit: transactions in a group are appended together when it ends, their effects published
    only then; a later one sees what an earlier one decided; one that raises is undone alone; a failed
    commit (fenced) publishes nothing; a group cut short leaves the orchestrator refusing work."""

    class Counting(MemoryLog):
        def __init__(self) -> None:
            super().__init__()
            self.appends: list[int] = []

        def append(self, events: Sequence[SagaEvent]) -> None:
            self.appends.append(len(events))
            super().append(events)

    log, out = Counting(), MemoryOutbox()
    o = _orch(log, out)
    with o.group():
        for i in range(3):
            with o.transaction(f"T{i}", create=True) as ctx:
                assert ctx is not None
                fx = (effect(topics.REPORTS, report(report_id=f"R{i}"), key="c"),)
                ctx.emit(Booked(what=f"seat-{i}"), fx)
        with o.transaction("T0") as ctx:  # the group's own earlier decision is there to build on
            assert ctx is not None and ctx.saga.booked == ["seat-0"]
            ctx.emit(Booked(what="meal-0"))
        with pytest.raises(RuntimeError), o.transaction("T1") as ctx:
            assert ctx is not None
            ctx.emit(Booked(what="undone"))
            raise RuntimeError("a handler failed")
        assert log.appends == [] and out.sent == []  # nothing leaves before the group ends
    assert log.appends == [4] and [e.position for e in log.events] == [1, 2, 3, 4]
    assert [e.message["report_id"] for _, e in out.sent] == ["R0", "R1", "R2"]
    assert o.sagas["T0"].booked == ["seat-0", "meal-0"] and o.sagas["T1"].booked == ["seat-1"]
    assert o.position == 4 and _orch(log).sagas == o.sagas  # the log rebuilds the same state
    with o.transaction("T2") as ctx:  # outside a group: its own append, as before
        assert ctx is not None
        ctx.emit(Booked(what="meal-2"))
    assert log.appends == [4, 1]

    log.fenced = True
    with pytest.raises(LeaseLostError), o.group(), o.transaction("T9", create=True) as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="never"), (effect(topics.REPORTS, report(report_id="R9"), key="c"),))
    assert len(out.sent) == 3 and len(log.events) == 5
    with pytest.raises(LeaseLostError):
        o.check()

    cut = _orch(MemoryLog())
    with pytest.raises(KeyError), cut.group():
        with cut.transaction("T0", create=True) as ctx:
            assert ctx is not None
            ctx.emit(Booked(what="seat"))
        raise KeyError("the caller failed between transactions")
    with pytest.raises(LeaseLostError, match="cut short"):
        cut.check()


def test_each_event_is_handed_over_as_it_is_emitted_before_its_transaction_ends_and_its_append() -> None:
    """``on_decided`` sees each event as the handler emits it: before the transaction's next event, before
    the group's next transaction, before the append (the New told early). A handler that raises after an
    emit had that event handed over; nothing of it is appended, and its input is decided again."""
    log = MemoryLog()
    o = _orch(log)
    seen: list[tuple[str, int]] = []  # the event's id, and how many the log held at that moment
    o.on_decided = lambda e: seen.append((e.event_id, len(log.events)))
    with o.transaction("T1", create=True) as ctx:
        assert ctx is not None
        fx = (effect(topics.REPORTS, report(report_id="R1"), key="c"),)
        ctx.emit(Booked(what="flight"), fx)
        assert seen == [("T1.0", 0)]  # before the transaction ends
        ctx.emit(Booked(what="car"))
    assert seen == [("T1.0", 0), ("T1.1", 0)] and len(log.events) == 2
    with pytest.raises(RuntimeError), o.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="hotel"))
        raise RuntimeError("boom")
    assert seen[-1] == ("T1.2", 2) and len(log.events) == 2 and o.sagas["T1"].seq == 2  # handed, not kept
    with o.group():
        for i in (2, 3):
            with o.transaction(f"T{i}", create=True) as ctx:
                assert ctx is not None
                ctx.emit(Booked(what="seat"))
            assert seen[-1] == (f"T{i}.0", 2)  # before the group's next transaction and its append
    assert len(log.events) == 4
    assert [r.report_id for e in log.events for r in client_reports(e, ExecType.TRADE)] == ["R1"]
    assert [r.report_id for e in log.events for r in client_reports(e, ExecType.NEW)] == []
