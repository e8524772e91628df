"""Snapshots on the real broker: message ids as text, the last manifest found in one read, the log read
from the entry after the snapshot's (what the in-memory broker only imitates)."""

from __future__ import annotations

import uuid

import pytest

from models import topics
from runtime.bus import Bus
from saga import MemoryOutbox, Orchestrator, PulsarLog, PulsarSnapshots, snapshot
from tests.unit.saga.test_core import Booked, Trip


def test_a_takeover_on_pulsar_starts_from_the_latest_snapshot_and_replays_only_what_follows(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "PART_BYTES", 400)  # several parts
    tag = uuid.uuid4().hex[:6]
    log_topic, snap_topic = f"{topics.SAGA_LOG}-t{tag}", f"{topics.SAGA_SNAPSHOTS}-t{tag}"
    assert PulsarSnapshots(bus, snap_topic).latest() is None  # an empty topic: the whole log
    plog = PulsarLog(bus, log_topic, name=f"log-{tag}")
    assert plog.try_acquire()
    store = PulsarSnapshots(bus, snap_topic)
    o: Orchestrator[Trip] = Orchestrator(plog, MemoryOutbox(), Trip)
    o.recover(store)

    def book(n: int, first: int) -> None:
        for i in range(first, first + n):
            with o.transaction(f"T{i}", create=True) as ctx:
                assert ctx is not None
                ctx.emit(Booked(what=f"seat-{i}"))
                if i % 3 == 0:
                    ctx.complete("done")

    book(30, 0)
    o.prune(10**12)
    assert o.snapshot(store) is not None
    book(20, 30)
    o.prune(10**12)
    second = o.snapshot(store)  # the latest wins
    assert second is not None and second.position == 50 + 17
    book(4, 50)
    plog.release()

    successor = PulsarLog(bus, log_topic, name=f"log-{tag}")
    assert successor.try_acquire()
    s: Orchestrator[Trip] = Orchestrator(successor, MemoryOutbox(), Trip)
    replayed, _ = s.recover(PulsarSnapshots(bus, snap_topic))
    assert replayed == 4 + 1  # the tail: four bookings after the second snapshot, one of them completing
    assert s.position == o.position and s.ended == o.ended
    assert {k: v for k, v in s.sagas.items()} == o.sagas
    assert s.log.last_id is not None
    # The successor appends where the log ends, and its own snapshot is the next takeover's start.
    with s.transaction("T1") as ctx:
        assert ctx is not None
        ctx.emit(Booked(what="upgrade"))
    s.prune(10**12)
    assert s.snapshot(PulsarSnapshots(bus, snap_topic)) is not None
    successor.release()
    third: Orchestrator[Trip] = Orchestrator(PulsarLog(bus, log_topic), MemoryOutbox(), Trip)
    assert third.recover(PulsarSnapshots(bus, snap_topic))[0] == 0
    assert third.sagas["T1"].booked == ["seat-1", "upgrade"]
