"""Saga orchestration: event-sourced sagas with compensations and timers, a persisted log on Pulsar whose
exclusive producer is the orchestrator's lease, and an outbox that publishes each decision exactly once."""

from saga.core import WALL, Context, Saga, SagaError, Timer, effect, effect_message
from saga.log import LeaseLostError, MemoryLog, PulsarLog, SagaLog
from saga.orchestrator import Orchestrator
from saga.outbox import MemoryOutbox, Outbox, PulsarOutbox

__all__ = [
    "WALL",
    "Context",
    "LeaseLostError",
    "MemoryLog",
    "MemoryOutbox",
    "Orchestrator",
    "Outbox",
    "PulsarLog",
    "PulsarOutbox",
    "Saga",
    "SagaError",
    "SagaLog",
    "Timer",
    "effect",
    "effect_message",
]
