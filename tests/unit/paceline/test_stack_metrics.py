"""What a bench reads off a service's /metrics (``Proc.metric``, ``counter``, ``histogram``), against a real
prometheus-client exposition."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from paceline.bench.stats import bucket_summary
from paceline.ops.stack import Proc, free_port
from runtime.metrics import TRACE_BUCKETS


def _at(port: int) -> Proc:
    """A ``Proc`` reading the /metrics on ``port`` (no process of its own: only its readers are tested)."""
    proc = Proc.__new__(Proc)
    proc.metrics_port = port
    return proc


@pytest.fixture
def served() -> Iterator[tuple[Proc, Histogram, Counter]]:
    reg = CollectorRegistry()
    hist = Histogram("t_tick_to_child_seconds", "t", ["stage"], buckets=TRACE_BUCKETS, registry=reg)
    sent = Counter("t_published_total", "t", ["stream"], registry=reg)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    try:
        yield _at(port), hist, sent
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_counter_not_touched_yet_reads_zero_and_a_silent_process_none(
    served: tuple[Proc, Histogram, Counter],
) -> None:
    proc, _, sent = served
    assert proc.counter("t_published_total", stream="actions") == 0.0
    assert proc.metric("t_published_total", stream="actions") is None
    sent.labels("actions").inc(3)
    assert proc.counter("t_published_total", stream="actions") == 3.0
    assert _at(free_port()).counter("t_published_total") is None


def test_a_histogram_is_read_as_its_buckets_and_a_window_of_them(
    served: tuple[Proc, Histogram, Counter],
) -> None:
    proc, hist, _ = served
    hist.labels("worker_decide").observe(0.5)  # another stage: not read
    before = proc.histogram("t_tick_to_child_seconds", stage="all")
    assert before == []  # a labelled histogram appears when first observed: a window from nothing
    for ms in (2.04, 2.08, 2.12, 2.16, 9.0):
        hist.labels("all").observe(ms / 1e3)
    after = proc.histogram("t_tick_to_child_seconds", stage="all")
    assert after is not None and [le for le, _ in after] == [*TRACE_BUCKETS, math.inf]
    got = bucket_summary(before, after)
    assert got["n"] == 5 and got["max"] == 10e-3
    assert 2.0e-3 < got["p50"] <= 2.2e-3  # within the 0.1 ms buckets that hold the middle three
