"""The contract every Paceline service shares: message schemas, topic names and the wire codec."""

from models.codec import AnyMessage, DecodeError, decode, decode_any, encode
from models.common import Liquidity, Message, OrdType, Side, Strategy, TimeInForce, now_ns
from models.jobs import (
    CancelRequest,
    JobAssignment,
    JobRef,
    JobRequest,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    WorkerHeartbeat,
)
from models.market import BookLevel, Tick
from models.orders import (
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    ParentOrder,
)
from models.saga import Effect, SagaEvent

__all__ = [
    "AckStatus",
    "AnyMessage",
    "BookLevel",
    "CancelRequest",
    "ChildAction",
    "ChildOrderAck",
    "ChildOrderAction",
    "DecodeError",
    "Effect",
    "ExecType",
    "ExecutionReport",
    "Fill",
    "JobAssignment",
    "JobRef",
    "JobRequest",
    "Liquidity",
    "Message",
    "OrdStatus",
    "OrdType",
    "ParentOrder",
    "SagaEvent",
    "Side",
    "Strategy",
    "Tick",
    "TimeInForce",
    "VenueCommand",
    "VenueCommandAck",
    "VenueOp",
    "WorkerHeartbeat",
    "decode",
    "decode_any",
    "encode",
    "now_ns",
]
