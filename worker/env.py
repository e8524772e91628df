"""``paceline/Execution-v0``: work one parent order against the synthetic market, with the shared fill and
impact model, one decision every ``decision_s`` seconds of event time.

Anchored on ABIDES-gym's execution environment: the observation is schema v1 of ``worker.policy``
(time and inventory left, spread, imbalance, drift and returns, volatility, volume against the curve); the
discrete actions are hold, market, or a limit at / inside the touch, sized in multiples of the TWAP
slice; resting orders are cancelled at the next decision. The reward is implementation shortfall against
the arrival mid, in basis points of the job's notional, step by step (fills as they happen); at the end
what is left is sent as a market order and a penalty per unit of quantity left is added.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from market.fills import FillModel
from market.prices import CENT, to_float
from market.synthetic import SESSION_CLOSE_S, SESSION_OPEN_S, SymbolSim, SymbolSpec
from models import Side, Tick
from worker.baselines import DAY_CURVE, volume_curve
from worker.features import Features
from worker.policy import OBS_DIM, Action, JobContext, Observation, Policy, PriceKind

# Discrete actions: (price kind, multiple of the TWAP slice).
ACTIONS: tuple[tuple[PriceKind, float], ...] = (
    (PriceKind.HOLD, 0.0),
    (PriceKind.MARKET, 1.0),
    (PriceKind.MARKET, 2.0),
    (PriceKind.LIMIT_TOUCH, 1.0),
    (PriceKind.LIMIT_TOUCH, 2.0),
    (PriceKind.LIMIT_INSIDE, 1.0),
)
OBS_SCALE = np.array([1, 1, 1, 1, 0.1, 1, 1, 0.02, 0.05, 0.1, 0.5, 1], dtype=np.float32)
OBS_LIMIT = 10.0


def scale(obs: Observation) -> np.ndarray:
    """The network's input: the observation vector scaled to order 1 and clipped."""
    return np.clip(obs.vector() * OBS_SCALE, -OBS_LIMIT, OBS_LIMIT)


@dataclass(frozen=True)
class EnvConfig:
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN")
    window_s: int = 1800
    decision_s: int = 30
    min_qty: int = 2_000
    max_qty: int = 20_000
    depth: int = 2  # book levels per tick: 2 keeps an episode near 0.3 s on this CPU
    warmup_s: int = 300
    leftover_penalty_bps: float = 10.0  # per unit fraction of the job still open at the end
    # "arrival": each fill costed against the arrival mid (implementation shortfall, the default).
    # "mid": against the mid when it fills; the drift since arrival, which no policy controls and which
    # dominates the variance of the arrival reward, is left out. A training signal only: evaluation and
    # the episode summary always use implementation shortfall against the arrival mid.
    reward: str = "arrival"


class ExecutionEnv(gym.Env[np.ndarray, np.int64]):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = cfg = config or EnvConfig()
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.observation_space = gym.spaces.Box(-OBS_LIMIT, OBS_LIMIT, (OBS_DIM,), np.float32)
        self.n_decisions = cfg.window_s // cfg.decision_s
        self._ids = itertools.count()

    # --- episode set-up -----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
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
        spec = SymbolSpec(symbol, price=price)
        self.sim = SymbolSim(
            spec, int(rng.integers(2**31)), depth=cfg.depth,
            start_s=start_s - cfg.warmup_s, close_s=start_s + cfg.window_s + 60,
        )  # fmt: skip
        day = self.sim.open_ns - SESSION_OPEN_S * 1_000_000_000
        self.start_ns = day + start_s * 1_000_000_000
        self.end_ns = self.start_ns + cfg.window_s * 1_000_000_000
        session = SESSION_CLOSE_S - SESSION_OPEN_S
        f0, f1 = (start_s - SESSION_OPEN_S) / session, (start_s + cfg.window_s - SESSION_OPEN_S) / session
        day_volume = spec.events_per_s * spec.trade_prob * spec.mean_trade_lots * 100 * session
        share = float(np.interp(f1, np.linspace(0, 1, len(DAY_CURVE)), DAY_CURVE)) - float(
            np.interp(f0, np.linspace(0, 1, len(DAY_CURVE)), DAY_CURVE)
        )
        self.features = Features(
            self.side, self.quantity, self.start_ns, self.end_ns,
            curve=volume_curve(f0, f1), expected_volume=day_volume * share,
        )  # fmt: skip
        self.fills = FillModel()
        self.job = JobContext(quantity=self.quantity)
        self.filled = 0
        self.cost = 0.0  # sum of sign * (px - arrival) * qty
        self.notional = 0.0
        self.step_i = 0
        self._pending: Tick | None = None
        self._advance(self.start_ns)
        return scale(self._observe()), {}

    # --- the market between decisions --------------------------------------------------------------
    def _advance(self, until_ns: int) -> float:
        """Step the market to ``until_ns``; returns the shortfall (bps) of passive fills on the way."""
        reward = 0.0
        while True:
            tick = self._pending or self.sim.step()
            self._pending = None
            if tick is None:
                break
            if tick.ts_event > until_ns:
                self._pending = tick
                break
            self.features.on_tick(tick)
            self.tick = tick
            for ex in self.fills.on_tick(tick):
                reward += self._book_fill(ex.price, ex.qty)
        return reward

    def _book_fill(self, price_units: int, qty: int) -> float:
        arrival = self.features.arrival_mid or self.tick.mid
        px = to_float(price_units)
        self.filled += qty
        self.notional += qty * px
        self.features.add_own_fill(qty, px)
        cost = self.side.sign * (px - arrival) * qty
        self.cost += cost
        if self.config.reward == "mid":
            return -1e4 * self.side.sign * (px - self.tick.mid) * qty / (arrival * self.quantity)
        return -1e4 * cost / (arrival * self.quantity)

    def _observe(self) -> Observation:
        open_qty = sum(o.qty for o in self.fills.resting.values())
        return self.features.observe(self.tick.ts_event, self.filled, open_qty)

    # --- decisions ------------------------------------------------------------------------------------
    def slice_qty(self) -> int:
        return max(100, round(self.quantity / self.n_decisions / 100) * 100)

    def action_of(self, index: int) -> Action:
        kind, mult = ACTIONS[int(index)]
        if kind is PriceKind.HOLD:
            return Action(PriceKind.HOLD)
        return Action(kind, int(self.slice_qty() * mult))

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"invalid action {action!r}")
        return self.step_action(self.action_of(int(action)))

    def step_action(self, action: Action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One decision with any Action (baselines size their own orders)."""
        reward = 0.0
        for oid in list(self.fills.resting):
            self.fills.cancel(oid)
        left = self.quantity - self.filled
        qty = min(action.quantity, left)
        if qty > 0 and action.price is not PriceKind.HOLD:
            reward += self._send(action.price, qty)
        self.step_i += 1
        next_ns = self.start_ns + self.step_i * self.config.decision_s * 1_000_000_000
        reward += self._advance(min(next_ns, self.end_ns))
        terminated = self.step_i >= self.n_decisions or self.filled >= self.quantity
        info: dict[str, Any] = {}
        if terminated:
            for oid in list(self.fills.resting):
                self.fills.cancel(oid)
            left = self.quantity - self.filled
            if left > 0:
                reward -= self.config.leftover_penalty_bps * left / self.quantity
                reward += self._send(PriceKind.MARKET, left)
            info = self.summary()
        return scale(self._observe()), float(reward), terminated, False, info

    def _send(self, kind: PriceKind, qty: int) -> float:
        oid = f"c{next(self._ids)}"
        if kind is PriceKind.MARKET:
            execs = self.fills.market(oid, self.side, qty, self.tick)
        else:
            bid, ask = self.fills.touch(self.tick)
            if kind is PriceKind.LIMIT_TOUCH:
                price = bid if self.side is Side.BUY else ask
            else:  # one tick inside, but never crossing
                price = min(bid + CENT, ask - CENT) if self.side is Side.BUY else max(ask - CENT, bid + CENT)
                if (self.side is Side.BUY and price <= bid) or (self.side is Side.SELL and price >= ask):
                    price = bid if self.side is Side.BUY else ask
            execs = self.fills.limit(oid, self.side, qty, price, self.tick)
        return sum(self._book_fill(e.price, e.qty) for e in execs)

    def summary(self) -> dict[str, Any]:
        arrival = self.features.arrival_mid or 0.0
        avg = self.notional / self.filled if self.filled else 0.0
        vwap = self.features.interval_vwap
        s = self.side.sign
        return {
            "symbol": self.sim.spec.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "filled": self.filled,
            "avg_px": avg,
            "arrival_mid": arrival,
            "is_bps": 1e4 * self.cost / (arrival * self.quantity) if arrival else 0.0,
            "vwap_slippage_bps": s * 1e4 * (avg - vwap) / vwap if vwap and avg else 0.0,
        }

    def run_policy(self, policy: Policy, seed: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """One episode driven by a baseline (or any Policy); returns the summary."""
        self.reset(seed=seed, options=options)
        while True:
            _, _, done, _, info = self.step_action(policy.decide(self._observe(), self.job))
            if done:
                return info


gym.register(id="paceline/Execution-v0", entry_point="worker.env:ExecutionEnv")
