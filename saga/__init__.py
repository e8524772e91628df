"""Saga orchestration: event-sourced sagas with compensations and timers, a persisted log on Pulsar whose
exclusive producer is the orchestrator's lease, and an outbox that publishes each decision exactly once."""

from saga.core import WALL, Context, Saga, SagaError, Timer, effect, effect_message
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
from saga.log import LeaseLostError, MemoryLog, PulsarLog, SagaLog
from saga.orchestrator import Orchestrator
from saga.outbox import MemoryOutbox, Outbox, PulsarOutbox
from saga.snapshot import Ended, MemorySnapshots, PulsarSnapshots, Snapshot, SnapshotStore

__all__ = [
    "WALL",
    "CompensationCompleted",
    "CompensationRegistered",
    "CompensationStarted",
    "Context",
    "Ended",
    "LeaseLostError",
    "MemoryLog",
    "MemoryOutbox",
    "MemorySnapshots",
    "Orchestrator",
    "Outbox",
    "PulsarLog",
    "PulsarOutbox",
    "PulsarSnapshots",
    "Saga",
    "SagaCompleted",
    "SagaError",
    "SagaLog",
    "SagaPayload",
    "Snapshot",
    "SnapshotStore",
    "Timer",
    "TimerCleared",
    "TimerSet",
    "effect",
    "effect_message",
    "events_table",
]
