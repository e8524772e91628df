from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from worker.baselines import TWAP, AlmgrenChriss
from worker.env import ACTIONS, EnvConfig, ExecutionEnv
from worker.policy import Action, PriceKind

SMALL = EnvConfig(window_s=600, decision_s=30, depth=3)


def test_passes_the_gymnasium_env_checker() -> None:
    check_env(ExecutionEnv(SMALL), skip_render_check=True)


def test_registered_under_its_id() -> None:
    env = gym.make("paceline/Execution-v0", config=SMALL)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)


def test_same_seed_same_episode() -> None:
    a, b = ExecutionEnv(SMALL), ExecutionEnv(SMALL)
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    assert np.array_equal(oa, ob)
    for act in [1, 3, 0, 2, 5, 4] * 4:
        ra, rb = a.step(act), b.step(act)
        assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1]
        if ra[2]:
            break


@pytest.mark.parametrize("index", range(len(ACTIONS)))
def test_every_action_ends_with_the_job_complete(index: int) -> None:
    env = ExecutionEnv(SMALL)
    env.reset(seed=index)
    total, done, info = 0.0, False, {}
    while not done:
        _, r, done, _, info = env.step(index)
        total += r
    assert info["filled"] == info["quantity"]
    # The reward is the shortfall, step by step, plus the leftover penalty: its sum is -IS minus the penalty.
    assert total <= -info["is_bps"] + 1e-6


def test_reward_is_implementation_shortfall_against_arrival() -> None:
    env = ExecutionEnv(SMALL)
    env.reset(seed=11, options={"side": "BUY", "quantity": 1000})
    arrival = env.arrival_mid
    assert arrival is not None
    _, r, done, _, info = env.step_action(Action(PriceKind.MARKET, 1000))
    assert env.filled == 1000 and done
    notional = sum(f.qty * f.px for f in env.sim.fills)
    assert r == pytest.approx(-1e4 * (notional / 1000 - arrival) / arrival)
    assert r == pytest.approx(-info["is_bps"])
    assert r < 0  # buying at the ask costs at least half the spread


def test_baselines_run_in_the_environment() -> None:
    env = ExecutionEnv(SMALL)
    for policy in (TWAP(), AlmgrenChriss(kappa_t=3.0)):
        info = env.run_policy(policy, seed=5, options={"quantity": 6_000})
        assert info["filled"] == 6_000 and np.isfinite(info["is_bps"])


def test_mid_reward_leaves_out_the_drift_but_the_summary_stays_arrival_shortfall() -> None:
    a = ExecutionEnv(EnvConfig(window_s=600, depth=3))
    m = ExecutionEnv(EnvConfig(window_s=600, depth=3, reward="mid"))
    ra = rm = 0.0
    for env in (a, m):
        env.reset(seed=21, options={"side": "BUY", "quantity": 4_000})
    done = False
    while not done:
        _, r1, done, _, info_a = a.step(3)
        _, r2, _, _, info_m = m.step(3)
        ra, rm = ra + r1, rm + r2
    assert info_a["is_bps"] == pytest.approx(info_m["is_bps"])  # same market, same fills
    assert ra != pytest.approx(rm)
    with pytest.raises(ValueError, match="unknown reward"):
        ExecutionEnv(EnvConfig(reward="bogus")).reset(seed=1)


def test_the_schedule_action_set_and_band_keep_an_episode_near_twap() -> None:
    env = ExecutionEnv(EnvConfig(window_s=600, depth=3, actions="schedule", band=0.05))
    assert env.action_space.n == 6
    env.reset(seed=3, options={"quantity": 8_000})
    done, worst = False, 0.0
    while not done:
        o = env.sim.engine.observe(env.job_id)
        worst = max(worst, o.time_elapsed - (1 - o.inventory_left))
        _, _, done, _, info = env.step(0)  # always HOLD: only the band makes it trade
    assert info["filled"] == 8_000
    assert worst < 0.05 + 0.06  # one decision of drift past the band, at most (20 decisions: 5 % each)


def test_the_twap_reward_is_the_paired_difference_and_zero_for_twap_itself() -> None:
    cfg = EnvConfig(window_s=600, depth=3, actions="schedule", reward="twap", leftover_penalty_bps=0.0)
    env = ExecutionEnv(cfg)
    for index, seed in ((1, 4), (3, 5)):  # 1: the schedule at market (TWAP itself); 3: passive, ahead
        env.reset(seed=seed, options={"quantity": 6_000, "side": "SELL"})
        total, done = 0.0, False
        while not done:
            _, r, done, _, info = env.step(index)
            total += r
        assert env.shadow is not None
        twap = env.shadow.summary()
        assert total == pytest.approx(-(info["is_bps"] - twap["is_bps"]), abs=1e-6)
        if index == 1:
            assert total == pytest.approx(0.0, abs=1e-9)
