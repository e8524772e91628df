"""The one percentile definition (``paceline.bench.stats``), and quantiles read from a histogram."""

from __future__ import annotations

import itertools
import math

import pytest

from paceline.bench.stats import bucket_quantile, bucket_summary, percentile, summary


def test_nearest_rank_percentiles_are_observed_values() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 0.5) == 3.0 and percentile(xs, 1.0) == 5.0 and percentile(xs, 0.2) == 1.0
    assert percentile(xs, 0.21) == 2.0
    assert math.isnan(percentile([], 0.5))
    assert summary(list(map(float, range(1, 1001)))) == {"n": 1000, "p50": 500.0, "p99": 990.0,
                                                           "p99.9": 999.0, "max": 1000.0}  # fmt: skip
    with pytest.raises(ValueError):
        percentile(xs, 0)


def _binned(xs: list[float], bounds: tuple[float, ...]) -> list[tuple[float, float]]:
    """``xs`` as a Prometheus histogram holds them: cumulative counts at each bound, then +Inf."""
    return [*((b, float(sum(x <= b for x in xs))) for b in bounds), (math.inf, float(len(xs)))]


def test_bucket_quantile_interpolates_within_the_bucket_that_holds_it() -> None:
    buckets = [(1.0, 10.0), (2.0, 30.0), (4.0, 40.0), (math.inf, 40.0)]
    assert bucket_quantile(buckets, 0.25) == 1.0  # rank 10: the first bucket's top
    assert bucket_quantile(buckets, 0.5) == pytest.approx(1.5)  # rank 20, half-way through (1, 2]
    assert bucket_quantile(buckets, 1.0) == pytest.approx(2.0 + 2.0 * 10 / 10)
    assert bucket_quantile([(1.0, 0.0), (math.inf, 4.0)], 0.5) == 1.0  # in +Inf: the last finite bound
    assert math.isnan(bucket_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5))


def test_a_window_of_a_histogram_reads_what_was_observed_in_it() -> None:
    bounds = tuple(k / 10 for k in range(1, 51))  # 0.1 ms wide, as the endpoint's tick -> child histogram
    early = [0.35] * 500  # before the window: must not count
    window = [1.0 + (k % 97) / 40 for k in range(2000)]  # 1.0 .. 3.4, spread
    got = bucket_summary(_binned(early, bounds), _binned(early + window, bounds))
    assert got["n"] == 2000 and got["max"] == pytest.approx(3.4)
    exact = summary(window)
    for key in ("p50", "p99"):  # within a bucket's width of the exact (nearest-rank) figure
        assert abs(got[key] - exact[key]) <= 0.1, (key, got[key], exact[key])
    assert bucket_summary(_binned(early, bounds), _binned(early, bounds)) == {}


def test_trace_buckets_are_fine_where_the_tick_to_child_goal_is_set() -> None:
    from runtime.metrics import TRACE_BUCKETS

    assert list(TRACE_BUCKETS) == sorted(set(TRACE_BUCKETS))
    steps = [b - a for a, b in itertools.pairwise(TRACE_BUCKETS) if b <= 5e-3]
    assert max(steps) <= 1e-4 + 1e-12  # 0.1 ms or finer up to 5 ms: a p50 read within 0.1 ms
