"""The wire codec every service shares.

Messages are encoded as compact JSON by pydantic-core: it serialises and validates in Rust in one pass,
which measured fastest among the candidates on this machine (see ``paceline bench codec`` and
docs/ARCHITECTURE.md), keeps payloads readable in ``pulsar-admin`` and browsers, and needs no schema
registry. Every message carries its ``kind``, so a payload of the wrong type on a topic is rejected too.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from models.common import Message
from models.jobs import (
    AmendRequest,
    CancelRequest,
    JobAssignment,
    JobRequest,
    LeaderBeat,
    RiskControl,
    VenueCommand,
    VenueCommandAck,
    WorkerHeartbeat,
)
from models.market import Tick
from models.orders import (
    ChildOrderAck,
    ChildOrderAction,
    ExecutionReport,
    Fill,
    ParentOrder,
    RequestReject,
    TcaRecord,
)
from models.saga import SagaEvent, SagaSnapshot, SagaSnapshotPart

M = TypeVar("M", bound=Message)

MAX_PAYLOAD_BYTES = 1 << 20  # far above any real message; bigger payloads are rejected before parsing

AnyMessage = Annotated[
    Tick
    | ParentOrder
    | ChildOrderAction
    | ChildOrderAck
    | Fill
    | ExecutionReport
    | TcaRecord
    | JobRequest
    | JobAssignment
    | WorkerHeartbeat
    | LeaderBeat
    | CancelRequest
    | AmendRequest
    | RequestReject
    | RiskControl
    | VenueCommand
    | VenueCommandAck
    | SagaEvent
    | SagaSnapshot
    | SagaSnapshotPart,
    Field(discriminator="kind"),
]
_ANY: TypeAdapter[Any] = TypeAdapter(AnyMessage)


class DecodeError(ValueError):
    """A payload that is not a valid message of the expected type. ``reason`` is short and countable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def encode(message: Message) -> bytes:
    return message.__pydantic_serializer__.to_json(message)


def _check_size(data: bytes) -> None:
    if not data:
        raise DecodeError("empty")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError("too_large", f"{len(data)} bytes")


def _explain(exc: ValidationError) -> DecodeError:
    first = exc.errors(include_url=False)[0]
    if first["type"] in ("json_invalid", "json_type"):
        return DecodeError("malformed", first["msg"])
    if first["type"] == "literal_error" and first["loc"][:1] == ("kind",):
        return DecodeError("wrong_type", first["msg"])
    loc = ".".join(str(p) for p in first["loc"])
    return DecodeError("invalid", f"{loc}: {first['msg']}")


def decode(data: bytes, model: type[M]) -> M:
    """Decode one message of ``model``'s type, or raise DecodeError."""
    _check_size(data)
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _explain(exc) from None


def decode_any(data: bytes) -> Message:
    """Decode a message of any known kind (for tools that read mixed topics), or raise DecodeError."""
    _check_size(data)
    try:
        result: Message = _ANY.validate_json(data)
    except ValidationError as exc:
        raise _explain(exc) from None
    return result


def from_data(data: object) -> Message:
    """Validate a message of any known kind from its JSON-compatible Python form (an outbox entry)."""
    try:
        result: Message = _ANY.validate_python(data)
    except ValidationError as exc:
        raise _explain(exc) from None
    return result
