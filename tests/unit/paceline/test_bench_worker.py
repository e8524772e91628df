"""``paceline bench worker``'s three ways of deciding the same aligned jobs (payloads written in one pass,
validated models, job by job) decide the same: the figures it prints side by side compare like with like."""

from __future__ import annotations

from pathlib import Path

from paceline.bench import worker as bench

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def test_the_three_ways_make_the_same_decisions_and_time_each_tick() -> None:
    reg, policy = bench._registry(POLICIES)
    runs = [
        bench.run_engine(reg, policy, 20, aligned=True, minutes=3),
        bench.run_engine(reg, policy, 20, aligned=True, minutes=3, models=True),
        bench.run_engine(reg, policy, 20, aligned=True, minutes=3, models=True, columns=False),
    ]
    assert runs[0]["decisions"] >= 20 * 3  # every job decided on each of its 30 s slots at least
    assert len({r["decisions"] for r in runs}) == 1
    for r in runs:
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
