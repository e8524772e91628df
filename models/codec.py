"""The wire codec every service shares.

Messages are encoded as compact JSON by pydantic-core: it serialises and validates in Rust in one pass,
which measured fastest among the candidates on this machine (see ``paceline bench codec`` and
docs/ARCHITECTURE.md), keeps payloads readable in ``pulsar-admin`` and browsers, and needs no schema
registry. Every message carries its ``kind``, so a payload of the wrong type on a topic is rejected too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import to_json

from models.common import IDENTIFIER_PATTERN, Message, OrdType, Side
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
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    ExecutionReport,
    Fill,
    ParentOrder,
    RequestReject,
    TcaRecord,
    child_problem,
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


_HEAD = '{"kind":' + to_json(ChildOrderAction.model_fields["kind"].default).decode() + ',"action":'
_ACTION = {a: to_json(a).decode() for a in ChildAction}
_ORD_TYPE = {t: to_json(t).decode() for t in OrdType}
_ID = re.compile(IDENTIFIER_PATTERN).fullmatch
# Many ids at once, each followed by a comma: no id may hold one, so when the match holds and the commas
# are as many as the ids, each id matched the pattern whole.
_IDS = re.compile(f"(?:{IDENTIFIER_PATTERN.removeprefix('^').removesuffix('$')},)*").fullmatch
# repr and pydantic write a float the same way from here up to 1e16 (shortest round trip, no exponent).
_PX_MIN, _PX_MAX = 1e-4, 1e16


# A child as ``ChildActionEncoder.payloads`` takes it: its job (whatever gives its run of fields) and its own.
J = TypeVar("J")
ChildFields = tuple[J, ChildAction, str, int, OrdType, float | None]


class ChildActionEncoder:
    """Many ``ChildOrderAction`` payloads at once, byte for byte what ``encode`` writes for each model,
    without building and validating a model per child: the worker's hot path, where 1,000 jobs may be due
    on one tick (validating them as models took ~4 ms of the 5 ms goal; docs/PERFORMANCE.md).

    A child's fields are three runs in the model's order: its job's (ids, epoch, symbol, side), written by
    pydantic and validated as a whole child once per job (``job_part``); its tick's (timestamps and
    sequence, once per tick: ``tick_part``); and its own (action, id, quantity, order type, price), checked
    in ``payload`` against the model's own rules: the identifier pattern, sizes and prices, and
    ``child_problem``. A test decodes what it writes, validates it and re-encodes it, byte for byte."""

    LAYOUT = ("kind", "action", "child_id", "job_id", "parent_id", "worker_id", "epoch", "symbol", "side",
              "quantity", "ord_type", "limit_px", "ts_event", "ts_init", "tick_seq", "tick_ts_init",
              "tick_recv_ns")  # fmt: skip

    @staticmethod
    def job_part(*, job_id: str, parent_id: str, worker_id: str, epoch: int, symbol: str, side: Side) -> str:
        """The job's run of fields, from ``,"job_id":`` to before ``,"quantity":``; raises ValidationError
        where a child of this job could not be valid."""
        ids = {"child_id": job_id, "job_id": job_id, "parent_id": parent_id, "worker_id": worker_id}
        zero = {"quantity": 0, "ts_event": 0, "ts_init": 0}
        proto = ChildOrderAction(
            action=ChildAction.CANCEL, epoch=epoch, symbol=symbol, side=side, **ids, **zero
        )
        text = encode(proto).decode()
        return text[text.index(',"job_id":') : text.index(',"quantity":')]

    @staticmethod
    def tick_part(
        ts_event: int, ts_init: int, tick_seq: int | None, tick_ts_init: int | None, tick_recv_ns: int | None
    ) -> str:
        """The tick's run of fields, from ``"ts_event":`` to the end (every one a count, never negative).
        A count is written as JSON writes an integer: its digits (``:d`` refuses anything else)."""
        values = (ts_event, ts_init, tick_seq, tick_ts_init, tick_recv_ns)
        if any(v is not None and v < 0 for v in values) or ts_event is None or ts_init is None:
            raise ValueError(f"a child order's times and tick sequence are counts: {values}")
        names = ChildActionEncoder.LAYOUT[-5:]
        return ",".join(
            f'"{k}":null' if v is None else f'"{k}":{v:d}' for k, v in zip(names, values, strict=True)
        )

    @staticmethod
    def payload(
        action: ChildAction, child_id: str, quantity: int, ord_type: OrdType, limit_px: float | None, *,
        job_part: str, tick_part: str,
    ) -> bytes:  # fmt: skip
        """One child's payload; raises ValueError where ``ChildOrderAction`` would refuse the fields."""
        child = (job_part, action, child_id, quantity, ord_type, limit_px)
        return ChildActionEncoder.payloads((child,), tick_part, str)[0]

    @staticmethod
    def payloads(
        children: Sequence[ChildFields[J]], tick_part: str, job_part: Callable[[J], str]
    ) -> list[bytes]:
        """The payloads of a tick's children, each given as (its job, action, child id, quantity, order
        type, limit price), ``job_part`` giving a job's run of fields; raises ValueError where
        ``ChildOrderAction`` would refuse one. The checks run once per distinct (action, quantity, order
        type, price), which also writes that run of the payload once: a tick's children share a few (a
        cancel per job, and the jobs' few sizes and prices). The ids are checked in one match over them
        all. So each child costs one lookup and one string (1.4 -> 0.5 ms for 2,000 children, a tick of
        1,000 jobs replacing resting orders). The worker passes its own tuples as they are."""
        if not children:
            return []
        ids = ",".join([c[2] for c in children]) + ","
        if _IDS(ids) is None or ids.count(",") != len(children):  # which one, below
            bad = next(c[2] for c in children if _ID(c[2]) is None)
            raise ValueError(f"child {bad!r}: not a valid id")
        out: list[bytes] = []
        runs: dict[tuple[ChildAction, int, OrdType, float | None], tuple[str, str]] = {}
        for job, action, child_id, quantity, ord_type, limit_px in children:
            if (run := runs.get((action, quantity, ord_type, limit_px))) is None:
                run = runs[action, quantity, ord_type, limit_px] = ChildActionEncoder._own_run(
                    (action, child_id, quantity, ord_type, limit_px), tick_part
                )
            out.append(f'{run[0]}{child_id}"{job_part(job)}{run[1]}'.encode())
        return out

    @staticmethod
    def _own_run(
        child: tuple[ChildAction, str, int, OrdType, float | None], tick_part: str
    ) -> tuple[str, str]:
        """A child's own fields (action, id, quantity, order type, price) but its id, checked, as the text
        before its id and the text after its job's run."""
        action, child_id, quantity, ord_type, limit_px = child
        if limit_px is None:
            px = "null"
        elif _PX_MIN <= limit_px < _PX_MAX:
            px = repr(float(limit_px))
        else:
            raise ValueError(f"child {child_id}: limit_px {limit_px} out of range")
        if quantity < 0:
            raise ValueError(f"child {child_id}: a negative quantity ({quantity})")
        if (why := child_problem(action, quantity, ord_type, limit_px)) is not None:
            raise ValueError(f"child {child_id}: {why}")
        return (
            f'{_HEAD}{_ACTION[action]},"child_id":"',
            f',"quantity":{quantity:d},"ord_type":{_ORD_TYPE[ord_type]},"limit_px":{px},{tick_part}}}',
        )


if not (IDENTIFIER_PATTERN.startswith("^") and IDENTIFIER_PATTERN.endswith("$")) or _ID("A,A") is not None:
    raise ImportError("IDENTIFIER_PATTERN changed: the encoder's one match over many ids relies on its shape")
if tuple(ChildOrderAction.model_fields) != ChildActionEncoder.LAYOUT:  # the encoder follows the model's order
    raise ImportError("ChildOrderAction's fields changed: update ChildActionEncoder.LAYOUT and its runs")
