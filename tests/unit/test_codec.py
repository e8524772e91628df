from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

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
    OrdType,
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


# --- ChildActionEncoder: the worker's children written in one pass --------------------------------------
_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,40}\Z")
_px = st.one_of(
    st.none(),
    st.floats(min_value=1e-4, max_value=1e15, allow_nan=False),
    st.integers(1, 10**7).map(lambda u: u / 10_000),
)


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from(ChildAction), ord_type=st.sampled_from(OrdType), side=st.sampled_from(Side),
    job_id=_ids, parent_id=_ids, worker_id=_ids, symbol=st.from_regex(r"\A[A-Z][A-Z0-9.\-]{0,15}\Z"),
    epoch=st.integers(1, 10**12), n=st.integers(0, 10**9), quantity=st.integers(0, 10**12), px=_px,
    stamps=st.tuples(*(st.integers(0, 2**63 - 1),) * 2, *(st.none() | st.integers(0, 2**63 - 1),) * 3),
)  # fmt: skip
def test_the_child_encoder_writes_what_the_model_writes_byte_for_byte(
    *, action: ChildAction, ord_type: OrdType, side: Side, job_id: str, parent_id: str, worker_id: str,
    symbol: str, epoch: int, n: int, quantity: int, px: float | None, stamps: tuple[Any, ...],
) -> None:  # fmt: skip
    """Whatever the model accepts, the encoder writes exactly the model's bytes; whatever it refuses, the
    encoder refuses too."""
    child_id = f"{job_id}.{epoch}.{n}"
    ts_event, ts_init, tick_seq, tick_ts_init, tick_recv_ns = stamps
    fields = dict(action=action, child_id=child_id, job_id=job_id, parent_id=parent_id, worker_id=worker_id,
                  epoch=epoch, symbol=symbol, side=side, quantity=quantity, ord_type=ord_type, limit_px=px,
                  ts_event=ts_event, ts_init=ts_init, tick_seq=tick_seq, tick_ts_init=tick_ts_init,
                  tick_recv_ns=tick_recv_ns)  # fmt: skip
    enc = codec.ChildActionEncoder
    job = enc.job_part(job_id=job_id, parent_id=parent_id, worker_id=worker_id, epoch=epoch, symbol=symbol,
                       side=side)  # fmt: skip
    tail = enc.tick_part(*stamps)
    try:
        model = ChildOrderAction(**fields)
    except ValidationError:
        with pytest.raises(ValueError):
            enc.payload(action, child_id, quantity, ord_type, px, job_part=job, tick_part=tail)
        return
    payload = enc.payload(action, child_id, quantity, ord_type, px, job_part=job, tick_part=tail)
    assert payload == encode(model)
    assert decode(payload, ChildOrderAction) == model


_child = st.tuples(
    st.sampled_from(["J1", "J2", "J3"]),  # the job: its run of fields
    st.sampled_from(ChildAction),  # fields repeat, and a refused one is rare: most lists are valid
    st.sampled_from(["J1.1.0", "J1.1.7", "J2.1.12", "J3.1.3"] * 5 + ["J3.1.4\n", "J,1"]),
    st.sampled_from([0, 100, 250] * 5 + [-1]), st.sampled_from(OrdType),
    st.sampled_from([None, 100.01, 99.99] * 5 + [0.0]),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(children=st.lists(_child, min_size=1, max_size=12))
def test_many_children_at_once_are_each_the_models_bytes_or_all_refused(
    children: list[tuple[str, ChildAction, str, int, OrdType, float | None]],
) -> None:
    """A tick's children share field sets, which the encoder checks and writes once, and ids, which it
    checks in one match: every payload is still its model's bytes, and one refused child refuses them all."""
    enc = codec.ChildActionEncoder
    jobs = {
        j: enc.job_part(job_id=j, parent_id="P" + j, worker_id="w1", epoch=1, symbol="AAPL", side=Side.SELL)
        for j in ("J1", "J2", "J3")
    }
    tail = enc.tick_part(T0, T0 + 5, 9, T0 + 1, None)
    models: list[ChildOrderAction] = []
    try:
        for job, action, child_id, quantity, ord_type, px in children:
            models.append(ChildOrderAction(
                action=action, child_id=child_id, job_id=job, parent_id="P" + job, worker_id="w1", epoch=1,
                symbol="AAPL", side=Side.SELL, quantity=quantity, ord_type=ord_type, limit_px=px, ts_event=T0,
                ts_init=T0 + 5, tick_seq=9, tick_ts_init=T0 + 1, tick_recv_ns=None,
            ))  # fmt: skip
    except ValidationError:
        with pytest.raises(ValueError, match="child"):
            enc.payloads(children, tail, jobs.__getitem__)
        return
    assert enc.payloads(children, tail, jobs.__getitem__) == [encode(m) for m in models]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"child_id": "J" * 126 + ".1.0"}, "id"),  # over the identifier's 128 characters
        ({"child_id": "J1.1.0\n"}, "id"),
        ({"quantity": -100}, "quantity"),
        ({"quantity": 0}, "positive quantity"),  # a NEW of nothing
        ({"limit_px": None}, "needs limit_px"),
        ({"limit_px": 0.0}, "range"),
        ({"limit_px": float("nan")}, "range"),
        ({"limit_px": float("inf")}, "range"),
    ],
)
def test_the_child_encoder_refuses_what_the_model_refuses(change: dict[str, Any], why: str) -> None:
    enc = codec.ChildActionEncoder
    job = enc.job_part(job_id="J1", parent_id="P1", worker_id="w1", epoch=1, symbol="AAPL", side=Side.BUY)
    child: dict[str, Any] = {"child_id": "J1.1.0", "quantity": 100, "limit_px": 100.01} | change
    with pytest.raises(ValueError, match=why):
        enc.payload(ChildAction.NEW, child["child_id"], child["quantity"], OrdType.LIMIT, child["limit_px"],
                    job_part=job, tick_part=enc.tick_part(T0, T0, 1, None, None))  # fmt: skip
    with pytest.raises(ValidationError):
        enc.job_part(job_id="J1", parent_id="P1", worker_id="w1", epoch=0, symbol="AAPL", side=Side.BUY)
    with pytest.raises(ValueError, match="counts"):
        enc.tick_part(T0, -1, 1, None, None)
