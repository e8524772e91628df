"""Publishing the effects of appended events exactly once, across orchestrator failover.

Every effect gets a sequence id from its event's log position (``position * 64 + index``), sent in log
order by a producer with a fixed name per topic. The broker stores the highest sequence id per producer
name, so a successor that replays the log asks each producer for it and re-sends only the effects
beyond: what its predecessor decided and did not publish, and nothing it did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from models import Effect, SagaEvent
from runtime.bus import Bus, BusError, Producer, stream_of
from saga.core import effect_message
from saga.log import LeaseLostError

MAX_EFFECTS = 64  # per event


def sequence_of(ev: SagaEvent, index: int) -> int:
    return ev.position * MAX_EFFECTS + index


def _effects(events: Iterable[SagaEvent]) -> Iterable[tuple[int, Effect]]:
    for ev in events:
        if len(ev.effects) > MAX_EFFECTS:
            raise ValueError(f"{ev.event_id}: more than {MAX_EFFECTS} effects")
        for i, e in enumerate(ev.effects):
            yield sequence_of(ev, i), e


class Outbox(Protocol):
    def publish(self, events: Sequence[SagaEvent]) -> None: ...

    def resume(self, events: Sequence[SagaEvent]) -> int: ...

    def failure(self) -> str | None:
        """Why an earlier publish did not reach the broker (None: every one did, or is on its way)."""
        ...

    def flush(self) -> None:
        """Wait until the broker has stored every effect published so far."""
        ...


class MemoryOutbox:
    """Records what was published, de-duplicating by (topic, sequence id) like the broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Effect]] = []
        self.last: dict[str, int] = {}

    def publish(self, events: Sequence[SagaEvent]) -> None:
        for seq, e in _effects(events):
            if seq > self.last.get(e.topic, -1):
                self.last[e.topic] = seq
                self.sent.append((e.topic, e))

    def resume(self, events: Sequence[SagaEvent]) -> int:
        before = len(self.sent)
        self.publish(events)
        return len(self.sent) - before

    def failure(self) -> str | None:
        return None

    def flush(self) -> None:
        """Every publish is stored when it returns."""


class PulsarOutbox:
    def __init__(self, bus: Bus, prefix: str = "paceline-saga", *, fence: bool = False) -> None:
        """``fence``: each output's producer is exclusive and takes the topic from any holder (a leader that
        went silent), whose next send is refused."""
        self.bus = bus
        self.prefix = prefix
        self.fence = fence
        self._producers: dict[str, Producer] = {}
        self._failure: str | None = None

    def _producer(self, topic: str) -> Producer:
        p = self._producers.get(topic)
        if p is None:
            p = self.bus.producer(topic, name=f"{self.prefix}.{stream_of(topic)}", fence=self.fence)
            self._producers[topic] = p
        return p

    def _send(self, seq: int, e: Effect) -> None:
        try:
            self._producer(e.topic).send(effect_message(e), key=e.key, sequence_id=seq)
        except BusError as exc:
            raise LeaseLostError(f"publishing to {e.topic} failed: {exc}") from exc

    def publish(self, events: Sequence[SagaEvent]) -> None:
        """Publish in log order without waiting for the broker: the events are committed already (the log
        holds them), so a send that fails loses nothing, as the successor re-sends what the broker lacks
        (``resume``). Waiting here would hold the next input behind a second persistent write. A failure
        is kept: the next publish, and ``failure``, report it and the orchestrator steps down."""
        if self._failure is not None:
            raise LeaseLostError(self._failure)
        try:
            for seq, e in _effects(events):
                self._producer(e.topic).send_async(effect_message(e), key=e.key, sequence_id=seq,
                                                   on_done=self._done)  # fmt: skip
        except Exception as exc:
            self._failure = self._failure or f"publishing effects failed: {exc}"
            raise LeaseLostError(self._failure) from exc

    def _done(self, err: Exception | None, _latency: float) -> None:
        if err is not None and self._failure is None:
            self._failure = f"publishing effects failed: {err}"

    def failure(self) -> str | None:
        return self._failure

    def flush(self) -> None:
        """Wait until the broker has stored every effect sent so far."""
        for p in self._producers.values():
            p.flush()

    def resume(self, events: Sequence[SagaEvent]) -> int:
        """Send what the log holds beyond each producer's last stored sequence id; returns how many."""
        sent = 0
        for seq, e in _effects(events):
            if seq > self._producer(e.topic).last_sequence_id:
                self._send(seq, e)
                sent += 1
        return sent

    def close(self) -> None:
        with contextlib.suppress(Exception):  # what is in flight goes out first, if the broker is there
            self.flush()
        for p in self._producers.values():
            p.close()
        self._producers.clear()
