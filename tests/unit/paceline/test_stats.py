"""The one percentile definition (``paceline.bench.stats``)."""

from __future__ import annotations

import math

import pytest

from paceline.bench.stats import percentile, summary


def test_nearest_rank_percentiles_are_observed_values() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 0.5) == 3.0 and percentile(xs, 1.0) == 5.0 and percentile(xs, 0.2) == 1.0
    assert percentile(xs, 0.21) == 2.0
    assert math.isnan(percentile([], 0.5))
    assert summary(list(map(float, range(1, 1001)))) == {"n": 1000, "p50": 500.0, "p99": 990.0,
                                                           "p99.9": 999.0, "max": 1000.0}  # fmt: skip
    with pytest.raises(ValueError):
        percentile(xs, 0)
