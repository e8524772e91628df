"""Saga events as types: one frozen class per kind of event, named in the past tense like the wire
messages. A class's fields are the event's ``data`` in the log and its ``NAME`` the event's ``name``, so a
log written before these classes existed replays unchanged.

The generic transitions every saga has are here; a saga adds its domain's events (and may extend a generic
one with fields of its own under the same name) in its ``EVENTS`` table (``events_table``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class SagaPayload(BaseModel):
    """The data of one kind of saga event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    NAME: ClassVar[str]


class CompensationRegistered(SagaPayload):
    """Pushed on the stack *before* the step it undoes runs."""

    NAME = "compensation.registered"
    name: str


class CompensationStarted(SagaPayload):
    """The top of the stack is being undone; from here it is finished even by a successor."""

    NAME = "compensation.started"
    name: str


class CompensationCompleted(SagaPayload):
    """Popped: compensations run in reverse registration order."""

    NAME = "compensation.completed"
    name: str


class TimerSet(SagaPayload):
    NAME = "timer.set"
    name: str
    clock: str
    deadline_ns: int = Field(ge=0)


class TimerCleared(SagaPayload):
    NAME = "timer.cleared"
    name: str


class SagaCompleted(SagaPayload):
    """Terminal: the saga refuses any later event."""

    NAME = "saga.completed"
    status: str


GENERIC: tuple[type[SagaPayload], ...] = (
    CompensationRegistered, CompensationStarted, CompensationCompleted, TimerSet, TimerCleared, SagaCompleted,
)  # fmt: skip


def events_table(*domain: type[SagaPayload]) -> dict[str, type[SagaPayload]]:
    """Event name -> class: the generic ones, then the domain's (a domain class named like a generic one
    replaces it, and must extend it)."""
    table = {c.NAME: c for c in GENERIC}
    for c in domain:
        if c.NAME in table and not issubclass(c, table[c.NAME]):
            raise TypeError(f"{c.__name__} replaces {table[c.NAME].__name__} without extending it")
        if c.NAME in table and table[c.NAME] not in GENERIC:
            raise TypeError(f"two classes for the event {c.NAME!r}")
        table[c.NAME] = c
    return table
