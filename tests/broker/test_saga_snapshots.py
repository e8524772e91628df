"""Snapshots on the real broker: message ids as text, the last manifest found in one read, the log read
from the entry after the snapshot's (what the in-memory broker only imitates)."""

from __future__ import annotations

import uuid

import pytest

from models import SagaEvent, topics
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


def test_a_transaction_is_one_entry_on_pulsar_and_its_re_append_is_stored_once(bus: Bus) -> None:
    """One append is one batch: its events share one entry (one write at the bookie, one round trip), and
    read back one by one, in order; appending them again (a retry after a lost receipt) stores nothing:
    the broker drops the batch by its sequence ids."""
    tag = uuid.uuid4().hex[:6]
    log_topic = f"{topics.SAGA_LOG}-g{tag}"
    plog = PulsarLog(bus, log_topic, name=f"log-{tag}")
    assert plog.try_acquire()
    o: Orchestrator[Trip] = Orchestrator(plog, MemoryOutbox(), Trip)
    o.recover()
    for i in range(2):
        with o.transaction(f"T{i}", create=True) as ctx:
            assert ctx is not None
            ctx.emit(Booked(what=f"seat-{i}"))
            ctx.emit(Booked(what=f"meal-{i}"))
            ctx.complete("done")
    got = bus.read_all(log_topic, SagaEvent)
    assert [d.message.position for d in got] == list(range(1, 7))
    entries = [(d.message_id.ledger_id(), d.message_id.entry_id()) for d in got]
    assert entries[0] == entries[1] == entries[2] != entries[3] == entries[4] == entries[5]
    assert [d.message_id.batch_index() for d in got] == [0, 1, 2, 0, 1, 2]
    last = plog.last_id
    plog.append([d.message for d in got[3:]])  # the second transaction again, same sequence ids
    assert [d.message.position for d in bus.read_all(log_topic, SagaEvent)] == list(range(1, 7))
    assert plog.last_id != last  # a de-duplicated append names no entry of its own
    plog.release()
