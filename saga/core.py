"""Sagas as event-sourced state machines with a compensation stack and first-class timers.

A saga changes state only by applying ``SagaEvent``s (``Saga.apply``), so replaying its log rebuilds it
exactly. Each event's data is one of the saga's event classes (``saga.events``; the class table is the
saga's ``EVENTS``). Handlers decide through a ``Context``: every ``ctx.emit(event)`` builds the next log
entry, applies it at once (later decisions in the same handler see the new state) and queues it for the
log; the orchestrator appends the queue and only then publishes the events' effects (the outbox).

The generic transitions the base class keeps (the domain's events go to ``on_event``, and so do these):
``CompensationRegistered`` (pushed before the step it undoes runs), ``CompensationStarted`` (from here a
successor finishes it), ``CompensationCompleted`` (popped: reverse registration order), ``TimerSet`` /
``TimerCleared`` (a fired timer is cleared first), ``SagaCompleted`` (terminal: no later event).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar, Generic, Self, TypeVar

from pydantic import JsonValue, ValidationError
from pydantic_core import to_json

from models import Effect, ExecType, ExecutionReport, Message, SagaEvent, codec, now_ns, topics
from saga.events import (
    CompensationCompleted,
    CompensationRegistered,
    CompensationStarted,
    SagaCompleted,
    SagaPayload,
    TimerCleared,
    TimerSet,
    events_table,
)

WALL = "wall"  # the machine's clock (liveness, retries); market clocks are "market:<SYMBOL>"


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


def client_reports(event: SagaEvent, exec_type: ExecType | None = None) -> list[ExecutionReport]:
    """The client execution reports a logged event commits (what its outbox will publish on the reports
    topic): whoever reads the log has them one persistent write and one dispatch sooner. ``exec_type``:
    only those of that type (the others are not decoded)."""
    out = []
    for e in event.effects:
        if e.topic != topics.REPORTS or (exec_type is not None and e.message.get("exec_type") != exec_type):
            continue
        if isinstance(m := effect_message(e), ExecutionReport):
            out.append(m)
    return out


# The reports topic as an encoded event writes it: an effect for that topic names it in the payload.
_REPORTS_MARK = to_json(topics.REPORTS)


def may_carry_reports(payload: bytes) -> bool:
    """Whether an encoded saga event can hold client reports (``client_reports``), from its bytes: a reader
    of the whole log decodes only those (3 of a cancelled parent's 22 events; a decode is ~4 µs)."""
    return _REPORTS_MARK in payload


@dataclass
class Saga:
    """Base class: sequence, compensation stack, timers, terminal state. Subclasses hold the domain and
    name its events in ``EVENTS``."""

    EVENTS: ClassVar[dict[str, type[SagaPayload]]] = events_table()

    saga_id: str
    seq: int = 0
    terminal: bool = False
    status: str = "new"
    stack: list[str] = field(default_factory=list)
    running: str | None = None  # the compensation being undone now, if any
    timers: dict[str, Timer] = field(default_factory=dict)

    @classmethod
    def decode(cls, ev: SagaEvent) -> SagaPayload:
        """The event's data as its class (raises SagaError for a kind or shape this saga does not know)."""
        kind = cls.EVENTS.get(ev.name)
        if kind is None:
            raise SagaError(f"{ev.saga_id}: unknown event {ev.name!r}")
        try:
            return kind.model_validate(ev.data)
        except ValidationError as exc:
            raise SagaError(f"{ev.saga_id}: event {ev.name!r} with bad data: {exc}") from exc

    def apply(self, ev: SagaEvent, event: SagaPayload | None = None) -> bool:
        """Apply one log entry (``event``: its data already decoded); False for one already applied (a
        replayed duplicate)."""
        if ev.seq < self.seq:
            return False
        if ev.seq > self.seq:
            raise SagaError(f"{self.saga_id}: event seq {ev.seq} after {self.seq - 1}: the log has a gap")
        if self.terminal:
            raise SagaError(f"{self.saga_id}: {ev.name!r} after the saga completed ({self.status})")
        e = event if event is not None else self.decode(ev)
        if isinstance(e, CompensationRegistered):
            self.stack.append(e.name)
        elif isinstance(e, CompensationStarted):
            if not self.stack or self.stack[-1] != e.name:
                raise SagaError(f"{self.saga_id}: compensation {e.name!r} is not the top of {self.stack}")
            self.running = e.name
        elif isinstance(e, CompensationCompleted):
            if self.running != e.name:
                raise SagaError(f"{self.saga_id}: compensation {e.name!r} completed but not started")
            self.stack.pop()
            self.running = None
        elif isinstance(e, TimerSet):
            self.timers[e.name] = Timer(e.name, e.clock, e.deadline_ns)
        elif isinstance(e, TimerCleared):
            self.timers.pop(e.name, None)
        elif isinstance(e, SagaCompleted):
            self.terminal = True
            self.status = e.status
            self.timers.clear()
        self.on_event(e)
        self.seq += 1
        return True

    def on_event(self, event: SagaPayload) -> None:
        """Domain state changes for ``event`` (generic events pass through here too)."""

    def ended_facts(self) -> dict[str, str]:
        """What the domain needs to answer for this saga once it has ended and left memory."""
        return {}

    def copy(self) -> Self:
        """A copy to restore if a transaction fails. The containers are copied, not their items: state
        changes only by replacing immutable values (frozen messages and timers, strings, numbers), so a
        deep copy would buy nothing and cost a walk over every fill id the saga has seen."""
        c = copy.copy(self)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list | dict | set):
                setattr(c, f.name, v.copy())
        return c


S = TypeVar("S", bound=Saga)


@dataclass
class Context(Generic[S]):
    """A handler's view of one saga: emits events (applied at once) for the orchestrator to append."""

    saga: S
    next_position: int
    events: list[SagaEvent] = field(default_factory=list)
    epoch: int = 0
    on_emit: Callable[[SagaEvent], None] | None = None  # ``Orchestrator.on_decided``

    def emit(self, event: SagaPayload, effects: tuple[Effect, ...] = ()) -> SagaEvent:
        s = self.saga
        if type(s).EVENTS.get(event.NAME) is not type(event):
            raise SagaError(f"{s.saga_id}: {type(event).__name__} is not an event of {type(s).__name__}")
        ev = SagaEvent(
            event_id=f"{s.saga_id}.{s.seq}",
            saga_id=s.saga_id,
            seq=s.seq,
            position=self.next_position + len(self.events),
            name=event.NAME,
            epoch=self.epoch,
            data=event.model_dump(mode="json"),
            effects=effects,
            ts_init=now_ns(),
        )
        s.apply(ev, event)
        self.events.append(ev)
        if self.on_emit is not None:
            self.on_emit(ev)
        return ev

    def _generic(self, base: type[SagaPayload], **fields: JsonValue) -> SagaPayload:
        """The saga's class for a generic event (its own extension, if it has one)."""
        return type(self.saga).EVENTS[base.NAME].model_validate(fields)

    # --- the generic transitions -------------------------------------------------------------------------
    def register(self, compensation: str) -> None:
        """Register the compensation for the step about to run (so a crash mid-step still undoes it)."""
        self.emit(self._generic(CompensationRegistered, name=compensation))

    def start_compensation(
        self, effects: tuple[Effect, ...] = (), event: CompensationStarted | None = None
    ) -> str:
        """Start undoing the top of the stack (with the effects that undo it); returns its name.
        ``event``: the saga's own extension of the event, with the details of this undo."""
        name = self.saga.stack[-1]
        if event is not None and event.name != name:
            raise SagaError(f"{self.saga.saga_id}: starting {event.name!r} but the top is {name!r}")
        self.emit(event or self._generic(CompensationStarted, name=name), effects)
        return name

    def complete_compensation(
        self, effects: tuple[Effect, ...] = (), event: CompensationCompleted | None = None
    ) -> None:
        name = self.saga.running
        assert name is not None
        if event is not None and event.name != name:
            raise SagaError(f"{self.saga.saga_id}: completing {event.name!r} but {name!r} runs")
        self.emit(event or self._generic(CompensationCompleted, name=name), effects)

    def set_timer(self, name: str, clock: str, deadline_ns: int) -> None:
        self.emit(self._generic(TimerSet, name=name, clock=clock, deadline_ns=deadline_ns))

    def clear_timer(self, name: str) -> None:
        if name in self.saga.timers:
            self.emit(self._generic(TimerCleared, name=name))

    def complete(self, status: str, effects: tuple[Effect, ...] = ()) -> None:
        self.emit(self._generic(SagaCompleted, status=status), effects)
