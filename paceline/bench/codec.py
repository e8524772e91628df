"""``paceline bench codec``: the wire-codec candidates measured side by side on one Tick.

The chosen codec (pydantic-core JSON, models/codec.py) is the first row; the others are what it was
chosen against. Every candidate validates on decode, because the bus must reject bad payloads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from models import Tick, codec


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
    return 0
