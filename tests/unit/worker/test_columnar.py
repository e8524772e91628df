"""The columnar decision path (``observe_columns``, one forward pass, ``sized_columns``) decides exactly as
the per-job path (each job's ``Features.observe`` and ``action_of``): every job of a backtest day's episode
grid on one engine, so that jobs due on the same tick are decided together, once with every batch as
columns and once with every batch job by job. And the live worker's children, written in one pass
(``Engine.on_tick_wire``), are the validated models' (``Engine.on_tick``) byte for byte."""

from __future__ import annotations

import functools
import math
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from models import ChildOrderAction, Side, Tick, VenueCommand, VenueOp, codec
from worker import policy_files
from worker.backtest import HORIZONS, SIZES, Day, episodes, synthetic_days
from worker.engine import ChildSpec, Engine, Job
from worker.nets import PolicyNet
from worker.policy import observation_values
from worker.policy_files import LoadedPolicy, PolicyRegistry
from worker.sim import SIM_WORKER, assignment, parent_order

SHIPPED = Path(__file__).resolve().parents[3] / "policies"


class Columnar(Engine):
    """The engine itself, noting how many jobs each forward pass decided, and how many actions took the
    general way to child orders (``_place``: open children to keep or cancel, or a limit)."""

    batches: list[int] = []
    placed = 0

    def _place(self, job: Job, *args: Any, **kwargs: Any) -> int:
        Columnar.placed += 1
        return super()._place(job, *args, **kwargs)

    def _decide_file(self, jobs: list[Job], tick: Tick, out: list[ChildSpec], sym: Any) -> None:
        Columnar.batches.append(len(jobs))
        super()._decide_file(jobs, tick, out, sym)


def _key(a: ChildOrderAction) -> tuple[Any, ...]:
    return (a.action, a.child_id, a.quantity, a.ord_type, a.limit_px, a.ts_event, a.tick_seq, a.epoch, a.side)


@functools.cache
def _day() -> Day:
    return synthetic_days(1, ("mid",))[0]()


def _drive(
    columnar_from: int, policy: LoadedPolicy, *, wire: bool = False, audit: bool = True, late_s: int = 0
) -> tuple[list[ChildOrderAction], list[Any]]:
    """Every episode of the day's grid as a job of one engine, over the whole day, the venue answering.
    ``wire``: the children as the live worker writes them, each payload decoded (validated) for the venue
    after checking that the model re-encodes to the same bytes. ``audit`` False: no observation or action
    is built per job (the live worker's way). ``late_s``: the venue's answers reach the engine that many
    market seconds late (a cancel still unconfirmed at the job's next decision). After each tick, the
    engine's columns hold what its jobs do (checked every 50th tick: checking all of them is slow)."""
    day = _day()
    eps = episodes(day, tuple(HORIZONS), SIZES)
    ticks, venue = day.market(min(e.start_ns for e in eps) - 60 * 10**9, max(e.end_ns for e in eps))
    engine = Columnar(SIM_WORKER, decision_s=30, spread=False)  # the grid's episodes due together, as columns
    engine.columnar_from = columnar_from
    audited: list[Any] = []
    if audit:
        engine.audit = lambda job, obs, action: audited.append((job.job_id, observation_values(obs), action))
    for n, e in enumerate(eps):
        p = parent_order(e.symbol, e.side, e.quantity, e.start_ns, e.end_ns, name=f"c{n}")
        a = assignment(p, job_id=f"J{n}")
        venue.command(VenueCommand(command_id=f"{a.job_id}.open", op=VenueOp.OPEN, job_id=a.job_id,
                                   parent_id=p.parent_id, symbol=p.symbol, side=Side(e.side),
                                   quantity=a.quantity, epoch=a.epoch, ts_init=a.ts_init))  # fmt: skip
        assert engine.assign(a, policy)
    sent: list[ChildOrderAction] = []
    answers: deque[tuple[int, Any]] = deque()  # (when the engine gets it, the venue's answer)

    def answer(messages: list[Any], ts: int) -> None:
        answers.extend((ts + late_s * 10**9, m) for m in messages)
        while answers and answers[0][0] <= ts:
            engine.on_execution(answers.popleft()[1])

    for i, tick in enumerate(ticks):
        answer(venue.on_tick(tick), tick.ts_event)
        if wire:
            specs, payloads = engine.on_tick_wire(tick)
            actions = [codec.decode(payload, ChildOrderAction) for payload in payloads]
            for spec, payload, a in zip(specs, payloads, actions, strict=True):
                assert codec.encode(a) == payload and (spec[0].job_id, spec[1]) == (a.job_id, a.action)
        else:
            actions = engine.on_tick(tick)
        sent += actions
        for act in actions:
            answer(venue.action(act), tick.ts_event)
        if i % 50 == 0:
            _check_columns(engine)
    return sent, audited


def _check_columns(engine: Engine) -> None:
    """The columns are a cache of the jobs' own numbers: they must agree with them after every change."""
    cols = engine._cols
    for job in engine.jobs.values():
        f, r = job.features, job.row
        held = (
            cols.filled[r],
            cols.open[r],
            cols.children[r],
            cols.quantity[r],
            cols.begun[r],
            cols.slice[r],
        )
        assert held == (job.filled, job.open_qty, len(job.open), job.quantity, f.begun, job.slice_qty), (
            job.job_id
        )
        if f.begun:
            assert cols.offset[r] == f.volume_offset and cols.sign[r] == f.sign, job.job_id
        if f.arrival_mid is not None and not math.isnan(cols.arrival[r]):
            assert cols.arrival[r] == f.arrival_mid, job.job_id
        if len(job.open) == 1 and cols.one_known[r]:  # its one open child, as the columns' path reads it
            ((child_id, _, px, sent),) = job.open.values()
            one_px = float(cols.one_px[r])
            assert (cols.one_id[r], bool(cols.one_sent[r])) == (child_id, sent), job.job_id
            assert (math.isnan(one_px) and px is None) or one_px == px, job.job_id


def _random_file(tmp: Path, band: float | None) -> LoadedPolicy:
    """A network of random weights over the slice actions (sized in TWAP slices): varied decisions."""
    import torch

    torch.manual_seed(7)
    policy_files.save(PolicyNet(), tmp, "random", 1, band=band)
    return PolicyRegistry(tmp).load("random")


@pytest.mark.parametrize("which", ["rl-place@2", "rl-place@2-late", "random", "random-banded"])
def test_the_columnar_path_decides_as_the_per_job_path_bit_for_bit(which: str, tmp_path: Path) -> None:
    late = 45 if which.endswith("-late") else 0  # answers later than a decision interval (30 s)
    which = which.removesuffix("-late")
    if which.startswith("random"):
        policy = _random_file(tmp_path, 0.02 if which == "random-banded" else None)
    else:
        name, _, version = which.partition("@")
        policy = PolicyRegistry(SHIPPED).load(name, int(version))
    Columnar.batches, Columnar.placed = [], 0
    sent, audited = _drive(1, policy, late_s=late)
    columns, general = max(Columnar.batches), Columnar.placed  # audited: every action the general way
    ref_sent, ref_audited = _drive(10**9, policy, late_s=late)
    assert len(sent) > 100 and [_key(a) for a in sent] == [_key(a) for a in ref_sent]
    Columnar.placed = 0
    quiet, _ = _drive(1, policy, audit=False, late_s=late)  # no observation or action built per job
    assert [_key(a) for a in quiet] == [_key(a) for a in ref_sent]
    assert 0 < Columnar.placed < general  # many took the plain way, without ``_place``
    # The observations and actions themselves, float for float (NaN never appears in either).
    assert audited == ref_audited
    assert columns >= 8  # jobs were decided together


def test_the_children_written_in_one_pass_are_the_validated_models_byte_for_byte() -> None:
    """Every field but the decision's own wall-clock stamp (``ts_init``), over a day of the grid's jobs."""
    policy = PolicyRegistry(SHIPPED).load("rl-place", 2)
    Columnar.batches = []
    written, _ = _drive(1, policy, wire=True, audit=False)
    assert max(Columnar.batches) >= 8
    models, _ = _drive(1, policy)
    assert len(written) > 100
    assert [a.model_dump(exclude={"ts_init"}) for a in written] == [
        a.model_dump(exclude={"ts_init"}) for a in models
    ]
