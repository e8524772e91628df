"""Percentiles for the benchmarks, the demo and the drills: one definition (nearest rank, so a figure is
always a latency that was observed, never an interpolation between two)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q <= 1) by nearest rank; NaN without values."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], got {q}")
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s), max(1, math.ceil(q * len(s)))) - 1]


def summary(values: Sequence[float], qs: Sequence[float] = (0.5, 0.99, 0.999)) -> dict[str, float]:
    """``n``, ``p50``, ``p99``, ``p99.9`` (for ``qs``) and ``max``; empty without values."""
    if not values:
        return {}
    s = sorted(values)
    return {"n": len(s), **{f"p{q * 100:g}": percentile(s, q) for q in qs}, "max": s[-1]}
