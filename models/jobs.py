"""Control-plane messages: jobs, their fenced assignments, and worker heartbeats."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.common import Identifier, Message, Quantity, TimestampNs
from models.orders import ParentOrder


class JobRequest(Message):
    """Ask the health-checker to work (part of) a parent order."""

    kind: Literal["job_request"] = "job_request"
    job_id: Identifier
    parent: ParentOrder
    ts_init: TimestampNs


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


class JobRef(Message):
    kind: Literal["job_ref"] = "job_ref"
    job_id: Identifier
    epoch: int = Field(ge=1)


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
