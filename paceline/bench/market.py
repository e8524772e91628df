"""``paceline bench market``: how much faster than real time the synthetic market generates a session."""

from __future__ import annotations

import time

from market.session import SESSION_CLOSE_S, SESSION_OPEN_S
from market.synthetic import SymbolSpec, SyntheticMarket


def run(symbols: list[str], depths: list[int], seed: int = 1) -> int:
    session_s = SESSION_CLOSE_S - SESSION_OPEN_S
    print(f"full 09:30-16:00 session ({session_s} s of market time), {len(symbols)} symbols")
    print(f"{'depth':>5s} {'ticks':>9s} {'seconds':>8s} {'µs/tick':>8s} {'x real time':>12s}")
    for depth in depths:
        t0 = time.perf_counter()
        n = sum(1 for _ in SyntheticMarket([SymbolSpec(s) for s in symbols], seed, depth=depth))
        secs = time.perf_counter() - t0
        print(f"{depth:5d} {n:9d} {secs:8.1f} {secs / n * 1e6:8.1f} {session_s / secs:12,.0f}")
    return 0
