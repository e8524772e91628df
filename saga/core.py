"""Sagas as event-sourced state machines with a compensation stack and first-class timers.

A saga changes state only by applying ``SagaEvent``s (``Saga.apply``), so replaying its log rebuilds it
exactly. Handlers decide through a ``Context``: every ``ctx.emit`` builds the next event, applies it at
once (later decisions in the same handler see the new state) and queues it for the log; the orchestrator
appends the queue and only then publishes the events' effects (the outbox).

Generic transitions the base class keeps (domain events go to ``on_event``):

- ``compensation.registered`` {name}: pushed on the stack *before* the step it undoes runs;
- ``compensation.started`` {name}: the top of the stack is being undone; from here it cannot be dropped
  half-way: a restarted orchestrator sees it running and finishes it;
- ``compensation.completed`` {name}: popped. Compensations therefore run in reverse registration order;
- ``timer.set`` {name, clock, deadline_ns} / ``timer.cleared`` {name}; a fired timer is cleared first;
- ``saga.completed`` {status}: terminal; the base class refuses any later event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from models import Effect, Message, SagaEvent, codec, now_ns

WALL = "wall"  # the machine's clock (liveness, retries); market clocks are "market:<SYMBOL>"

REGISTERED = "compensation.registered"
STARTED = "compensation.started"
COMPLETED = "compensation.completed"
TIMER_SET = "timer.set"
TIMER_CLEARED = "timer.cleared"
DONE = "saga.completed"


class SagaError(RuntimeError):
    """A transition that the saga's rules forbid (an event after the end, a gap in the sequence)."""


@dataclass(frozen=True, slots=True)
class Timer:
    name: str
    clock: str
    deadline_ns: int


def effect(topic: str, message: Message, key: str | None = None) -> Effect:
    """An outbox entry for ``message`` (stored as its JSON form inside the event)."""
    data: dict[str, JsonValue] = message.model_dump(mode="json")
    return Effect(topic=topic, key=key, message=data)


def effect_message(e: Effect) -> Message:
    """An outbox entry's message, validated like any message off the wire."""
    return codec.from_data(e.message)


@dataclass
class Saga:
    """Base class: sequence, compensation stack, timers, terminal state. Subclasses hold the domain."""

    saga_id: str
    seq: int = 0
    terminal: bool = False
    status: str = "new"
    stack: list[str] = field(default_factory=list)
    running: str | None = None  # the compensation being undone now, if any
    timers: dict[str, Timer] = field(default_factory=dict)

    def apply(self, ev: SagaEvent) -> bool:
        """Apply one event; False for one already applied (a replayed duplicate)."""
        if ev.seq < self.seq:
            return False
        if ev.seq > self.seq:
            raise SagaError(f"{self.saga_id}: event seq {ev.seq} after {self.seq - 1}: the log has a gap")
        if self.terminal:
            raise SagaError(f"{self.saga_id}: {ev.name!r} after the saga completed ({self.status})")
        d = ev.data
        name = ev.name
        if name == REGISTERED:
            self.stack.append(str(d["name"]))
        elif name == STARTED:
            if not self.stack or self.stack[-1] != d["name"]:
                raise SagaError(f"{self.saga_id}: compensation {d['name']!r} is not the top of {self.stack}")
            self.running = str(d["name"])
        elif name == COMPLETED:
            if self.running != d["name"]:
                raise SagaError(f"{self.saga_id}: compensation {d['name']!r} completed but not started")
            self.stack.pop()
            self.running = None
        elif name == TIMER_SET:
            deadline = d["deadline_ns"]
            assert isinstance(deadline, int)
            self.timers[str(d["name"])] = Timer(str(d["name"]), str(d["clock"]), deadline)
        elif name == TIMER_CLEARED:
            self.timers.pop(str(d["name"]), None)
        elif name == DONE:
            self.terminal = True
            self.status = str(d["status"])
            self.timers.clear()
        self.on_event(ev)
        self.seq += 1
        return True

    def on_event(self, ev: SagaEvent) -> None:
        """Domain state changes for ``ev`` (generic events pass through here too)."""


@dataclass
class Context:
    """A handler's view of one saga: emits events (applied at once) for the orchestrator to append."""

    saga: Saga
    next_position: int
    events: list[SagaEvent] = field(default_factory=list)
    epoch: int = 0

    def emit(
        self, name: str, data: dict[str, Any] | None = None, effects: tuple[Effect, ...] = ()
    ) -> SagaEvent:
        s = self.saga
        ev = SagaEvent(
            event_id=f"{s.saga_id}.{s.seq}",
            saga_id=s.saga_id,
            seq=s.seq,
            position=self.next_position + len(self.events),
            name=name,
            epoch=self.epoch,
            data=data or {},
            effects=effects,
            ts_init=now_ns(),
        )
        s.apply(ev)
        self.events.append(ev)
        return ev

    # --- the generic transitions -------------------------------------------------------------------------
    def register(self, compensation: str) -> None:
        """Register the compensation for the step about to run (so a crash mid-step still undoes it)."""
        self.emit(REGISTERED, {"name": compensation})

    def start_compensation(self, effects: tuple[Effect, ...] = (), data: dict[str, Any] | None = None) -> str:
        """Start undoing the top of the stack (with the effects that undo it); returns its name."""
        name = self.saga.stack[-1]
        self.emit(STARTED, {**(data or {}), "name": name}, effects)
        return name

    def complete_compensation(
        self, effects: tuple[Effect, ...] = (), data: dict[str, Any] | None = None
    ) -> None:
        assert self.saga.running is not None
        self.emit(COMPLETED, {**(data or {}), "name": self.saga.running}, effects)

    def set_timer(self, name: str, clock: str, deadline_ns: int) -> None:
        self.emit(TIMER_SET, {"name": name, "clock": clock, "deadline_ns": deadline_ns})

    def clear_timer(self, name: str) -> None:
        if name in self.saga.timers:
            self.emit(TIMER_CLEARED, {"name": name})

    def complete(self, status: str, effects: tuple[Effect, ...] = ()) -> None:
        self.emit(DONE, {"status": status}, effects)
