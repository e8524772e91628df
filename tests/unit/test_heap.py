"""``runtime.heap.settle``: the start-up heap frozen out of the collector's sight, every pause timed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from runtime import heap


@pytest.fixture
def settled() -> Iterator[None]:
    heap.settle()
    yield
    gc.unfreeze()
    gc.callbacks.remove(heap._timed)


def _full_collections() -> float:
    return REGISTRY.get_sample_value("paceline_gc_pause_seconds_count", {"generation": "2"}) or 0.0


def test_settle_freezes_the_start_up_heap_and_times_each_collection(settled: None) -> None:
    assert gc.get_freeze_count() > 1000  # this test process's modules, at least
    before = _full_collections()
    gc.collect()
    assert _full_collections() >= before + 1  # another thread's allocations may add one of their own
    heap.settle()  # twice: still one callback
    assert gc.callbacks.count(heap._timed) == 1


def test_what_is_allocated_after_settling_is_still_collected(settled: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    gc.disable()
    try:
        Node()
        assert gc.collect() >= 1
    finally:
        gc.enable()
