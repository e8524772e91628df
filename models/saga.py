"""The persisted saga log's event."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, JsonValue

from models.common import Identifier, Message, TimestampNs

# A message's or an event's JSON form, as ``model_dump(mode="json")`` writes it (``saga.core``: ``emit`` and
# ``effect``) or as JSON decoding reads it: JSON either way, so its values are not checked one by one.
# pydantic's ``JsonValue`` does that in Python, ~5 µs for a parent order's form, on every new order's path.
JsonForm = dict[str, Any]


class Effect(Message):
    """A message the orchestrator publishes because of an event (a transactional outbox entry).

    Stored in the event itself, so a successor that replays the log can finish publishing what its
    predecessor decided but may not have sent; the broker's de-duplication drops what was sent.
    """

    kind: Literal["effect"] = "effect"
    topic: str = Field(min_length=1, max_length=256)
    key: str | None = Field(default=None, max_length=128)
    message: JsonForm


class SagaEvent(Message):
    """One transition of a parent-order saga, appended to the log keyed by ``saga_id``.

    ``event_id`` is deterministic (saga id and its per-saga ``seq``) so an orchestrator that restarts and
    replays cannot append the same transition twice; ``position`` is the event's place in the whole log
    (the log producer's sequence id, so the broker drops a re-appended one).
    """

    kind: Literal["saga_event"] = "saga_event"
    event_id: Identifier
    saga_id: Identifier
    seq: int = Field(ge=0)
    position: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=64)
    epoch: int = Field(default=0, ge=0)
    data: JsonForm = Field(default_factory=dict)
    effects: tuple[Effect, ...] = ()
    ts_init: TimestampNs


class SagaSnapshotPart(Message):
    """Part of a snapshot of the orchestrator (``saga.snapshot``): running sagas' states and ended sagas'
    records, as the saga classes dump them."""

    kind: Literal["saga_snapshot_part"] = "saga_snapshot_part"
    snapshot_id: str = Field(min_length=1, max_length=128)
    index: int = Field(ge=0)
    sagas: tuple[dict[str, JsonValue], ...] = ()
    ended: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)


class SagaSnapshot(Message):
    """A snapshot's manifest, written after its parts: the log position it includes, that log entry's id
    (a message id as text) and its parts' ids, in order."""

    kind: Literal["saga_snapshot"] = "saga_snapshot"
    snapshot_id: str = Field(min_length=1, max_length=128)
    position: int = Field(ge=0)
    log_id: str = Field(min_length=1, max_length=256)
    parts: tuple[str, ...]
    live: int = Field(ge=0)
    ended: int = Field(ge=0)
    ts_init: TimestampNs
