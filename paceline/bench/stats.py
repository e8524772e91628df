"""Percentiles for the benchmarks, the demo and the drills: one definition (nearest rank, so a figure is
always a latency that was observed, never an interpolation between two). Where a service's histogram is
all there is (a process's own clock, read from its /metrics), quantiles are interpolated within a bucket,
as Prometheus' ``histogram_quantile`` reads them."""

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


Buckets = Sequence[tuple[float, float]]  # (upper bound, cumulative count), ascending, the last +Inf


def bucket_quantile(buckets: Buckets, q: float) -> float:
    """The ``q`` quantile of a histogram, linear within the bucket that holds it (the first bucket's lower
    bound is 0); NaN without observations, and the highest finite bound when it falls in +Inf's."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], got {q}")
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def bucket_window(before: Buckets, after: Buckets) -> list[tuple[float, float]]:
    """What a histogram observed between two readings, as its buckets (a bucket missing before: 0)."""
    was = dict(before)
    return [(le, count - was.get(le, 0.0)) for le, count in after]


def bucket_summary(
    before: Buckets, after: Buckets, qs: Sequence[float] = (0.5, 0.99, 0.999)
) -> dict[str, float]:
    """``summary``'s keys for what a histogram observed between two readings (``max``: the upper bound of
    the highest bucket reached, inf past the last finite one); empty without observations."""
    window = bucket_window(before, after)
    if not window or window[-1][1] <= 0:
        return {}
    top = next(le for le, count in window if count >= window[-1][1])
    return {"n": window[-1][1], **{f"p{q * 100:g}": bucket_quantile(window, q) for q in qs}, "max": top}
