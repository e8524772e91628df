"""``paceline bench codec``: the wire-codec candidates measured side by side on one Tick.

The chosen codec (pydantic-core JSON, models/codec.py) is the first row; the others are what it was
chosen against. Every candidate validates on decode, because the bus must reject bad payloads.

Then FIX's own codec, QuickFIX through its Python binding: a NewOrderSingle's fields read and an
ExecutionReport built, field by field (a call into QuickFIX each) against one call (``models.fix.Body`` and
``wire``), alone and beside one busy Python thread. Every call into the binding lets the GIL go and takes
it back, so in a process where another thread is working each call may wait for it.

Last, the endpoint's own Python on a new order, in this process (no broker, no socket): a NewOrderSingle
from QuickFIX's callback to its request encoded (the gateway and the desk: ``bench fix``'s desk stage), and,
its request stored, its New built as a FIX message (the store's answer, less QuickFIX's send). Back to back,
and with a pause before each order spent spinning in a small loop, so the core never idles: on a shared VM
the path's code and data are evicted meanwhile, and the same Python then runs several times slower. That
is what an order at a client's rate meets, and why ``bench fix`` finds its edges ~5x what they cost here.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from endpoint.config import Client, EndpointConfig, Limits
from endpoint.desk import OrderDesk
from endpoint.fix_gateway import FixGateway
from endpoint.risk import RiskGate
from models import ExecutionReport, Message, Tick, codec
from models.fix import Body, Tag, dictionary, message, utc
from paceline.bench.stats import percentile


def sample_tick() -> Tick:
    return Tick(
        symbol="AAPL", seq=123_456, ts_event=1_700_000_000_123_456_789, ts_init=1_700_000_000_123_999_999,
        bid_px=189.12, bid_sz=300, ask_px=189.13, ask_sz=500,
        trade_px=189.13, trade_sz=100, trade_side="BUY", volume=1_234_567,
    )  # fmt: skip


def _candidates() -> dict[str, tuple[Callable[[Tick], bytes], Callable[[bytes], Tick]]]:
    cands: dict[str, tuple[Callable[[Tick], bytes], Callable[[bytes], Tick]]] = {
        "pydantic-core JSON (chosen)": (codec.encode, lambda b: codec.decode(b, Tick)),
    }
    try:
        import orjson

        cands["orjson + model_validate"] = (
            lambda m: orjson.dumps(m.model_dump(mode="json")),
            lambda b: Tick.model_validate(orjson.loads(b)),
        )
    except ImportError:
        pass
    try:
        import msgpack

        cands["msgpack + model_validate"] = (
            lambda m: msgpack.packb(m.model_dump(mode="json")),
            lambda b: Tick.model_validate(msgpack.unpackb(b)),
        )
    except ImportError:
        pass
    cands["stdlib json + model_validate"] = (
        lambda m: json.dumps(m.model_dump(mode="json")).encode(),
        lambda b: Tick.model_validate(json.loads(b)),
    )
    return cands


def _time_us(fn: Callable[[], Any], n: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the least disturbed by the other core's work
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def measure(iterations: int) -> list[dict[str, Any]]:
    tick = sample_tick()
    rows: list[dict[str, Any]] = []
    for name, (enc, dec) in _candidates().items():
        payload = enc(tick)
        if dec(payload) != tick:
            raise AssertionError(f"{name} does not round-trip")
        enc_us = _time_us(partial(enc, tick), iterations)
        dec_us = _time_us(partial(dec, payload), iterations)
        rows.append(
            {"codec": name, "encode_us": enc_us, "decode_us": dec_us, "total_us": enc_us + dec_us,
             "bytes": len(payload)}
        )  # fmt: skip
    return rows


def run(iterations: int = 50_000) -> int:
    rows = measure(iterations)
    base = rows[0]["total_us"]
    head = ("codec", "encode µs", "decode µs", "enc+dec µs", "bytes", "x chosen")
    print(f"{head[0]:32s} {head[1]:>10s} {head[2]:>10s} {head[3]:>11s} {head[4]:>6s} {head[5]:>9s}")
    for r in rows:
        print(
            f"{r['codec']:32s} {r['encode_us']:10.2f} {r['decode_us']:10.2f} {r['total_us']:11.2f} "
            f"{r['bytes']:6d} {r['total_us'] / base:9.2f}"
        )
    switch_us = sys.getswitchinterval() * 1e6
    print(f"\nFIX through QuickFIX's binding, µs (GIL switch interval {switch_us:.0f} µs)")
    print(f"{'':32s} {'alone p50':>10s} {'p99':>8s} {'busy p50':>10s} {'p99':>8s}")
    for f in fix_calls():
        (a50, a99), (b50, b99) = f["alone"], f["busy"]
        print(f"{f['case']:32s} {a50:10.1f} {a99:8.1f} {b50:10.1f} {b99:8.1f}")
    print("\nThe endpoint's new order in Python, µs, p50 (p99), after a pause spent spinning")
    print(f"{'pause ms':>8s} {'order in -> request encoded':>28s} {'stored -> New as FIX':>22s}")
    for r in desk_path():
        (i50, i99), (o50, o99) = r["in"], r["out"]
        print(f"{r['pause_ms']:8g} {f'{i50:.0f} ({i99:.0f})':>28s} {f'{o50:.0f} ({o99:.0f})':>22s}")
    return 0


_NOS = ("11=C-1\x0121=1\x0138=100\x0140=2\x0144=99.5\x0154=1\x0155=AAPL\x0159=0\x01"
        "60=20261205-10:00:00.000\x01")  # fmt: skip
_READ = (Tag.CL_ORD_ID, Tag.SYMBOL, Tag.SIDE, Tag.ORDER_QTY, Tag.ORD_TYPE, Tag.PRICE, Tag.TIME_IN_FORCE,
         Tag.TARGET_STRATEGY, Tag.EFFECTIVE_TIME, Tag.EXPIRE_TIME, Tag.PARTICIPATION_RATE,
         Tag.POLICY_NAME)  # fmt: skip
_REPORT = ((Tag.ORDER_ID, "P-1"), (Tag.CL_ORD_ID, "C-1"), (Tag.EXEC_ID, "E-1"), (Tag.EXEC_TYPE, "0"),
           (Tag.ORD_STATUS, "0"), (Tag.TRANSACT_TIME, "20261205-10:00:00.000"), (Tag.SYMBOL, "AAPL"),
           (Tag.SIDE, "1"), (Tag.ORDER_QTY, "100"), (Tag.LAST_QTY, "0"), (Tag.CUM_QTY, "0"),
           (Tag.LEAVES_QTY, "100"), (Tag.AVG_PX, "0.000000"))  # fmt: skip


def _fix_cases() -> dict[str, Callable[[], Any]]:
    import quickfix as fix

    with tempfile.TemporaryDirectory() as tmp:
        dd = fix.DataDictionary(str(dictionary(Path(tmp))))
    head = "35=D\x0149=CLIENT1\x0156=PACELINE\x0134=2\x0152=20261205-10:00:00.000\x01"
    text = f"8=FIX.4.4\x019={len(head) + len(_NOS)}\x01{head}{_NOS}"
    nos = fix.Message(f"{text}10={sum(text.encode()) % 256:03d}\x01", dd, True)

    def read(m: Any) -> None:  # as the gateway reads a new order: each field asked whether set, then got
        for tag in _READ:
            if m.isSetField(tag):
                m.getField(tag)

    def built() -> Any:
        out = fix.Message()
        out.getHeader().setField(Tag.MSG_TYPE, "8")
        for tag, value in _REPORT:
            out.setField(tag, value)
        return out

    return {
        "order read, field by field": partial(read, nos),
        "order read, one call (Body)": lambda: read(Body(nos)),
        "report built, field by field": built,
        "report built, one call (wire)": lambda: message("8", _REPORT),
    }


def _percentiles_us(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        xs.append((time.perf_counter_ns() - t0) / 1e3)
    return percentile(xs, 0.5), percentile(xs, 0.99)


def fix_calls(n: int = 2_000) -> list[dict[str, Any]]:
    """Each case's p50 and p99 (µs) alone, then with one other thread of this process busy in Python."""
    cases = _fix_cases()
    rows = [{"case": k, "alone": _percentiles_us(f, n)} for k, f in cases.items()]
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(100))

    th = threading.Thread(target=busy, daemon=True)
    th.start()
    try:
        for row, f in zip(rows, cases.values(), strict=True):
            row["busy"] = _percentiles_us(f, n)
    finally:
        stop.set()
        th.join()
    return rows


def desk_path(orders: int = 200, pauses_ms: tuple[float, ...] = (2, 10, 50)) -> list[dict[str, Any]]:
    """p50 and p99 (µs) of a new order's way in (``FixGateway.fromApp`` of a NewOrderSingle until the desk
    has encoded its request) and of its New once stored (``OrderDesk.request_stored`` until the report is a
    FIX message): back to back (pause 0), and with a pause before each order spent spinning (no idle
    state). Each pause in blocks of orders, the blocks taking turns over four rounds, so a drift of the
    machine's speed meets each alike; a block's first orders are not counted (one run after another
    cadence does not warm or cool the path whole)."""
    import quickfix as fix

    tick = sample_tick()
    client = "CLIENT1"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EndpointConfig(fix_port=0, native_port=0, state_dir=Path(tmp), symbols=(tick.symbol,),
                             clients=(Client(client_id=client, comp_id=client),))  # fmt: skip
    wide = Limits(max_orders_per_s=1e9, max_open_notional=1e15, max_position=10**12)
    requests: list[bytes] = []
    built: list[Any] = []

    def told(m: Message) -> None:
        assert isinstance(m, ExecutionReport)
        built.append(message("8", FixGateway.report_fields(m)))

    desk = OrderDesk(lambda topic, m, key: requests.append(codec.encode(m)), RiskGate({client: wide}),
                     cfg.symbols, new_on_store=True)  # fmt: skip
    desk.tca.on_tick(tick)
    desk.attach(client, told)
    gw = FixGateway(cfg, desk, lambda symbol: tick.ts_event)
    sid = fix.SessionID("FIX.4.4", "PACELINE", client)
    times = [utc(tick.ts_event), utc(tick.ts_event + 3_600 * 10**9)]
    every = (0.0, *pauses_ms)
    ins: dict[float, list[float]] = {p: [] for p in every}
    outs: dict[float, list[float]] = {p: [] for p in every}
    rounds, settle = 4, 5
    block = settle + max(1, orders // rounds)
    schedule = [(p, k >= settle) for _ in range(rounds) for p in every for k in range(block)]
    for i, (pause_ms, counted) in enumerate(schedule):
        nos = message("D", [(Tag.CL_ORD_ID, f"C-{i}"), (Tag.SYMBOL, tick.symbol), (Tag.SIDE, "1"),
                            (Tag.ORDER_QTY, "100"), (Tag.ORD_TYPE, "1"), (Tag.TRANSACT_TIME, times[0]),
                            (Tag.EFFECTIVE_TIME, times[0]), (Tag.EXPIRE_TIME, times[1])])  # fmt: skip
        until = time.perf_counter() + pause_ms / 1e3
        while time.perf_counter() < until:
            pass
        t0 = time.perf_counter_ns()
        gw.fromApp(nos, sid)
        t1 = time.perf_counter_ns()
        desk.request_stored(f"{client}.C-{i}", True)
        t2 = time.perf_counter_ns()
        if len(requests) != i + 1 or len(built) != i + 1:
            raise AssertionError(f"order {i}: not taken as a new order and told New")
        if counted:
            ins[pause_ms].append((t1 - t0) / 1e3)
            outs[pause_ms].append((t2 - t1) / 1e3)
    return [{"pause_ms": p, "in": (percentile(ins[p], 0.5), percentile(ins[p], 0.99)),
             "out": (percentile(outs[p], 0.5), percentile(outs[p], 0.99))} for p in every]  # fmt: skip
