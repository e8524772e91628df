"""Turn ticks, fills and a job into the policy's Observation. One implementation for the live worker and the
RL environment, so a policy trained in the environment sees exactly what it will see in production.

The market's part of an observation is the same for every job on a symbol, so it is kept once per symbol
(``Tape``) and updated once per tick, whatever the number of jobs; a job keeps only what is its own (its
arrival mid and the market volume at its start). A tick then costs O(1), not O(jobs), and a decision reads
the tape's figures for that tick, computed at most once.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from market.costs import arrives, vwap
from market.prices import PX_SCALE, to_units
from models import Side, Tick
from worker.policy import OBS_DIM, Observation

_SAMPLE_NS = 10_000_000_000  # mid sampled every 10 s for returns and volatility
_VOL_SAMPLES = 30  # five minutes of 10 s returns
_SHORT_SAMPLES = 3  # 30 s


def _imbalance(tick: Tick, k: int) -> float:
    bids = tick.bids[:k] if tick.bids else ()
    asks = tick.asks[:k] if tick.asks else ()
    bv = sum(lv.sz for lv in bids) if bids else tick.bid_sz
    av = sum(lv.sz for lv in asks) if asks else tick.ask_sz
    return 0.0 if bv + av == 0 else (bv - av) / (bv + av)


@dataclass(frozen=True, slots=True)
class MarketView:
    """The market's part of an observation at one tick, unsigned (a job signs it toward its side)."""

    mid: float
    spread_bps: float
    imbalance_1: float
    imbalance_5: float
    ret_short_bps: float
    vol_bps: float


class Tape:
    """One symbol's market as every job on it sees it: the latest tick, the mid sampled every 10 s from the
    first tick, and the traded volume and notional (integer price units: exact differences) so far."""

    def __init__(self) -> None:
        self.last: Tick | None = None
        self.volume = 0
        self.notional_units = 0
        self._mids: deque[float] = deque(maxlen=_VOL_SAMPLES + 1)
        self._next_sample = 0
        self._view: MarketView | None = None
        self._vol: float | None = None  # from the sampled mids alone: kept until the next sample

    def on_tick(self, tick: Tick) -> None:
        if tick.ts_event >= self._next_sample:
            self._mids.append(tick.mid)
            self._next_sample = tick.ts_event + _SAMPLE_NS
            self._vol = None
        if tick.trade_sz and tick.trade_px is not None:
            self.volume += tick.trade_sz
            self.notional_units += tick.trade_sz * to_units(tick.trade_px)
        self.last = tick
        self._view = None

    def view(self) -> MarketView:
        """The figures at the latest tick, computed once per tick however many jobs ask."""
        if self._view is not None:
            return self._view
        tick = self.last
        if tick is None:
            raise ValueError("no market data yet")
        mid, mids = tick.mid, self._mids
        if (vol := self._vol) is None:
            rets = [1e4 * math.log(b / a) for a, b in pairwise(mids)]
            vol = (math.sqrt(sum(r * r for r in rets) / len(rets)) * math.sqrt(6)) if rets else 0.0
            self._vol = vol
        short = 1e4 * math.log(mid / mids[-1 - _SHORT_SAMPLES]) if len(mids) > _SHORT_SAMPLES else 0.0
        self._view = MarketView(
            mid=mid, spread_bps=1e4 * tick.spread / mid, imbalance_1=_imbalance(tick, 1),
            imbalance_5=_imbalance(tick, 5), ret_short_bps=short, vol_bps=vol,
        )  # fmt: skip
        return self._view


class Features:
    """One job's view of its symbol's ``Tape``. The engine calls ``begin`` on the first tick at or after the
    job's start (before the tape takes that tick): the arrival mid is that tick's, and the market volume
    counts from that tick on (``market.costs.arrives`` is the same rule for the TCA and the live page)."""

    def __init__(
        self,
        side: Side,
        quantity: int,
        start_ns: int,
        end_ns: int,
        *,
        tape: Tape | None = None,
        curve: Callable[[float], float] | None = None,
        expected_volume: float | None = None,
    ) -> None:
        self.sign = side.sign
        self.quantity = quantity
        self.start_ns, self.end_ns = start_ns, end_ns
        self.tape = tape or Tape()
        self.curve = curve or (lambda e: e)
        self.expected_volume = expected_volume
        self.arrival_mid: float | None = None
        self._begun = False
        self._base_volume = self._base_units = 0  # the tape's totals when the job began
        self._own_volume, self._own_notional = 0, 0.0  # our aggressive fills (the data cannot know them)

    @property
    def last(self) -> Tick | None:
        return self.tape.last

    def begin(self, tick: Tick) -> None:
        """``tick`` is the first at or after the start; the tape has not taken it yet."""
        if self._begun:
            return
        self._begun = True
        if arrives(self.arrival_mid, self.start_ns, tick.ts_event):
            self.arrival_mid = tick.mid
        self._base_volume, self._base_units = self.tape.volume, self.tape.notional_units

    def on_tick(self, tick: Tick) -> None:
        """A job on a tape of its own (tests, tools): begin at the start, then feed the tape."""
        if not self._begun and tick.ts_event >= self.start_ns:
            self.begin(tick)
        self.tape.on_tick(tick)

    def add_own_fill(self, qty: int, px: float) -> None:
        """Our own fills are market volume too (the data source cannot know about them)."""
        self._own_volume += qty
        self._own_notional += qty * px

    @property
    def begun(self) -> bool:
        return self._begun

    @property
    def volume_offset(self) -> int:
        """Once begun, the market volume is the tape's plus this: our aggressive fills less the tape's
        volume when the job began (the engine keeps it as a column)."""
        return self._own_volume - self._base_volume

    @property
    def market_volume(self) -> int:
        if not self._begun:
            return self._own_volume
        return self.tape.volume + self.volume_offset

    @property
    def interval_vwap(self) -> float | None:
        market = (self.tape.notional_units - self._base_units) / PX_SCALE if self._begun else 0.0
        return vwap(market + self._own_notional, self.market_volume)

    def elapsed(self, t_ns: int) -> float:
        return min(1.0, max(0.0, (t_ns - self.start_ns) / (self.end_ns - self.start_ns)))

    def observe(self, t_ns: int, filled: int, open_qty: int) -> Observation:
        m = self.tape.view()
        if self.arrival_mid is None:
            self.arrival_mid = m.mid  # the mid prevailing when the job starts
        arrival, s = self.arrival_mid, self.sign
        elapsed = self.elapsed(t_ns)
        # The curve only scales an expected volume: without one it is not evaluated (np.interp: ~5 µs).
        expected = self.expected_volume * self.curve(elapsed) if self.expected_volume else 0.0
        volume = self.market_volume
        return Observation(
            time_elapsed=elapsed,
            inventory_left=1.0 - filled / self.quantity,
            open_frac=open_qty / self.quantity,
            schedule_gap=filled / self.quantity - elapsed,
            spread_bps=m.spread_bps,
            imbalance_1=s * m.imbalance_1,
            imbalance_5=s * m.imbalance_5,
            drift_bps=s * 1e4 * (m.mid - arrival) / arrival,
            ret_short_bps=s * m.ret_short_bps,
            vol_bps=m.vol_bps,
            volume_ratio=volume / expected if expected > 0 else 1.0,
            market_volume=volume / self.quantity,
        )


def observe_columns(
    m: MarketView, t_ns: int, *, sign: np.ndarray, quantity: np.ndarray, start: np.ndarray, end: np.ndarray,
    market_volume: np.ndarray, arrival: np.ndarray, filled: np.ndarray, open_qty: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``observe`` of many jobs on one tape at once, from their numbers as columns (the integers int64,
    ``sign`` and ``arrival`` float64; jobs without an expected volume, begun, their arrival set): row k
    holds job k's observation fields in order (float64). Each field is the same IEEE operations in the same
    order as ``observe``'s (integers are exact in float64 at these sizes), so the rows equal the
    observations bit for bit; a test compares."""
    elapsed = np.minimum(1.0, np.maximum(0.0, (t_ns - start) / (end - start)))
    done = filled / quantity
    columns: dict[str, np.ndarray | float] = {
        "time_elapsed": elapsed,
        "inventory_left": 1.0 - done,
        "open_frac": open_qty / quantity,
        "schedule_gap": done - elapsed,
        "spread_bps": m.spread_bps,
        "imbalance_1": sign * m.imbalance_1,
        "imbalance_5": sign * m.imbalance_5,
        "drift_bps": sign * 1e4 * (m.mid - arrival) / arrival,
        "ret_short_bps": sign * m.ret_short_bps,
        "vol_bps": m.vol_bps,
        "volume_ratio": 1.0,  # no expected volume: the ratio is neutral
        "market_volume": market_volume / quantity,
    }
    rows = np.empty((len(quantity), OBS_DIM), dtype=np.float64)
    for k, name in enumerate(Observation.names()):
        rows[:, k] = columns[name]
    return rows
