"""The Python heap of a long-running service: its garbage collector kept off the hot paths.

A full collection walks every container object the process holds. A started worker holds ~210,000 of
them before its first job (the modules, torch, pydantic's schemas, the client), and walking them took
~100 ms on this VM: a pause of every tick handler that happened to trigger it. ``settle`` collects once
after start-up and freezes what is left out of the collector's sight (``gc.freeze``: never freed, never
walked again), so a full collection walks only what the service allocated since. Every collection from
then on is timed (``paceline_gc_pause_seconds``), so a pause on the hot path shows."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

from runtime.metrics import LATENCY_BUCKETS

GC_PAUSE = Histogram(
    "paceline_gc_pause_seconds", "Garbage-collection pauses, by generation (2: a full collection)",
    ["generation"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
_BY_GENERATION = [GC_PAUSE.labels(str(g)) for g in range(3)]
_started = [0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    # Collections run under the GIL, one at a time: one start time is enough.
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _BY_GENERATION[info["generation"]].observe(time.perf_counter() - _started[0])


def settle() -> None:
    """Call once the service has started (imports done, policies loaded): collect, freeze, time from now."""
    gc.collect()
    gc.freeze()
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)
