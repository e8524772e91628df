"""The learned-placement learner (``worker.placement``): a fork of the replay goes on exactly as the replay
itself, forks compare actions on the same messages, the fit finds a saving where there is one, and a policy
file that always picks the rule's action is the ``passive`` rule, decision for decision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from market.recorded import RecordedDay, generate_day
from models import Strategy
from worker import placement as pl
from worker import policy_files
from worker.backtest import TAIL_S, WARMUP_S, Episode, LobsterDay, PolicySpec, episodes, run_episode
from worker.baselines import PassiveSchedule
from worker.nets import PolicyNet
from worker.policy import Agent
from worker.policy_files import PolicyRegistry
from worker.sim import Simulation, assignment, parent_order

S = 1_000_000_000


@pytest.fixture(scope="module")
def day() -> LobsterDay:
    msgs = generate_day(11, "MID", profile="mid", end_s=38_400)  # 09:30-10:40
    return LobsterDay(RecordedDay.from_messages("MID", "2026-01-05", msgs, levels=5))


@pytest.fixture(scope="module")
def episode(day: LobsterDay) -> Episode:
    first = next(e for e in episodes(day, ("30m",), (0.02,)) if e.side == "BUY")
    return dataclasses.replace(first, quantity=6000)  # 60 lots: the rule's lead is a lot or more


def _start(day: LobsterDay, ep: Episode) -> Simulation:
    ticks, venue = day.market(ep.start_ns - WARMUP_S * S, ep.end_ns + TAIL_S * S)
    parent = parent_order(ep.symbol, ep.side, ep.quantity, ep.start_ns, ep.end_ns, strategy=Strategy.TWAP)
    return Simulation.start(assignment(parent), ticks, Agent(), venue=venue)


def _rule_to_end(sim: Simulation) -> None:
    rule = PassiveSchedule()
    while sim.advance():
        job = sim.job
        sim.route(sim.engine.act(job.job_id, rule.decide(sim.engine.observe(job.job_id), job.context)))


def test_a_fork_goes_on_exactly_as_the_replay(day: LobsterDay, episode: Episode) -> None:
    sim, rule = _start(day, episode), PassiveSchedule()
    for _ in range(12):  # some orders resting, some filled
        assert sim.advance()
        job = sim.job
        sim.route(sim.engine.act(job.job_id, rule.decide(sim.engine.observe(job.job_id), job.context)))
    assert sim.advance()
    before = len(sim.fills)
    fork = pl._fork(sim, day.day, episode.end_ns + TAIL_S * S)
    _rule_to_end(sim)
    _rule_to_end(fork)
    after = [(f.px, f.qty, f.liquidity) for f in sim.fills[before:]]
    assert after and after == [(f.px, f.qty, f.liquidity) for f in fork.fills]
    assert sim.job.filled == fork.job.filled == episode.quantity
    assert sim.last is not None and fork.last is not None and sim.last.seq == fork.last.seq


def test_forks_compare_every_action_against_the_rules_own(day: LobsterDay, episode: Episode) -> None:
    rng = np.random.default_rng(0)
    xs, outs, rule_is = pl.fork_episode(day, episode, forks=12, horizon=4, rng=rng)
    # Where every action comes to the same orders (a lot rounds them alike) there is no fork.
    assert 3 <= len(xs) <= 12 and np.isfinite(rule_is)
    out = np.asarray(outs).reshape(len(outs), len(pl.PLACEMENT_ACTIONS), 3)
    data = pl.Samples(np.asarray(xs), out[:, :, 0], out[:, :, 1], out[:, :, 2], np.full(len(xs), "mid"),
                     np.zeros(len(xs), dtype=int), np.full(len(xs), "30m"), {"mid": [rule_is]})  # fmt: skip
    adv = data.advantages(data.kappa())
    assert np.all(adv[:, pl.RULE_ACTION] == 0)
    assert np.any(adv != 0)  # the actions do differ somewhere on the same messages
    assert np.isfinite(adv).all()


def test_the_fit_finds_a_saving_where_the_state_has_one() -> None:
    rng = np.random.default_rng(1)
    n, a = 4000, len(pl.PLACEMENT_ACTIONS)
    x = rng.uniform(-1, 1, size=(n, 12)).astype(np.float32)
    adv = rng.normal(0, 2.0, size=(n, a)) + 1.0  # every other action costs 1 bp more than the rule ...
    adv[:, pl.RULE_ACTION] = 0.0
    adv[:, 1] -= 4.0 * (x[:, 5] > 0.3)  # ... but action 1 saves 3 bps when feature 5 is high
    net = pl.fit_net(x, adv, epochs=15)
    chosen = pl.choose(pl.scores_of(net, x), margin=0.5)
    high = x[:, 5] > 0.5
    assert (chosen[high] == 1).mean() > 0.9
    assert (chosen[x[:, 5] < 0.1] == pl.RULE_ACTION).mean() > 0.9
    _, lo, _, leaves = pl.realised(adv, chosen)
    assert lo > 0 and 0.1 < leaves < 0.5


def test_a_file_that_always_picks_the_rules_action_is_the_rule(
    day: LobsterDay, episode: Episode, tmp_path: Path
) -> None:
    net = PolicyNet(actions=len(pl.PLACEMENT_ACTIONS))
    with torch.no_grad():
        net.head.bias[pl.RULE_ACTION] += 1e6
    policy_files.save(net, tmp_path, "placed", 1, actions=pl.PLACEMENT_ACTIONS, band=pl.BAND)
    loaded = PolicyRegistry(tmp_path).load("placed")
    mine = run_episode(day, episode, PolicySpec(loaded.name, Strategy.RL, loaded))
    rule = run_episode(day, episode, PolicySpec("passive", Strategy.TWAP, PassiveSchedule()))
    assert mine["leaves_rule"] == 0.0 and mine["decisions"] >= 55
    assert mine["is_bps"] == rule["is_bps"] and mine["children"] == rule["children"]
    # And one that never does leaves it, and the backtest says how often.
    with torch.no_grad():
        net.head.bias[pl.RULE_ACTION] -= 2e6
    policy_files.save(net, tmp_path, "placed", 2, actions=pl.PLACEMENT_ACTIONS, band=pl.BAND)
    other = PolicyRegistry(tmp_path).load("placed", 2)
    row = run_episode(day, episode, PolicySpec(other.name, Strategy.RL, other))
    assert row["leaves_rule"] > 0.5


def test_paceline_train_placement_writes_a_policy_file_that_loads(
    day: LobsterDay, episode: Episode, tmp_path: Path
) -> None:
    from paceline.cli import main

    rng = np.random.default_rng(2)
    xs, outs, rule_is = pl.fork_episode(day, episode, forks=40, horizon=2, rng=rng)
    n = len(xs)
    out = np.asarray(outs).reshape(n, len(pl.PLACEMENT_ACTIONS), 3)
    data = pl.Samples(np.asarray(xs), out[:, :, 0], out[:, :, 1], out[:, :, 2], np.full(n, "mid"),
                      np.arange(n) % 8, np.full(n, "30m"), {"mid": [rule_is]})  # fmt: skip
    data.save(tmp_path / "forks.npz")
    rc = main(["train", "--samples", str(tmp_path / "forks.npz"), "--out", str(tmp_path / "pol"),
               "--name", "placed", "--no-progress"])  # fmt: skip
    assert rc == 0
    loaded = PolicyRegistry(tmp_path / "pol").load("placed")
    t = loaded.manifest.training
    assert t["samples"] == n and t["margin"] in pl.MARGINS and t["command"].startswith("paceline ")
    assert [a.definition() for a in loaded.manifest.actions] == list(pl.PLACEMENT_ACTIONS)
    assert loaded.manifest.band == pl.BAND and set(t["cross_validation"]) == {str(m) for m in pl.MARGINS}
    assert set(t["cross_validation"]["0.0"]) == {"all", "30m"} and t["forks_to_end"] == ["30m"]
