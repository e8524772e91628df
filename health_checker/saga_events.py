"""The parent-order saga's events, one class each, past tense; ``NAME`` is the name in the log (kept as
the log has always had it, so older logs replay)."""

from __future__ import annotations

from pydantic import Field

from models import AmendRequest, ParentOrder, VenueCommand
from saga import CompensationCompleted, CompensationStarted, SagaPayload, events_table


class Accepted(SagaPayload):
    NAME = "accepted"
    parent: ParentOrder
    job_id: str


class Rejected(SagaPayload):
    """Refused at the start (the client's Rejected report is the completion's effect)."""

    NAME = "rejected"
    parent: ParentOrder
    job_id: str
    reason: str


class Reported(SagaPayload):
    """A report (and whatever goes with it) was decided: its effects carry it."""

    NAME = "reported"


class VenueOpened(SagaPayload):
    NAME = "venue_opened"
    epoch: int = Field(ge=1)


class WaitingForWorker(SagaPayload):
    NAME = "waiting"
    policy: str


class Assigned(SagaPayload):
    NAME = "assigned"
    worker_id: str
    epoch: int = Field(ge=1)
    quantity: int = Field(ge=0)
    grid: float | None = Field(default=None, ge=0.0, lt=1.0)  # ``JobAssignment.grid`` (None in older logs)


class Filled(SagaPayload):
    """A fill counted once; ``over``: beyond the parent's quantity (recorded, never reported as normal)."""

    NAME = "fill"
    fill_id: str
    child_id: str
    qty: int = Field(gt=0)
    px: float
    over: bool = False


class WorkerLost(SagaPayload):
    NAME = "worker_lost"
    worker_id: str
    silent_ms: int = Field(ge=0)


class UnwindStarted(SagaPayload):
    """The compensations start for ``reason`` (a final one, or an interruption: a lost worker, an amend)."""

    NAME = "unwinding"
    reason: str


class Resumed(SagaPayload):
    """After an interruption's fence: working again under the new epoch."""

    NAME = "resumed"
    epoch: int = Field(ge=1)
    remaining: int = Field(ge=0)


class VenueCommandResent(SagaPayload):
    NAME = "venue_retry"
    command_id: str


class CancelRequested(SagaPayload):
    NAME = "cancel_requested"
    cl_ord_id: str | None = None


class CancelRefused(SagaPayload):
    NAME = "cancel_rejected"
    cl_ord_id: str


class AmendRequested(SagaPayload):
    NAME = "amend_requested"
    amend: AmendRequest


class AmendRefused(SagaPayload):
    """Refused when asked (closing, one pending already, below what is filled, invalid)."""

    NAME = "amend_refused"
    cl_ord_id: str
    reason: str


class AmendRefusedAfterFence(SagaPayload):
    """Refused once the fence had fixed the filled quantity (more filled meanwhile than the new size)."""

    NAME = "amend_rejected"
    reason: str


class Amended(SagaPayload):
    NAME = "amended"
    parent: ParentOrder


class ParentCompensationStarted(CompensationStarted):
    """``compensation.started``; for the venue job, with the FENCE or CLOSE command awaiting its ack."""

    command: VenueCommand | None = None


class ParentCompensationCompleted(CompensationCompleted):
    """``compensation.completed``; for the venue job, with what the venue confirmed."""

    filled: int | None = None
    canceled: tuple[str, ...] = ()


EVENTS = events_table(
    Accepted, Rejected, Reported, VenueOpened, WaitingForWorker, Assigned, Filled, WorkerLost, UnwindStarted,
    Resumed, VenueCommandResent, CancelRequested, CancelRefused, AmendRequested, AmendRefused,
    AmendRefusedAfterFence, Amended, ParentCompensationStarted, ParentCompensationCompleted,
)  # fmt: skip
