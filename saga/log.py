"""The saga log: an append-only sequence of ``SagaEvent``s with one writer at a time.

``PulsarLog`` keeps it on a persistent topic with infinite retention. Holding the topic's *exclusive*
producer is the orchestrator's lease: the broker grants it to one process and fails everyone else at
once; it is released when the holder's connection closes, so a standby takes over a killed orchestrator
within a poll. A holder that hangs (its connection stays open) is fenced out: ``try_acquire(fence=True)``.
The producer's name is fixed and its sequence id is the event's log position, so an event appended twice
(a retry after a timeout) is stored once by the broker's de-duplication. ``MemoryLog`` is the same
contract in memory, for fast tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from models import SagaEvent, topics
from runtime.bus import Bus, BusError, Producer, ProducerBusyError


class LeaseLostError(RuntimeError):
    """This orchestrator can no longer append (fenced out, or the broker refused): it must step down."""


class SagaLog(Protocol):
    def replay(self) -> list[SagaEvent]: ...

    def append(self, events: Sequence[SagaEvent]) -> None: ...


class MemoryLog:
    def __init__(self) -> None:
        self.events: list[SagaEvent] = []
        self.fenced = False

    def replay(self) -> list[SagaEvent]:
        return list(self.events)

    def append(self, events: Sequence[SagaEvent]) -> None:
        for ev in events:
            if self.fenced:
                raise LeaseLostError("fenced")
            last = self.events[-1].position if self.events else 0
            if ev.position <= last:
                continue  # what the broker's de-duplication does with a re-appended sequence id
            self.events.append(ev)


class PulsarLog:
    def __init__(self, bus: Bus, topic: str = topics.SAGA_LOG, name: str = "paceline-saga-log") -> None:
        self.bus = bus
        self.topic = topic
        self.name = name
        self._producer: Producer | None = None

    @property
    def held(self) -> bool:
        return self._producer is not None

    def try_acquire(self, fence: bool = False) -> bool:
        """Take the lease if nobody holds it; False if another orchestrator does. ``fence``: take it from
        a holder that went silent (the broker fences it: its next append is refused, and it steps down)."""
        try:
            self._producer = self.bus.producer(self.topic, name=self.name, exclusive=True, fence=fence)
        except ProducerBusyError:
            return False
        return True

    def acquire(self, stop: threading.Event, poll_s: float = 0.1) -> bool:
        """Wait for the lease; False if ``stop`` was set first."""
        while not stop.is_set():
            try:
                if self.try_acquire():
                    return True
            except BusError:
                pass  # the broker is away: keep trying until it is back
            stop.wait(poll_s)
        return False

    def replay(self) -> list[SagaEvent]:
        return [d.message for d in self.bus.read_all(self.topic, SagaEvent)]

    def append(self, events: Sequence[SagaEvent]) -> None:
        """Append in order and return once the broker has stored them all (pipelined: one round trip)."""
        if self._producer is None:
            raise LeaseLostError("the lease is not held")
        errors: list[Exception] = []
        try:
            for ev in events:
                self._producer.send_async(
                    ev, key=ev.saga_id, sequence_id=ev.position, event_time_ns=ev.ts_init,
                    on_done=lambda err, _lat: errors.append(err) if err else None,
                )  # fmt: skip
            self._producer.flush()  # waits for every pending send's receipt
        except BusError as exc:
            errors.append(exc)
        except Exception as exc:  # the client raises its own types from flush()
            errors.append(BusError(str(exc)))
        if errors:
            self.release()
            raise LeaseLostError(str(errors[0]))

    def release(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
