"""Turn ticks, fills and a job into the policy's Observation. One implementation for the live worker and the
RL environment, so a policy trained in the environment sees exactly what it will see in production."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from itertools import pairwise

from market.costs import arrives
from models import Side, Tick
from worker.policy import Observation

_SAMPLE_NS = 10_000_000_000  # mid sampled every 10 s for returns and volatility
_VOL_SAMPLES = 30  # five minutes of 10 s returns
_SHORT_SAMPLES = 3  # 30 s


def _imbalance(tick: Tick, k: int) -> float:
    bids = tick.bids[:k] if tick.bids else ()
    asks = tick.asks[:k] if tick.asks else ()
    bv = sum(lv.sz for lv in bids) if bids else tick.bid_sz
    av = sum(lv.sz for lv in asks) if asks else tick.ask_sz
    return 0.0 if bv + av == 0 else (bv - av) / (bv + av)


class Features:
    def __init__(
        self,
        side: Side,
        quantity: int,
        start_ns: int,
        end_ns: int,
        *,
        curve: Callable[[float], float] | None = None,
        expected_volume: float | None = None,
    ) -> None:
        self.sign = side.sign
        self.quantity = quantity
        self.start_ns, self.end_ns = start_ns, end_ns
        self.curve = curve or (lambda e: e)
        self.expected_volume = expected_volume
        self.arrival_mid: float | None = None
        self.last: Tick | None = None
        self.market_volume = 0
        self.trade_notional = 0.0  # for the interval VWAP
        self._mids: deque[float] = deque(maxlen=_VOL_SAMPLES + 1)
        self._next_sample = 0

    def on_tick(self, tick: Tick) -> None:
        if tick.ts_event >= self._next_sample:
            self._mids.append(tick.mid)
            self._next_sample = tick.ts_event + _SAMPLE_NS
        if arrives(self.arrival_mid, self.start_ns, tick.ts_event):
            self.arrival_mid = tick.mid
        if tick.ts_event >= self.start_ns and tick.trade_sz and tick.trade_px is not None:
            self.market_volume += tick.trade_sz
            self.trade_notional += tick.trade_sz * tick.trade_px
        self.last = tick

    def add_own_fill(self, qty: int, px: float) -> None:
        """Our own fills are market volume too (the data source cannot know about them)."""
        self.market_volume += qty
        self.trade_notional += qty * px

    @property
    def interval_vwap(self) -> float | None:
        return self.trade_notional / self.market_volume if self.market_volume else None

    def elapsed(self, t_ns: int) -> float:
        return min(1.0, max(0.0, (t_ns - self.start_ns) / (self.end_ns - self.start_ns)))

    def observe(self, t_ns: int, filled: int, open_qty: int) -> Observation:
        tick = self.last
        if tick is None:
            raise ValueError("no market data yet")
        if self.arrival_mid is None:
            self.arrival_mid = tick.mid  # the mid prevailing when the job starts
        mid, arrival, s = tick.mid, self.arrival_mid, self.sign
        mids = list(self._mids)
        rets = [1e4 * math.log(b / a) for a, b in pairwise(mids)]
        vol = (math.sqrt(sum(r * r for r in rets) / len(rets)) * math.sqrt(6)) if rets else 0.0
        short = 1e4 * math.log(mid / mids[-1 - _SHORT_SAMPLES]) if len(mids) > _SHORT_SAMPLES else 0.0
        elapsed = self.elapsed(t_ns)
        expected = (self.expected_volume or 0.0) * self.curve(elapsed)
        return Observation(
            time_elapsed=elapsed,
            inventory_left=1.0 - filled / self.quantity,
            open_frac=open_qty / self.quantity,
            schedule_gap=filled / self.quantity - elapsed,
            spread_bps=1e4 * tick.spread / mid,
            imbalance_1=s * _imbalance(tick, 1),
            imbalance_5=s * _imbalance(tick, 5),
            drift_bps=s * 1e4 * (mid - arrival) / arrival,
            ret_short_bps=s * short,
            vol_bps=vol,
            volume_ratio=self.market_volume / expected if expected > 0 else 1.0,
            market_volume=self.market_volume / self.quantity,
        )
