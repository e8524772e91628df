"""Snapshots of the orchestrator's state, so that a takeover replays only the log's tail.

A snapshot at log position P holds every saga still running after P, the compact record of the ended
ones (kept a while, so that an input redelivered late is still recognised), and the id of log entry P. It
is taken only once the outbox has stored every effect up to P, so a successor re-sends from the tail only.
A snapshot is a function of a prefix of the log: one that a fenced leader writes late is still a correct
starting point (the successor replays whatever followed P, whoever appended it).

On Pulsar (``PulsarSnapshots``) a snapshot is written as parts, each well under the codec's payload limit,
then a manifest naming them; the latest manifest is the last message on the topic, so finding it is one
read whatever the topic's length, and a takeover costs the live state plus the tail, not the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pydantic_core
from pydantic import JsonValue

from models import Message, SagaSnapshot, SagaSnapshotPart, codec, now_ns, topics
from runtime.bus import Bus, BusError, Producer
from runtime.logs import get_logger

log = get_logger("paceline.saga")

PART_BYTES = 256 * 1024  # a part's target size: a quarter of the codec's limit


@dataclass(frozen=True, slots=True)
class Ended:
    """What is kept of a saga once it has ended: its status, when it was pruned (wall clock) and the facts
    its domain needs to answer for it later (``Saga.ended_facts``)."""

    status: str
    ended_ns: int
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class Snapshot:
    position: int  # the last log position it includes
    log_id: str  # that entry's id (``SagaLog.last_id``)
    sagas: list[dict[str, JsonValue]]  # each running saga's state, as its class dumps it
    ended: dict[str, Ended]
    taken_ns: int = 0


class SnapshotStore(Protocol):
    def latest(self) -> Snapshot | None: ...

    def save(self, snapshot: Snapshot) -> None: ...


class MemorySnapshots:
    def __init__(self) -> None:
        self.saved: list[Snapshot] = []

    def latest(self) -> Snapshot | None:
        return self.saved[-1] if self.saved else None

    def save(self, snapshot: Snapshot) -> None:
        self.saved.append(snapshot)


def _ended_data(e: Ended) -> dict[str, JsonValue]:
    return {"status": e.status, "ended_ns": e.ended_ns, "facts": dict(e.facts)}


def _ended(d: dict[str, JsonValue]) -> Ended:
    facts = d.get("facts")
    return Ended(
        status=str(d["status"]), ended_ns=int(str(d["ended_ns"])),
        facts={str(k): str(v) for k, v in facts.items()} if isinstance(facts, dict) else {},
    )  # fmt: skip


State = dict[str, JsonValue]


def _parts(snapshot: Snapshot) -> Iterator[tuple[list[State], dict[str, State]]]:
    """Sagas and ended records in groups of about ``PART_BYTES`` encoded."""
    sagas: list[State] = []
    ended: dict[str, State] = {}
    size = 0
    for s in snapshot.sagas:
        n = len(pydantic_core.to_json(s))
        if sagas and size + n > PART_BYTES:
            yield sagas, ended
            sagas, ended, size = [], {}, 0
        sagas.append(s)
        size += n
    for saga_id, e in snapshot.ended.items():
        if size > PART_BYTES:
            yield sagas, ended
            sagas, ended, size = [], {}, 0
        ended[saga_id] = _ended_data(e)
        size += 64 + len(saga_id) + sum(len(k) + len(v) + 6 for k, v in e.facts.items())
    if sagas or ended or not snapshot.sagas:
        yield sagas, ended


class PulsarSnapshots:
    """Snapshots on ``saga/snapshots``: parts, then the manifest that names them by message id."""

    def __init__(self, bus: Bus, topic: str = topics.SAGA_SNAPSHOTS) -> None:
        self.bus = bus
        self.topic = topic
        self._producer: Producer | None = None
        self.last_bytes = 0  # the last snapshot's size, encoded

    def save(self, snapshot: Snapshot) -> None:
        if self._producer is None:
            self._producer = self.bus.producer(self.topic)
        sid = f"snap.{snapshot.position}.{now_ns()}"
        ids: list[str] = []
        self.last_bytes = 0
        for i, (sagas, ended) in enumerate(_parts(snapshot)):
            part = SagaSnapshotPart(snapshot_id=sid, index=i, sagas=tuple(sagas), ended=ended)
            self.last_bytes += len(codec.encode(part))
            ids.append(self.bus.id_token(self._producer.send(part)))
        self._producer.send(SagaSnapshot(
            snapshot_id=sid, position=snapshot.position, log_id=snapshot.log_id, parts=tuple(ids),
            live=len(snapshot.sagas), ended=len(snapshot.ended), ts_init=snapshot.taken_ns,
        ))  # fmt: skip

    def latest(self) -> Snapshot | None:
        """The last complete snapshot; None if there is none or it cannot be read whole (the caller then
        replays the whole log: slower, never wrong)."""
        last = self.bus.read_at(self.topic, Message)
        if last is None:
            return None
        m = last.message
        if not isinstance(m, SagaSnapshot):  # parts without their manifest: a save cut short
            log.warning("the last snapshot was not completed; replaying the whole log")
            return None
        sagas: list[dict[str, JsonValue]] = []
        ended: dict[str, Ended] = {}
        for i, token in enumerate(m.parts):
            try:
                got = self.bus.read_at(self.topic, SagaSnapshotPart, token)
            except BusError as exc:
                log.error("a snapshot part cannot be read; replaying the whole log", part=i, error=str(exc))
                return None
            if got is None or got.message.snapshot_id != m.snapshot_id or got.message.index != i:
                log.error("a snapshot part is missing; replaying the whole log", snapshot=m.snapshot_id,
                          part=i)  # fmt: skip
                return None
            sagas.extend(got.message.sagas)
            ended.update({k: _ended(v) for k, v in got.message.ended.items()})
        return Snapshot(position=m.position, log_id=m.log_id, sagas=sagas, ended=ended, taken_ns=m.ts_init)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
