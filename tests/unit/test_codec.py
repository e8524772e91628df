from __future__ import annotations

import pytest

from models import (
    CancelRequest,
    ChildAction,
    ChildOrderAction,
    Effect,
    JobAssignment,
    JobRef,
    JobRequest,
    LeaderBeat,
    Message,
    SagaEvent,
    Side,
    Tick,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    WorkerHeartbeat,
    codec,
    decode,
    decode_any,
    encode,
)
from models.market import BookLevel
from tests.factories import T0, ack, fill, parent, report, tick

SAMPLES: list[Message] = [
    tick(),
    tick(
        trade_px=100.01,
        trade_sz=300,
        trade_side=Side.SELL,
        volume=10_000,
        bids=(BookLevel(px=100.0, sz=500), BookLevel(px=99.99, sz=100)),
        asks=(BookLevel(px=100.01, sz=700),),
    ),
    parent(),
    ChildOrderAction(
        action=ChildAction.NEW,
        child_id="J1-1-0",
        job_id="J1",
        parent_id="P-1",
        worker_id="w1",
        epoch=1,
        symbol="AAPL",
        side=Side.BUY,
        quantity=100,
        ts_event=T0,
        ts_init=T0,
        tick_seq=7,
    ),
    ack(),
    fill(),
    report(),
    JobRequest(job_id="J1", parent=parent(), ts_init=T0),
    JobAssignment(job_id="J1", worker_id="w1", epoch=2, parent=parent(), quantity=1000, ts_init=T0),
    WorkerHeartbeat(
        worker_id="w1",
        incarnation="abc",
        seq=5,
        capacity=100,
        policies=("twap", "rl-v1"),
        jobs=(JobRef(job_id="J1", epoch=2),),
        ts_init=T0,
    ),
    SagaEvent(
        event_id="P-1.0",
        saga_id="P-1",
        seq=0,
        position=7,
        name="accepted",
        data={"qty": 1000, "why": None},
        effects=(Effect(topic="persistent://paceline/exec/reports", key="C1", message={"kind": "x"}),),
        ts_init=T0,
    ),
    CancelRequest(request_id="X1", parent_id="P-1", client_id="C1", ts_init=T0),
    LeaderBeat(name="hc-1", seq=3, interval_ms=500, ts_init=T0),
    VenueCommand(
        command_id="P-1.3",
        op=VenueOp.FENCE,
        job_id="J1",
        parent_id="P-1",
        symbol="AAPL",
        side=Side.BUY,
        quantity=1000,
        epoch=2,
        ts_init=T0,
    ),
    VenueCommandAck(
        command_id="P-1.3",
        op=VenueOp.FENCE,
        job_id="J1",
        parent_id="P-1",
        epoch=2,
        filled=300,
        canceled=("J1.1.4",),
        ts_init=T0,
    ),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_typed_and_any(msg: Message) -> None:
    data = encode(msg)
    assert isinstance(data, bytes)
    assert decode(data, type(msg)) == msg
    assert decode_any(data) == msg


def test_ints_survive_exactly() -> None:
    t = tick(ts_event=2**62 + 1, ts_init=2**62 + 3)
    assert decode(encode(t), Tick).ts_event == 2**62 + 1


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"", "empty"),
        (b"\x00\xff\xfegarbage", "malformed"),
        (b"{not json", "malformed"),
        (b"[1,2,3]", "invalid"),
        (b'{"kind":"tick","symbol":"AAPL"}', "invalid"),
        (b"x" * (codec.MAX_PAYLOAD_BYTES + 1), "too_large"),
    ],
)
def test_bad_payloads_raise_typed_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeError) as exc:
        decode(payload, Tick)
    assert exc.value.reason == reason


def test_wrong_message_type_is_rejected() -> None:
    with pytest.raises(codec.DecodeError) as exc:
        decode(encode(parent()), Tick)
    assert exc.value.reason in {"wrong_type", "invalid"}


def test_crossed_quote_on_the_wire_is_rejected_with_reason() -> None:
    good = encode(tick()).decode()
    bad = good.replace('"bid_px":100.0', '"bid_px":100.5')
    with pytest.raises(codec.DecodeError) as exc:
        decode(bad.encode(), Tick)
    assert exc.value.reason == "invalid" and "crossed" in str(exc.value)


def test_decode_any_rejects_unknown_kind() -> None:
    with pytest.raises(codec.DecodeError) as exc:
        decode_any(b'{"kind":"spaceship"}')
    assert exc.value.reason == "invalid"


def test_tick_payload_is_compact() -> None:
    assert len(encode(tick())) < 300
