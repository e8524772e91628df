"""One decision path: the same policy over the same ticks gives identical child orders whether it runs in the
RL environment (the training path), in the backtest, or in the live engine as the worker service drives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from market.synthetic import SymbolSim
from market.venue import Venue
from models import ChildOrderAction, VenueCommand, VenueOp
from worker import policy_files
from worker.baselines import TWAP, AlmgrenChriss
from worker.engine import Engine
from worker.env import EnvConfig, ExecutionEnv
from worker.nets import PolicyNet
from worker.policy import scale
from worker.policy_files import PolicyRegistry
from worker.sim import SIM_WORKER

CFG = EnvConfig(window_s=900, decision_s=30, depth=3)


def _key(a: ChildOrderAction) -> tuple[Any, ...]:
    return (a.action, a.child_id, a.quantity, a.ord_type, a.limit_px, a.ts_event, a.epoch)


def _live(env: ExecutionEnv, policy: object | None) -> list[ChildOrderAction]:
    """The episode's job and market driven the way ``WorkerService`` drives its engine: ticks, then the
    venue's fills and acks as they come back."""
    job = env.sim.job
    a = job.assignment
    engine = Engine(SIM_WORKER, PolicyRegistry(Path("/nonexistent")), decision_s=CFG.decision_s)
    venue = Venue()
    p = a.parent
    venue.command(VenueCommand(command_id="open", op=VenueOp.OPEN, job_id=a.job_id, parent_id=p.parent_id,
                               symbol=p.symbol, side=p.side, quantity=a.quantity, epoch=a.epoch,
                               ts_init=a.ts_init))  # fmt: skip
    assert engine.assign(a, policy)  # type: ignore[arg-type]
    sent: list[ChildOrderAction] = []

    def deliver(msgs: list[Any]) -> None:
        for m in msgs:
            engine.on_execution(m)

    for tick in SymbolSim(**env.market_args):
        deliver(venue.on_tick(tick))
        actions = engine.on_tick(tick)
        sent += actions
        for act in actions:
            deliver(venue.action(act))
    return sent


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> policy_files.LoadedPolicy:
    torch.manual_seed(3)
    net = PolicyNet()
    with torch.no_grad():  # a policy that uses every kind of action, not just the argmax of a fresh net
        net.head.bias.copy_(torch.tensor([0.0, -0.5, -1.0, 0.6, 0.1, 0.4]))
        net.head.weight.mul_(8.0)
    folder = tmp_path_factory.mktemp("policies")
    policy_files.save(net, folder, "probe", 1)
    return PolicyRegistry(folder).load("probe")


@pytest.mark.parametrize("seed", [4, 9])
def test_a_policy_file_sends_the_same_child_orders_in_training_and_live(
    seed: int, policy_file: policy_files.LoadedPolicy
) -> None:
    env = ExecutionEnv(CFG)
    obs, _ = env.reset(seed=seed, options={"quantity": 9_000})
    done = False
    while not done:  # the learner's side of the training loop: scaled observation in, action index out
        index = int(np.argmax(policy_file.scores(obs[None, :])[0]))
        obs, _, done, _, info = env.step(index)
    trained = env.sim.sent
    kinds = {(a.action, a.ord_type) for a in trained}
    assert len(kinds) >= 3, f"the probe policy should exercise several order kinds, got {kinds}"
    assert info["filled"] == info["quantity"]
    assert [_key(a) for a in _live(env, policy_file)] == [_key(a) for a in trained]


@pytest.mark.parametrize("policy", [TWAP(), AlmgrenChriss(kappa_t=3.0)], ids=["twap", "ac"])
def test_a_baseline_sends_the_same_child_orders_in_the_backtest_path_and_live(policy: Any) -> None:
    env = ExecutionEnv(CFG)
    info = env.run_policy(policy, seed=12, options={"quantity": 7_000})
    assert info["filled"] == 7_000
    assert [_key(a) for a in _live(env, policy)] == [_key(a) for a in env.sim.sent]


def test_the_scaled_observation_is_the_networks_input_on_both_paths() -> None:
    env = ExecutionEnv(CFG)
    obs, _ = env.reset(seed=2)
    assert np.array_equal(obs, scale(env.sim.engine.observe(env.job_id)))
