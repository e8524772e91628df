"""``paceline train``: PPO (stable-baselines3) on ``paceline/Execution-v0``, exported as a policy file.

The actor's weights are copied into ``worker.nets.PolicyNet`` (the same architecture as SB3's default
MLP actor: two tanh layers of 64) and exported with ``torch.export``; the manifest records the training
configuration and a quick evaluation against TWAP on fresh seeds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from worker import policy_files
from worker.env import EnvConfig, ExecutionEnv
from worker.nets import PolicyNet, one_thread


def export_actor(model: PPO, actions: int) -> PolicyNet:
    net = PolicyNet(hidden=64, actions=actions)
    pol = model.policy
    net.body.load_state_dict(pol.mlp_extractor.policy_net.state_dict())
    net.head.load_state_dict(pol.action_net.state_dict())
    return net.eval()


def train(
    out_dir: Path,
    name: str,
    *,
    steps: int,
    seed: int,
    n_envs: int = 4,
    config: EnvConfig | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    eval_episodes: int = 40,
    processes: bool = False,
    command: str = "",
    verbose: int = 0,
    init: Path | None = None,
    prefer: int | None = None,
    prefer_logit: float = 2.0,
    learning_rate: float = 3e-4,
    ent_coef: float = 0.01,
) -> Path:
    """``processes``: one process per environment (both cores of this machine), else all in this one.
    ``prefer``: start the actor preferring that action (``prefer_logit`` added to its score), so that
    exploration begins around a known placement (the schedule anchored one) instead of uniform."""
    cfg = config or EnvConfig()
    one_thread()

    def make() -> gym.Env[Any, Any]:
        return Monitor(ExecutionEnv(cfg))

    factories = [make for _ in range(n_envs)]
    venv = VecNormalize(
        SubprocVecEnv(factories) if processes else DummyVecEnv(factories),
        norm_obs=False,
        norm_reward=True,
        gamma=1.0,
    )
    venv.seed(seed)
    if init is not None:  # go on from a checkpoint (same action set and network) in this environment
        model = PPO.load(init, env=venv, device="cpu", seed=seed, verbose=verbose)
    else:
        model = PPO(
            "MlpPolicy", venv, seed=seed, n_steps=max(64, min(512, steps // n_envs)), batch_size=256,
            gamma=1.0, gae_lambda=0.95, ent_coef=ent_coef, learning_rate=learning_rate, verbose=verbose,
            policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
        )  # fmt: skip
        if prefer is not None:
            head = model.policy.action_net
            assert isinstance(head, torch.nn.Linear)
            with torch.no_grad():
                head.bias[prefer] += prefer_logit
    # Our own logger: SB3's default makes an empty /tmp/SB3-<time> folder on every learn(), never removed.
    model.set_logger(Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else []))
    callbacks: list[BaseCallback] = []
    if checkpoint_dir is not None:
        callbacks.append(
            CheckpointCallback(save_freq=max(1, 20_000 // n_envs), save_path=str(checkpoint_dir))
        )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=progress, callback=callbacks or None)
    seconds = time.perf_counter() - t0
    net = export_actor(model, len(cfg.action_defs))
    from worker.evaluate import quick_check

    evaluation = quick_check(net, cfg, episodes=eval_episodes)
    versions = policy_files.PolicyRegistry(out_dir).versions(name)
    version = (versions[-1] + 1) if versions else 1
    training: dict[str, Any] = {
        "algorithm": "PPO (stable-baselines3)", "timesteps": steps, "seed": seed, "n_envs": n_envs,
        "seconds": round(seconds, 1), "env": "paceline/Execution-v0", "env_config": asdict(cfg),
        "command": command,
        "initialised_from": str(init) if init is not None else None,
        "prior": {"action": prefer, "logit": prefer_logit} if prefer is not None else None,
        "learning_rate": learning_rate, "ent_coef": ent_coef,
        "data": "synthetic market (market.synthetic), market seeds below 1,000,000 from the env's RNG"
        + (f"; {cfg.lobster_share:.0%} of episodes on the generated LOBSTER-format days in {cfg.lobster_dir}"
           if cfg.lobster_dir else ""),
    }  # fmt: skip
    return policy_files.save(net, out_dir, name, version, actions=cfg.action_defs, band=cfg.band,
                             training=training, evaluation=evaluation)  # fmt: skip
