"""Control-plane messages: jobs, their fenced assignments, and worker heartbeats."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from models.common import Identifier, Message, Quantity, Side, Size, Symbol, TimestampNs
from models.orders import ParentOrder


class JobRequest(Message):
    """Ask the health-checker to work (part of) a parent order."""

    kind: Literal["job_request"] = "job_request"
    job_id: Identifier
    parent: ParentOrder
    ts_init: TimestampNs
    # Wall clock, for the acknowledgement's trace (``AckTrace``): the client's message reached the endpoint,
    # and the endpoint published this request.
    recv_ns: TimestampNs | None = None
    sent_ns: TimestampNs | None = None


class JobAssignment(Message):
    """The health-checker gives a job to a worker under an epoch.

    Every reassignment raises the epoch; the endpoint refuses child orders whose epoch is older than the
    job's current one, so a worker that was only cut off (a zombie) cannot trade.
    """

    kind: Literal["job_assignment"] = "job_assignment"
    job_id: Identifier
    worker_id: Identifier
    epoch: int = Field(ge=1)
    parent: ParentOrder
    quantity: Quantity  # what remains to be worked under this epoch
    revoked: bool = False  # True tells the worker to stop working the job at this epoch
    ts_init: TimestampNs
    # Where in the decision interval the job decides after its first decision (a fraction of it), placed by
    # the health-checker among every live job's and kept for the job's life (``models.grid``); None: the
    # worker places it among its own jobs.
    grid: float | None = Field(default=None, ge=0.0, lt=1.0)


class LeaderBeat(Message):
    """The leading health-checker is alive and deciding (sent from its decision loop): a standby that
    hears none for a while takes the lease by fencing the silent leader out at the broker."""

    kind: Literal["leader_beat"] = "leader_beat"
    name: Identifier
    seq: int = Field(ge=0)
    interval_ms: int = Field(gt=0)
    ts_init: TimestampNs


class JobRef(Message):
    kind: Literal["job_ref"] = "job_ref"
    job_id: Identifier
    epoch: int = Field(ge=1)
    # How far behind the TWAP schedule the job's policy may fall (a fraction of its quantity; None: no
    # band): the live page draws it under the schedule.
    band: float | None = Field(default=None, gt=0.0, le=1.0)


class WorkerHeartbeat(Message):
    """A worker's liveness and capacity. ``incarnation`` changes on every process start."""

    kind: Literal["worker_heartbeat"] = "worker_heartbeat"
    worker_id: Identifier
    incarnation: Identifier
    seq: int = Field(ge=0)
    capacity: int = Field(ge=0)
    policies: tuple[Identifier, ...] = ()
    jobs: tuple[JobRef, ...] = ()
    ts_init: TimestampNs


class CancelRequest(Message):
    """A client asks to stop working a parent order (FIX 35=F); the saga cancels what rests and closes it."""

    kind: Literal["cancel_request"] = "cancel_request"
    request_id: Identifier
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str | None = Field(default=None, max_length=64)  # the cancel request's own ClOrdID
    ts_init: TimestampNs


class AmendRequest(Message):
    """A client changes a working parent (FIX 35=G): quantity, limit price, end time. The saga fences the
    job, applies the change if the filled quantity allows it, and resumes under a new epoch."""

    kind: Literal["amend_request"] = "amend_request"
    request_id: Identifier
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str = Field(min_length=1, max_length=64)  # the replacement's ClOrdID
    quantity: Quantity
    limit_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    end_ns: TimestampNs | None = None
    ts_init: TimestampNs


class KillState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce the position
    HALTED = "HALTED"  # nothing new; working child orders are refused too


class RiskControl(Message):
    """Kill-switch state for one client, or for everyone when ``client_id`` is None (control/risk)."""

    kind: Literal["risk_control"] = "risk_control"
    client_id: Identifier | None = None
    state: KillState
    by: str = Field(default="cli", max_length=64)
    ts_init: TimestampNs


class VenueOp(StrEnum):
    OPEN = "OPEN"  # start accepting the job's child orders (epoch >= ``epoch``, total <= ``quantity``)
    FENCE = "FENCE"  # refuse epochs below ``epoch`` and cancel every open child order of an older epoch
    CLOSE = "CLOSE"  # cancel everything open and accept nothing more for the job


class VenueCommand(Message):
    """The saga's command to the venue for one job. Idempotent: repeating one changes nothing more."""

    kind: Literal["venue_command"] = "venue_command"
    command_id: Identifier
    op: VenueOp
    job_id: Identifier
    parent_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Quantity  # the parent's quantity: the venue refuses child orders that could exceed it
    epoch: int = Field(ge=1)
    client_id: Identifier | None = None  # whose limits the endpoint applies to the job's child orders
    ts_init: TimestampNs


class VenueCommandAck(Message):
    """The venue's confirmation. After a FENCE or CLOSE nothing older can fill: ``filled`` is final for
    every earlier epoch, and every fill it counts was published before this ack on the same topic."""

    kind: Literal["venue_command_ack"] = "venue_command_ack"
    command_id: Identifier
    op: VenueOp
    job_id: Identifier
    parent_id: Identifier
    epoch: int = Field(ge=1)
    filled: Size
    canceled: tuple[Identifier, ...] = ()
    ts_init: TimestampNs
