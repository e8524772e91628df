"""Order messages: the client's parent order, the worker's child-order actions, venue acks and fills,
and the execution reports the client sees.

Commands are imperative (``ChildOrderAction`` with ``NEW``/``CANCEL``/``REPLACE``); events are past tense
(``ChildOrderAck``, ``Fill``, ``ExecutionReport``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.common import (
    Identifier,
    Liquidity,
    Message,
    OrdType,
    Price,
    Quantity,
    Side,
    Size,
    Strategy,
    Symbol,
    TimeInForce,
    TimestampNs,
)


class ParentOrder(Message):
    """An algo order from a client: work ``quantity`` of ``symbol`` between ``start_ns`` and ``end_ns``."""

    kind: Literal["parent_order"] = "parent_order"
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str = Field(min_length=1, max_length=64)
    symbol: Symbol
    side: Side
    quantity: Quantity
    ord_type: OrdType = OrdType.MARKET
    limit_px: Price | None = None  # a cap (buy) or floor (sell) on every child order
    time_in_force: TimeInForce = TimeInForce.DAY
    start_ns: TimestampNs
    end_ns: TimestampNs
    strategy: Strategy = Strategy.TWAP
    participation_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    policy: Identifier | None = None  # named policy file for Strategy.RL (or to override a baseline)
    ts_init: TimestampNs

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end_ns <= self.start_ns:
            raise ValueError("end_ns must be after start_ns")
        if self.ord_type is OrdType.LIMIT and self.limit_px is None:
            raise ValueError("a LIMIT parent needs limit_px")
        if self.ord_type is OrdType.MARKET and self.limit_px is not None:
            raise ValueError("a MARKET parent cannot carry limit_px")
        if self.strategy is Strategy.POV and self.participation_rate is None:
            raise ValueError("a POV parent needs participation_rate")
        return self


class ChildAction(StrEnum):
    NEW = "NEW"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"


class ChildOrderAction(Message):
    """A worker's command to the endpoint for one child order.

    ``child_id`` is deterministic (job, epoch, decision number), so a re-sent action is recognised as the
    same order by the bus de-duplication and by the idempotent venue. ``epoch`` fences stale workers.
    """

    kind: Literal["child_action"] = "child_action"
    action: ChildAction
    child_id: Identifier
    job_id: Identifier
    parent_id: Identifier
    worker_id: Identifier
    epoch: int = Field(ge=1)
    symbol: Symbol
    side: Side
    quantity: Size  # for CANCEL: 0; for REPLACE: the new total quantity
    ord_type: OrdType = OrdType.MARKET
    limit_px: Price | None = None
    ts_event: TimestampNs  # event time of the tick that triggered the decision
    ts_init: TimestampNs
    tick_seq: int | None = Field(default=None, ge=0)  # that tick's venue sequence, for latency tracing
    tick_ts_init: TimestampNs | None = None  # when that tick was published: tick-to-order latency downstream
    tick_recv_ns: TimestampNs | None = None  # when the worker received that tick (``ts_init``: decided)

    def stage_seconds(self, received_ns: int) -> tuple[float | None, float | None, float | None]:
        """Where the time went from the tick to whoever received this order at ``received_ns`` (same
        machine's clock): tick published -> worker received it, -> decided, -> received here."""
        recv, tick = self.tick_recv_ns, self.tick_ts_init
        return (
            None if recv is None or tick is None else max(0, recv - tick) / 1e9,
            None if recv is None else max(0, self.ts_init - recv) / 1e9,
            max(0, received_ns - self.ts_init) / 1e9,
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problem = child_problem(self.action, self.quantity, self.ord_type, self.limit_px)
        if problem is not None:
            raise ValueError(problem)
        return self


def child_problem(
    action: ChildAction, quantity: int, ord_type: OrdType, limit_px: float | None
) -> str | None:
    """What makes a child order's fields inconsistent with each other (None: nothing). The model's validator
    and the worker's encoder of many children at once (``codec.ChildActionEncoder``) both apply it."""
    if action is _NEW and quantity <= 0:
        return "a NEW child order needs a positive quantity"
    if ord_type is _LIMIT and action is not _CANCEL and limit_px is None:
        return "a LIMIT child order needs limit_px"
    return None


_NEW, _CANCEL, _LIMIT = ChildAction.NEW, ChildAction.CANCEL, OrdType.LIMIT  # per child: no class lookups


class AckStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    REPLACED = "REPLACED"
    DONE = "DONE"  # fully filled, or an IOC/market remainder expired


class ChildOrderAck(Message):
    """The venue's (or the risk gate's) answer to one ChildOrderAction."""

    kind: Literal["child_ack"] = "child_ack"
    child_id: Identifier
    job_id: Identifier
    epoch: int = Field(ge=1)
    status: AckStatus
    reason: str | None = Field(default=None, max_length=256)
    leaves_qty: Size = 0
    ts_event: TimestampNs
    ts_init: TimestampNs


class Fill(Message):
    """One execution of one child order. ``fill_id`` is the venue's execution id: unique and stable."""

    kind: Literal["fill"] = "fill"
    fill_id: Identifier
    child_id: Identifier
    job_id: Identifier
    parent_id: Identifier
    symbol: Symbol
    side: Side
    qty: Quantity
    px: Price
    liquidity: Liquidity = Liquidity.TAKER
    ts_event: TimestampNs
    ts_init: TimestampNs


class ExecType(StrEnum):
    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    REPLACED = "REPLACED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    DONE_FOR_DAY = "DONE_FOR_DAY"
    ORDER_STATUS = "ORDER_STATUS"


class OrdStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    DONE_FOR_DAY = "DONE_FOR_DAY"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED, OrdStatus.DONE_FOR_DAY}
)


# Stages of a new order's acknowledgement (one machine's wall clock): the client's message in at the endpoint
# -> its request published (the desk) -> received by the saga -> the report built -> the report received
# back at the endpoint (the log append, the outbox's publish and the hop) -> handed to the client's session.
ACK_STAGES = ("desk", "to_saga", "saga", "commit_and_back", "to_client")


class AckTrace(BaseModel):
    """Wall-clock stamps of a new order's path to its first report (diagnostics only, never logic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    request_recv_ns: TimestampNs | None = None  # the client's message reached the endpoint
    request_sent_ns: TimestampNs | None = None  # the endpoint published the request
    saga_recv_ns: TimestampNs  # the saga took the request
    built_ns: TimestampNs  # the saga built this report (before the log append that commits it)

    def stage_seconds(self, received_ns: int) -> tuple[float | None, float | None, float, float]:
        """``ACK_STAGES`` up to the report's receipt at ``received_ns``, in seconds."""
        recv, sent = self.request_recv_ns, self.request_sent_ns
        return (
            None if recv is None or sent is None else max(0, sent - recv) / 1e9,
            None if sent is None else max(0, self.saga_recv_ns - sent) / 1e9,
            max(0, self.built_ns - self.saga_recv_ns) / 1e9,
            max(0, received_ns - self.built_ns) / 1e9,
        )


Bps = Annotated[float, Field(allow_inf_nan=False)]


class TcaFigures(BaseModel):
    """A parent's transaction costs as ``market.tca`` measures them (the final report's, the TCA report's).
    Costs in bps of the order's notional at the arrival mid, positive = cost; the four parts add up to
    ``is_bps`` (``market.costs``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    quantity: Size
    filled: Size
    avg_px: float = Field(ge=0.0, allow_inf_nan=False)
    arrival_mid: float = Field(gt=0.0, allow_inf_nan=False)
    arrival_ts: TimestampNs  # market time of the arrival tick
    first_fill_mid: float | None = Field(default=None, allow_inf_nan=False)
    end_mid: float = Field(gt=0.0, allow_inf_nan=False)
    end_ts: TimestampNs  # market time the figures are marked at (the last tick before the order ended)
    interval_vwap: float | None = Field(default=None, allow_inf_nan=False)  # the market's, arrival to end
    twap_px: float | None = Field(default=None, allow_inf_nan=False)  # time-weighted far touch, ditto
    is_bps: Bps
    delay_bps: Bps
    spread_bps: Bps  # spread and impact paid on what filled, against the mid at each fill
    timing_bps: Bps
    opportunity_bps: Bps
    vwap_slippage_bps: float | None = Field(default=None, allow_inf_nan=False)
    twap_slippage_bps: float | None = Field(default=None, allow_inf_nan=False)


class TcaRecord(Message):
    """A finished parent's TCA as its client was told it (the endpoint, on ``topics.TCA``): what
    ``paceline tca`` reports, so the kept report and the final ExecutionReport agree by construction."""

    kind: Literal["tca_record"] = "tca_record"
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str = Field(min_length=1, max_length=64)
    ord_status: OrdStatus
    figures: TcaFigures
    ts_init: TimestampNs


class ExecutionReport(Message):
    """A parent-level report to the client, mirroring FIX 35=8.

    The validator enforces the quantities a client may rely on: CumQty <= OrderQty,
    LeavesQty = OrderQty - CumQty while the order lives and 0 once it is terminal.
    """

    kind: Literal["execution_report"] = "execution_report"
    report_id: Identifier
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str = Field(min_length=1, max_length=64)
    orig_cl_ord_id: str | None = Field(default=None, max_length=64)  # the order a cancel/replace acted on
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: Symbol
    side: Side
    order_qty: Size
    last_qty: Size = 0
    last_px: Price | None = None
    cum_qty: Size
    leaves_qty: Size
    avg_px: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    text: str | None = Field(default=None, max_length=512)
    # Transaction-cost analysis on the final report (bps; positive = cost): shortfall against the arrival
    # mid, and slippage against the market's VWAP over the order's life.
    is_bps: float | None = Field(default=None, allow_inf_nan=False)
    vwap_slippage_bps: float | None = Field(default=None, allow_inf_nan=False)
    tca: TcaFigures | None = None  # all of the final report's TCA (native clients; FIX carries two tags)
    trace: AckTrace | None = None  # on the first report of a new order: where its acknowledgement's time went
    ts_event: TimestampNs
    ts_init: TimestampNs

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.cum_qty > self.order_qty:
            raise ValueError(f"over-execution: cum_qty {self.cum_qty} > order_qty {self.order_qty}")
        expected = 0 if self.ord_status.terminal else self.order_qty - self.cum_qty
        if self.leaves_qty != expected:
            raise ValueError(f"leaves_qty {self.leaves_qty} != {expected} for {self.ord_status}")
        if self.exec_type is ExecType.TRADE and (self.last_qty <= 0 or self.last_px is None):
            raise ValueError("a TRADE report needs last_qty > 0 and last_px")
        if self.cum_qty > 0 and self.avg_px <= 0.0:
            raise ValueError("avg_px must be positive once something is filled")
        return self


# How far in the past a new parent's window may start (the health-checker's ``start_tolerance_s`` default).
START_TOLERANCE_S = 60.0


def window_refusal(p: ParentOrder, now_ns: int, start_tolerance_s: float = START_TOLERANCE_S) -> str | None:
    """Why a new parent cannot start at ``now_ns`` on its symbol's market clock, or None. The saga's rule,
    which the endpoint applies as well before it tells a New without waiting for the saga."""
    if p.end_ns <= now_ns:
        return "the order's window is already over"
    if p.start_ns < now_ns - round(start_tolerance_s * 1e9):
        return f"start is more than {start_tolerance_s:g} s in the past"
    return None


def new_report(p: ParentOrder, now_ns: int, trace: AckTrace | None = None) -> ExecutionReport:
    """A new parent's New: the saga's, and the one its endpoint tells once the order's request is stored.
    One id for both, so whichever copy comes second is a duplicate (and a FIX store read back after a
    restart names it)."""
    return ExecutionReport(
        report_id=f"{p.parent_id}.new", parent_id=p.parent_id, client_id=p.client_id, cl_ord_id=p.cl_ord_id,
        exec_type=ExecType.NEW, ord_status=OrdStatus.NEW, symbol=p.symbol, side=p.side, order_qty=p.quantity,
        cum_qty=0, leaves_qty=p.quantity, trace=trace, ts_event=now_ns, ts_init=now_ns,
    )  # fmt: skip


class RequestKind(StrEnum):
    CANCEL = "CANCEL"
    AMEND = "AMEND"


class RequestReject(Message):
    """A cancel or amend that cannot be honoured (FIX 35=9 OrderCancelReject)."""

    kind: Literal["request_reject"] = "request_reject"
    parent_id: Identifier
    client_id: Identifier
    cl_ord_id: str = Field(min_length=1, max_length=64)  # the request's own id
    orig_cl_ord_id: str = Field(min_length=1, max_length=64)
    request: RequestKind
    ord_status: OrdStatus
    reason: str = Field(max_length=256)
    too_late: bool = False  # the order is already closed (FIX CxlRejReason 0)
    ts_init: TimestampNs
