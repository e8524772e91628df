"""``paceline/Execution-v0``: work one parent order against the synthetic market through the live decision
path: the worker's ``Engine`` (sizing, pricing at or inside the touch, cancel-first, the end-of-window
sweep) against the shared ``Venue`` (fill and impact model), one decision every ``decision_s`` seconds of
event time (``worker.sim``). What the agent learns is what the live worker sends.

Anchored on ABIDES-gym's execution environment: the observation is schema v1 of ``worker.policy``
(time and inventory left, spread, imbalance, drift and returns, volatility, volume against the curve); the
discrete actions (``worker.policy.ACTIONS``) are hold, market, or a limit at / inside the touch, sized in
multiples of the TWAP slice; resting orders are cancelled at the next decision. The reward is
implementation shortfall against the arrival mid (``market.costs``), in basis points of the job's
notional, step by step (fills as they happen); at the end the engine sweeps what is left at market, any
remainder the data could not fill is costed at the last mid, and a penalty per unit of quantity left at
the window's end is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from market.costs import fill_cost_bps
from market.synthetic import SESSION_CLOSE_S, SESSION_OPEN_S, SymbolSim, SymbolSpec
from models import ChildAction, OrdType, Side, Strategy
from worker.policy import (
    ACTION_SETS,
    ACTIONS,
    OBS_DIM,
    OBS_LIMIT,
    Action,
    ActionDef,
    Agent,
    Observation,
    Policy,
    action_of,
    scale,
)
from worker.sim import Simulation, assignment, parent_order

__all__ = ["ACTIONS", "EnvConfig", "ExecutionEnv", "scale"]

S = 1_000_000_000
HELD_OUT_SEED = 1_000_000  # market seeds at and above are the backtest's held-out days


@dataclass(frozen=True)
class EnvConfig:
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN")
    window_s: int = 1800
    decision_s: int = 30
    min_qty: int = 2_000
    max_qty: int = 20_000
    depth: int = 2  # book levels per tick: 2 keeps an episode near 0.3 s on this CPU
    warmup_s: int = 300
    leftover_penalty_bps: float = 10.0  # per unit fraction of the job still open at the window's end
    # "arrival": each fill costed against the arrival mid (implementation shortfall, the default).
    # "mid": against the mid when it fills; the drift since arrival, which no policy controls and which
    # dominates the variance of the arrival reward, is left out. A training signal only: evaluation and
    # the episode summary always use implementation shortfall against the arrival mid.
    reward: str = "arrival"
    actions: str = "slice"  # worker.policy.ACTION_SETS: "slice" or "schedule" (anchored on TWAP)
    band: float | None = None  # most a policy may fall behind the TWAP schedule (a fraction of the job)

    @property
    def action_defs(self) -> tuple[ActionDef, ...]:
        return ACTION_SETS[self.actions]


class ExecutionEnv(gym.Env[np.ndarray, np.int64]):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self.action_space = gym.spaces.Discrete(len(self.config.action_defs))
        self.observation_space = gym.spaces.Box(-OBS_LIMIT, OBS_LIMIT, (OBS_DIM,), np.float32)

    # --- episode set-up -----------------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any] | None, policy: Policy | Agent) -> None:
        super().reset(seed=seed)
        cfg, rng = self.config, self.np_random
        if cfg.reward not in ("arrival", "mid"):
            raise ValueError(f"unknown reward {cfg.reward!r}")
        opts = options or {}
        symbol = opts.get("symbol") or str(rng.choice(cfg.symbols))
        self.side = Side(opts.get("side") or str(rng.choice(["BUY", "SELL"])))
        lots = int(rng.integers(cfg.min_qty // 100, cfg.max_qty // 100 + 1))
        self.quantity = int(opts.get("quantity") or lots * 100)
        latest = SESSION_CLOSE_S - cfg.window_s - 60
        start_s = int(opts.get("start_s") or rng.integers(SESSION_OPEN_S + cfg.warmup_s, latest))
        price = float(opts.get("price") or round(float(rng.uniform(20, 400)), 2))
        # The market's seed stays below the backtest's held-out seeds: training never sees those days.
        self.market_args: dict[str, Any] = {
            "spec": SymbolSpec(symbol, price=price), "seed": int(rng.integers(HELD_OUT_SEED)),
            "depth": cfg.depth, "start_s": start_s - cfg.warmup_s, "close_s": start_s + cfg.window_s + 120,
        }  # fmt: skip
        sim = SymbolSim(**self.market_args)
        day = sim.open_ns - SESSION_OPEN_S * S
        self.start_ns = day + start_s * S
        self.end_ns = self.start_ns + cfg.window_s * S
        parent = parent_order(symbol, self.side.value, self.quantity, self.start_ns, self.end_ns,
                              name="env", strategy=Strategy.RL)  # fmt: skip
        self.sim = Simulation.start(assignment(parent), sim, policy, decision_s=cfg.decision_s)
        self._seen = 0  # fills already rewarded

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._start(seed, options, Agent())
        self.sim.advance()
        return scale(self._observe()), {}

    @property
    def job_id(self) -> str:
        return self.sim.job.job_id

    @property
    def filled(self) -> int:
        return self.sim.job.filled

    @property
    def arrival_mid(self) -> float | None:
        return self.sim.job.features.arrival_mid

    def _observe(self) -> Observation:
        return self.sim.engine.observe(self.job_id)

    # --- decisions ------------------------------------------------------------------------------------
    def slice_qty(self) -> int:
        return self.sim.job.slice_qty

    def action_of(self, index: int) -> Action:
        job = self.sim.job
        return action_of(self.config.action_defs[int(index)], job.slice_qty, self._observe(), job.context,
                         self.config.band)  # fmt: skip

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"invalid action {action!r}")
        return self.step_action(self.action_of(int(action)))

    def step_action(self, action: Action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One decision with any Action, through the engine exactly as a policy's."""
        self.sim.route(self.sim.engine.act(self.job_id, action))
        due = self.sim.advance()
        reward = self._fill_reward()
        info: dict[str, Any] = {}
        if not due:
            reward += self._end_reward()
            info = self.summary()
        return scale(self._observe()), float(reward), not due, False, info

    def _fill_reward(self) -> float:
        arrival = self.arrival_mid
        if arrival is None:
            return 0.0
        reward = 0.0
        for f, mid in zip(self.sim.fills[self._seen :], self.sim.fill_mids[self._seen :], strict=True):
            ref = mid if self.config.reward == "mid" else arrival
            # "mid" costs against the mid at the fill, normalised by the arrival notional like the rest.
            reward -= fill_cost_bps(self.side, ref, f.px, f.qty, self.quantity) * ref / arrival
        self._seen = len(self.sim.fills)
        return reward

    def _end_reward(self) -> float:
        """The opportunity cost of what the data could not fill (part of the shortfall) and the penalty on
        what the window's end found unfilled (a training signal only)."""
        arrival, last = self.arrival_mid, self.sim.last
        if arrival is None or last is None:
            return 0.0
        left = self.quantity - self.filled
        reward = -fill_cost_bps(self.side, arrival, last.mid, left, self.quantity)
        swept = sum(
            a.quantity for a in self.sim.sent
            if a.action is ChildAction.NEW and a.ord_type is OrdType.MARKET and a.ts_event >= self.end_ns
        )  # fmt: skip
        return reward - self.config.leftover_penalty_bps * swept / self.quantity

    def summary(self) -> dict[str, Any]:
        return self.sim.summary()

    def run_policy(self, policy: Policy, seed: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """One episode driven by a baseline (or any Policy) inside the engine; returns the summary."""
        self._start(seed, options, policy)
        self.sim.run()
        return self.summary()


gym.register(id="paceline/Execution-v0", entry_point="worker.env:ExecutionEnv")
