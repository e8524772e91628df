"""The persisted saga log's event."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from models.common import Identifier, Message, TimestampNs


class SagaEvent(Message):
    """One transition of a parent-order saga, appended to the log keyed by ``saga_id``.

    ``event_id`` is deterministic (saga, step, attempt) so an orchestrator that restarts and replays
    cannot append the same transition twice.
    """

    kind: Literal["saga_event"] = "saga_event"
    event_id: Identifier
    saga_id: Identifier
    seq: int = Field(ge=0)
    name: str = Field(min_length=1, max_length=64)
    epoch: int = Field(default=0, ge=0)
    data: dict[str, JsonValue] = Field(default_factory=dict)
    ts_init: TimestampNs
