"""The columnar decision path (``observe_rows``, one forward pass, ``actions_of``, children built without
re-validation) decides exactly as the per-job path it replaced: every job of a backtest day's episode grid
on one engine, so jobs due on the same tick are decided together, against a reference engine that observes,
sizes and builds each job's child orders one by one, as the engine did before."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import ChildOrderAction, Side, Tick, VenueCommand, VenueOp
from worker import policy_files
from worker.backtest import HORIZONS, SIZES, Day, episodes, synthetic_days
from worker.engine import Engine, Job
from worker.nets import PolicyNet
from worker.policy import OBS_LIMIT, OBS_SCALE, observation_values
from worker.policy_files import LoadedPolicy, PolicyRegistry
from worker.sim import SIM_WORKER, assignment, parent_order

SHIPPED = Path(__file__).resolve().parents[3] / "policies"


class PerJob(Engine):
    """The engine as it was: each due job observed (``Features.observe``), scaled as a list of observations,
    sized by ``action_of`` and its child orders validated on construction."""

    def _decide_file(self, jobs: list[Job], tick: Tick) -> list[ChildOrderAction]:
        pol = jobs[0].policy
        assert isinstance(pol, LoadedPolicy)
        batch = [j.features.observe(tick.ts_event, j.filled, j.open_qty) for j in jobs]
        rows = np.asarray([observation_values(o) for o in batch], dtype=np.float32)
        scores = pol.scores(np.clip(rows * OBS_SCALE, -OBS_LIMIT, OBS_LIMIT))
        usable, best = np.isfinite(scores).all(axis=1).tolist(), scores.argmax(axis=1).tolist()
        out: list[ChildOrderAction] = []
        for job, o, ok, index in zip(jobs, batch, usable, best, strict=True):
            action = (
                pol.action_of(index, job.slice_qty, o, job.context)
                if ok
                else pol.fallback.decide(o, job.context)
            )
            if self.audit is not None:
                self.audit(job, o, action)
            out += self._act(job, action, tick)
        return out

    def _child(self, *args: Any, **kwargs: Any) -> ChildOrderAction:
        built = super()._child(*args, **kwargs)
        return ChildOrderAction.model_validate(built.model_dump())


class Columnar(Engine):
    """The engine itself, noting how many jobs each forward pass decided."""

    batches: list[int] = []

    def _decide_file(self, jobs: list[Job], tick: Tick) -> list[ChildOrderAction]:
        Columnar.batches.append(len(jobs))
        return super()._decide_file(jobs, tick)


def _key(a: ChildOrderAction) -> tuple[Any, ...]:
    return (a.action, a.child_id, a.quantity, a.ord_type, a.limit_px, a.ts_event, a.tick_seq, a.epoch, a.side)


@functools.cache
def _day() -> Day:
    return synthetic_days(1, ("mid",))[0]()


def _drive(engine_cls: type[Engine], policy: LoadedPolicy) -> tuple[list[ChildOrderAction], list[Any]]:
    """Every episode of the day's grid as a job of one engine, over the whole day, the venue answering."""
    day = _day()
    eps = episodes(day, tuple(HORIZONS), SIZES)
    ticks, venue = day.market(min(e.start_ns for e in eps) - 60 * 10**9, max(e.end_ns for e in eps))
    engine = engine_cls(SIM_WORKER, decision_s=30)
    audited: list[Any] = []
    engine.audit = lambda job, obs, action: audited.append((job.job_id, observation_values(obs), action))
    for n, e in enumerate(eps):
        p = parent_order(e.symbol, e.side, e.quantity, e.start_ns, e.end_ns, name=f"c{n}")
        a = assignment(p, job_id=f"J{n}")
        venue.command(VenueCommand(command_id=f"{a.job_id}.open", op=VenueOp.OPEN, job_id=a.job_id,
                                   parent_id=p.parent_id, symbol=p.symbol, side=Side(e.side),
                                   quantity=a.quantity, epoch=a.epoch, ts_init=a.ts_init))  # fmt: skip
        assert engine.assign(a, policy)
    sent: list[ChildOrderAction] = []
    for tick in ticks:
        for m in venue.on_tick(tick):
            engine.on_execution(m)
        actions = engine.on_tick(tick)
        sent += actions
        for act in actions:
            for m in venue.action(act):
                engine.on_execution(m)
    return sent, audited


def _random_file(tmp: Path, band: float | None) -> LoadedPolicy:
    """A network of random weights over the slice actions (sized in TWAP slices): varied decisions."""
    import torch

    torch.manual_seed(7)
    policy_files.save(PolicyNet(), tmp, "random", 1, band=band)
    return PolicyRegistry(tmp).load("random")


@pytest.mark.parametrize("which", ["rl-place@2", "random", "random-banded"])
def test_the_columnar_path_decides_as_the_per_job_path_bit_for_bit(which: str, tmp_path: Path) -> None:
    if which.startswith("random"):
        policy = _random_file(tmp_path, 0.02 if which == "random-banded" else None)
    else:
        name, _, version = which.partition("@")
        policy = PolicyRegistry(SHIPPED).load(name, int(version))
    Columnar.batches = []
    sent, audited = _drive(Columnar, policy)
    ref_sent, ref_audited = _drive(PerJob, policy)
    assert len(sent) > 100 and [_key(a) for a in sent] == [_key(a) for a in ref_sent]
    # The observations and actions themselves, float for float (NaN never appears in either).
    assert audited == ref_audited
    assert max(Columnar.batches) > 1  # jobs were decided together
    # Children built without validation are what validation would build.
    for a in sent:
        assert ChildOrderAction.model_validate(a.model_dump()) == a
