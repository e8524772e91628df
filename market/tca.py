"""Transaction-cost analysis from the ticks a service follows: the endpoint's for the client's final report,
the live page's for the running figure, by one rule.

Per symbol: the mid and the running sums of the market's trade prints. Per parent: the arrival mid (the
mid at the first tick at or after its start) and the market's notional and volume at that point; when the
parent ends, implementation shortfall (with the unfilled remainder costed at the mid then) and VWAP
slippage by the one definition in ``market.costs``, in basis points (positive = cost).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from market.costs import arrives, shortfall_bps, vwap_slippage_bps
from models import Side, Tick


@dataclass
class _Market:
    mid: float = 0.0
    ts: int = 0
    notional: float = 0.0
    volume: int = 0


@dataclass
class _Parent:
    symbol: str
    side: Side
    start_ns: int
    arrival: float | None = None
    notional0: float = 0.0
    volume0: int = 0


class Tca:
    """Thread-safe: ticks arrive on the Pulsar listener thread while FIX and native threads track parents
    and ask for mids (one lock; each call is a few dictionary operations)."""

    def __init__(self) -> None:
        self.markets: dict[str, _Market] = {}
        self.parents: dict[str, _Parent] = {}
        self._lock = threading.Lock()

    def mid(self, symbol: str) -> float | None:
        with self._lock:
            m = self.markets.get(symbol)
            return m.mid if m and m.mid > 0 else None

    def market_ts(self, symbol: str) -> int | None:
        """The event time of the symbol's latest tick (None before the first)."""
        with self._lock:
            m = self.markets.get(symbol)
            return m.ts if m else None

    def on_tick(self, t: Tick) -> None:
        with self._lock:
            self._on_tick(t)

    def _on_tick(self, t: Tick) -> None:
        m = self.markets.get(t.symbol)
        if m is None:
            m = self.markets[t.symbol] = _Market()
        m.mid = (t.bid_px + t.ask_px) / 2
        m.ts = t.ts_event
        if t.trade_px is not None and t.trade_sz:
            m.notional += t.trade_px * t.trade_sz
            m.volume += t.trade_sz
        for p in self.parents.values():
            if p.symbol == t.symbol and arrives(p.arrival, p.start_ns, t.ts_event):
                p.arrival, p.notional0, p.volume0 = m.mid, m.notional, m.volume

    def track(self, parent_id: str, symbol: str, side: Side, start_ns: int) -> None:
        with self._lock:
            self._track(parent_id, symbol, side, start_ns)

    def _track(self, parent_id: str, symbol: str, side: Side, start_ns: int) -> None:
        if parent_id in self.parents:
            return
        p = self.parents[parent_id] = _Parent(symbol, side, start_ns)
        m = self.markets.get(symbol)
        if m is not None and arrives(None, start_ns, m.ts):  # already started: the mid now is its arrival
            p.arrival, p.notional0, p.volume0 = m.mid, m.notional, m.volume

    def running(self, parent_id: str, avg_px: float, filled: int, quantity: int) -> float | None:
        """The shortfall so far (bps), what is not filled marked at the mid now; None where unknown."""
        with self._lock:
            p = self.parents.get(parent_id)
            if p is None or p.arrival is None or quantity <= 0:
                return None
            mid = self.markets[p.symbol].mid
        return shortfall_bps(p.side, p.arrival, quantity=quantity, filled=filled, notional=avg_px * filled,
                             end_mid=mid)  # fmt: skip

    def drop(self, parent_id: str) -> None:
        with self._lock:
            self.parents.pop(parent_id, None)

    def finish(
        self, parent_id: str, avg_px: float, filled: int, quantity: int
    ) -> tuple[float | None, float | None]:
        """(shortfall bps, VWAP slippage bps) for a finished parent; None where unknown."""
        with self._lock:
            p = self.parents.pop(parent_id, None)
            if p is None or p.arrival is None or quantity <= 0:
                return None, None
            m = _Market(**vars(self.markets[p.symbol]))  # a copy: the listener thread moves it on
        shortfall = shortfall_bps(
            p.side, p.arrival, quantity=quantity, filled=filled, notional=avg_px * filled, end_mid=m.mid
        )
        vol = m.volume - p.volume0
        slip = vwap_slippage_bps(p.side, avg_px, (m.notional - p.notional0) / vol if vol else None)
        return round(shortfall, 3), None if slip is None else round(slip, 3)
