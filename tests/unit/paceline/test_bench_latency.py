"""``paceline bench latency``'s parents: on one decision grid (the burst) or spread over the interval."""

from __future__ import annotations

from models import JobRequest, topics
from paceline.bench.latency import S, _submit_jobs
from runtime.bus import Bus
from runtime.membus import MemoryBroker


def _starts(spread_ns: int, jobs: int = 8) -> list[int]:
    bus = Bus.memory(MemoryBroker())
    try:
        subs = _submit_jobs(bus, run="t", symbols=["AAA", "BBB"], jobs=jobs, t0=1_000 * S,
                            on_action=lambda _d: None, spread_ns=spread_ns)  # fmt: skip
        requests = bus.read_all(topics.JOB_REQUESTS, JobRequest)
        for c in subs:
            c.close()
    finally:
        bus.close()
    assert len(requests) == jobs
    return [d.message.parent.start_ns for d in requests]


def test_parents_share_one_grid_by_default() -> None:
    assert set(_starts(0)) == {1_000 * S}


def test_stagger_spreads_the_starts_evenly_within_one_interval() -> None:
    starts = _starts(10 * S)
    assert starts == [1_000 * S + i * 10 * S // 8 for i in range(8)]
    assert max(starts) - min(starts) < 10 * S  # every job's grid is distinct inside one interval


def test_without_an_observer_the_bench_subscribes_to_no_job_topic() -> None:
    bus = Bus.memory(MemoryBroker())
    try:
        subs = _submit_jobs(bus, run="t", symbols=["AAA"], jobs=3, t0=1_000 * S, on_action=None)
        assert subs == [] and len(bus.read_all(topics.JOB_REQUESTS, JobRequest)) == 3
    finally:
        bus.close()
