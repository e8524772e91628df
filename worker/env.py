"""``paceline/Execution-v0``: work one parent order against the synthetic market through the live decision
path: the worker's ``Engine`` (sizing, pricing at or inside the touch, cancel-first but for an order resting
at the price asked for again, the end-of-window sweep) against the shared ``Venue`` (fill and impact model),
one decision every ``decision_s`` seconds of event time (``worker.sim``). What the agent learns is what the
live worker sends.

Anchored on ABIDES-gym's execution environment: the observation is schema v1 of ``worker.policy``
(time and inventory left, spread, imbalance, drift and returns, volatility, volume against the curve); the
discrete actions (``worker.policy.ACTION_SETS``) are hold, market, or a limit at / inside the touch, sized
in multiples of the TWAP slice or to the TWAP schedule; a resting order is cancelled at the next decision
unless that decision asks for its price again (it keeps its place in the queue). The reward is
implementation shortfall against the arrival mid (``market.costs``), in basis points of the job's
notional, step by step (fills as they happen); at the end the engine sweeps what is left at market, any
remainder the data could not fill is costed at the last mid, and a penalty per unit of quantity left at
the window's end is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from market.costs import fill_cost_bps
from market.recorded import QueueFillModel, RecordedDay, find_days
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S
from market.synthetic import SymbolSim, SymbolSpec
from market.venue import Venue
from models import DEFAULT_SYMBOLS, ChildAction, OrdType, ParentOrder, Side, Strategy
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
from worker.policy_files import LoadedPolicy
from worker.sim import Simulation, assignment, parent_order

__all__ = ["ACTIONS", "EnvConfig", "ExecutionEnv", "scale"]

S = 1_000_000_000
HELD_OUT_SEED = 1_000_000  # market seeds at and above are the backtest's held-out days


@dataclass(frozen=True)
class EnvConfig:
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    window_s: int = 1800
    decision_s: int = 30
    min_qty: int = 2_000
    max_qty: int = 20_000
    depth: int = 2  # book levels per tick: 2 keeps an episode near 0.3 s on this CPU
    warmup_s: int = 300
    leftover_penalty_bps: float = 10.0  # per unit fraction of the job still open at the window's end
    # "arrival": each fill costed against the arrival mid (implementation shortfall, the default).
    # "mid": against the mid when it fills; the drift since arrival, which no policy controls and which
    # dominates the variance of the arrival reward, is left out. "twap": the arrival shortfall less that
    # of TWAP run in lockstep over the same ticks (a shadow job): the paired difference the backtest
    # reports, step by step; the drift both are exposed to cancels out. Training signals only:
    # evaluation and the episode summary always use implementation shortfall against the arrival mid.
    reward: str = "arrival"
    actions: str = "slice"  # worker.policy.ACTION_SETS: "slice" or "schedule" (anchored on TWAP)
    band: float | None = None  # most a policy may fall behind the TWAP schedule (a fraction of the job)
    # A spread of episodes (each empty or None: the fixed settings above): windows in seconds drawn per
    # episode (0 = the full day, 09:35 to 15:58); sizes as a share of the day's volume, log-uniform; the
    # day's volatility; and a share of episodes on recorded (LOBSTER-format) days from a folder.
    windows: tuple[int, ...] = ()
    sizes: tuple[float, float] | None = None
    vols: tuple[float, float] | None = None
    lobster_dir: str | None = None
    lobster_share: float = 0.0

    @property
    def action_defs(self) -> tuple[ActionDef, ...]:
        return ACTION_SETS[self.actions]


class ExecutionEnv(gym.Env[np.ndarray, np.int64]):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self.action_space = gym.spaces.Discrete(len(self.config.action_defs))
        self.observation_space = gym.spaces.Box(-OBS_LIMIT, OBS_LIMIT, (OBS_DIM,), np.float32)
        self._days: list[RecordedDay] | None = None
        self.shadow: Simulation | None = None

    # --- episode set-up -----------------------------------------------------------------------------
    def _start(
        self, seed: int | None, options: dict[str, Any] | None, policy: Policy | LoadedPolicy | Agent
    ) -> None:
        super().reset(seed=seed)
        cfg, rng = self.config, self.np_random
        if cfg.reward not in ("arrival", "mid", "twap"):
            raise ValueError(f"unknown reward {cfg.reward!r}")
        opts = options or {}
        window = int(opts.get("window_s") or (rng.choice(cfg.windows) if cfg.windows else cfg.window_s))
        self.side = Side(opts.get("side") or str(rng.choice(["BUY", "SELL"])))
        share = float(np.exp(rng.uniform(*np.log(cfg.sizes)))) if cfg.sizes else None
        if cfg.lobster_dir and not opts and rng.random() < cfg.lobster_share:
            self._start_recorded(window, share, policy)
            return
        symbol = opts.get("symbol") or str(rng.choice(cfg.symbols))
        if window:
            latest = SESSION_CLOSE_S - window - 60
            start_s = int(opts.get("start_s") or rng.integers(SESSION_OPEN_S + cfg.warmup_s, latest))
            end_s = start_s + window
        else:
            start_s, end_s = SESSION_OPEN_S + cfg.warmup_s, SESSION_CLOSE_S - 120
        price = float(opts.get("price") or round(float(rng.uniform(20, 400)), 2))
        vol = float(rng.uniform(*cfg.vols)) if cfg.vols else SymbolSpec.daily_vol
        spec = SymbolSpec(symbol, price=price, daily_vol=vol)
        if opts.get("quantity"):
            self.quantity = int(opts["quantity"])
        elif share is not None:
            self.quantity = max(100, round(share * spec.day_volume / 100) * 100)
        else:
            self.quantity = int(rng.integers(cfg.min_qty // 100, cfg.max_qty // 100 + 1)) * 100
        # The market's seed stays below the backtest's held-out seeds: training never sees those days.
        self.market_args: dict[str, Any] = {
            "spec": spec, "seed": int(rng.integers(HELD_OUT_SEED)), "depth": cfg.depth,
            "start_s": max(SESSION_OPEN_S, start_s - cfg.warmup_s), "close_s": end_s + 120,
        }  # fmt: skip
        sim = SymbolSim(**self.market_args)
        day = sim.open_ns - SESSION_OPEN_S * S
        self.start_ns = day + start_s * S
        self.end_ns = day + end_s * S
        parent = parent_order(symbol, self.side.value, self.quantity, self.start_ns, self.end_ns,
                              name="env", strategy=Strategy.RL)  # fmt: skip
        ticks = list(sim) if cfg.reward == "twap" else sim
        self.sim = Simulation.start(assignment(parent), ticks, policy, decision_s=cfg.decision_s)
        self.shadow = None
        if cfg.reward == "twap":
            shadow = parent.model_copy(update={"strategy": Strategy.TWAP})
            self.shadow = Simulation.start(assignment(shadow), ticks, decision_s=cfg.decision_s)
        self._shadow_seen = 0
        self._seen = 0  # fills already rewarded

    def _start_recorded(
        self, window: int, share: float | None, policy: Policy | LoadedPolicy | Agent
    ) -> None:
        """An episode on a recorded day of ``lobster_dir`` (read once per environment)."""
        cfg, rng = self.config, self.np_random
        if self._days is None:
            self._days = [RecordedDay.read(p) for p in find_days(Path(cfg.lobster_dir or "."))]
        day = self._days[int(rng.integers(len(self._days)))]
        first_s = max(SESSION_OPEN_S, (day.first_ns - day.day_ns) // S) + cfg.warmup_s
        last_s = min(SESSION_CLOSE_S, (day.last_ns - day.day_ns) // S) - 120
        length = window or (last_s - first_s)
        start_s = int(rng.integers(first_s, max(first_s + 1, last_s - length)))
        self.start_ns = day.day_ns + start_s * S
        self.end_ns = self.start_ns + min(length, last_s - start_s) * S
        self.quantity = max(100, round((share or 0.01) * day.day_volume / 100) * 100)
        parent = parent_order(day.symbol, self.side.value, self.quantity, self.start_ns, self.end_ns,
                              name="env", strategy=Strategy.RL)  # fmt: skip

        def run(p: ParentOrder, pol: Policy | LoadedPolicy | Agent | None) -> Simulation:
            fills = QueueFillModel()  # each job its own queue positions in the same file
            ticks = day.ticks(fills, self.start_ns - cfg.warmup_s * S, self.end_ns + 120 * S)
            return Simulation.start(assignment(p), ticks, pol, decision_s=cfg.decision_s,
                                    venue=Venue(books={day.symbol: fills}))  # fmt: skip

        self.sim = run(parent, policy)
        shadow = parent.model_copy(update={"strategy": Strategy.TWAP})
        self.shadow = run(shadow, None) if cfg.reward == "twap" else None
        self._seen = self._shadow_seen = 0

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
        reward = self._fill_reward(done=not due)
        info: dict[str, Any] = {}
        if not due:
            reward += self._end_reward()
            info = self.summary()
        return scale(self._observe()), float(reward), not due, False, info

    def _fill_reward(self, done: bool = False) -> float:
        arrival = self.arrival_mid
        if arrival is None:
            return 0.0
        reward = 0.0
        for f, mid in zip(self.sim.fills[self._seen :], self.sim.fill_mids[self._seen :], strict=True):
            ref = mid if self.config.reward == "mid" else arrival
            # "mid" costs against the mid at the fill, normalised by the arrival notional like the rest.
            reward -= fill_cost_bps(self.side, ref, f.px, f.qty, self.quantity) * ref / arrival
        self._seen = len(self.sim.fills)
        if self.shadow is not None:  # TWAP over the same ticks, up to the same moment (to its end at the end)
            if done:
                self.shadow.run()
            elif self.sim.last is not None:
                self.shadow.run_to(self.sim.last.ts_event)
            for f in self.shadow.fills[self._shadow_seen :]:
                reward += fill_cost_bps(self.side, arrival, f.px, f.qty, self.quantity)
            self._shadow_seen = len(self.shadow.fills)
        return reward

    def _end_reward(self) -> float:
        """The opportunity cost of what the data could not fill (part of the shortfall) and the penalty on
        what the window's end found unfilled (a training signal only)."""
        arrival, last = self.arrival_mid, self.sim.last
        if arrival is None or last is None:
            return 0.0
        left = self.quantity - self.filled
        reward = -fill_cost_bps(self.side, arrival, last.mid, left, self.quantity)
        if self.shadow is not None and self.shadow.last is not None:
            shadow_left = self.quantity - self.shadow.job.filled
            reward += fill_cost_bps(self.side, arrival, self.shadow.last.mid, shadow_left, self.quantity)
        swept = sum(
            a.quantity for a in self.sim.sent
            if a.action is ChildAction.NEW and a.ord_type is OrdType.MARKET and a.ts_event >= self.end_ns
        )  # fmt: skip
        return reward - self.config.leftover_penalty_bps * swept / self.quantity

    def summary(self) -> dict[str, Any]:
        return self.sim.summary()

    def run_policy(
        self, policy: Policy | LoadedPolicy, seed: int, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One episode driven by a baseline (or any Policy) inside the engine; returns the summary."""
        self._start(seed, options, policy)
        self.sim.run()
        return self.summary()


gym.register(id="paceline/Execution-v0", entry_point="worker.env:ExecutionEnv")
