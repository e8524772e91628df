"""Transaction-cost analysis from the ticks and fills a service sees: the endpoint's for the client's final
report, the live page's for the running figure, ``paceline tca``'s replay of the recorded topics, by one
rule.

Per symbol: the mid, the touch, the running sums of the market's trade prints and the recent mids (to find
the mid a fill met, by the fill's event time and liquidity). Per parent: the arrival mid (the mid at the first
tick at or after its start) and the market's notional and volume at that point; the fills it has made
(each against the mid when it was made); and the time-weighted far touch since arrival (what a TWAP that
took the touch all along would have paid). When the parent ends, ``finish`` gives its ``TcaFigures``:
implementation shortfall in its four parts, slippage against the interval VWAP and against that TWAP, by
the one set of definitions in ``market.costs`` (bps, positive = cost).

Fed the same ticks and fills in event-time order, two instances give the same figures: the TCA report
replays the topics through this class and so matches what the client was told.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from market.costs import arrives, shortfall_bps, shortfall_parts, slippage_bps, vwap
from models import Fill, Liquidity, Side, TcaFigures, Tick

RECENT_MIDS = 4096  # per symbol: a fill up to this many ticks old is costed against the mid of its time


@dataclass
class _Market:
    mid: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    ts: int = 0
    notional: float = 0.0
    volume: int = 0
    # The latest tick's own print: a parent that arrives at that tick counts it whether the tick or the
    # order was seen first (the replay sees the order first, the endpoint either way).
    print_notional: float = 0.0
    print_volume: int = 0
    # Integrals of the touch over event time (price x ns, each quote held until the next tick): a parent's
    # TWAP at the touch is the difference since its arrival over the time, so a tick costs O(1), not
    # O(parents).
    bid_area: float = 0.0
    ask_area: float = 0.0
    recent: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=RECENT_MIDS))

    def area(self, side: Side) -> float:
        """The far touch's integral: the ask's for a buy, the bid's for a sell."""
        return self.ask_area if side is Side.BUY else self.bid_area

    def far(self, side: Side) -> float:
        return self.ask if side is Side.BUY else self.bid

    def mid_at(self, ts: int, *, before: bool = False) -> float:
        """The mid prevailing at event time ``ts``: the latest tick at or before it (``before``: strictly
        before it)."""
        for t, mid in reversed(self.recent):
            if t < ts or (t == ts and not before):
                return mid
        return self.recent[0][1] if self.recent else self.mid


@dataclass
class _Parent:
    symbol: str
    side: Side
    start_ns: int
    arrival: float | None = None
    arrival_ts: int = 0
    notional0: float = 0.0
    volume0: int = 0
    fills: set[str] = field(default_factory=set)
    seen_notional: float = 0.0
    mid_notional: float = 0.0
    first_mid: float | None = None
    area0: float = 0.0  # the far touch's integral at arrival

    def twap(self, m: _Market) -> float | None:
        """The time-weighted far touch from arrival to the latest tick (the touch then, if no time passed)."""
        span = m.ts - self.arrival_ts
        return (m.area(self.side) - self.area0) / span if span > 0 else (m.far(self.side) or None)


class Tca:
    """Thread-safe: ticks arrive on the Pulsar listener thread while FIX and native threads track parents
    and ask for mids (one lock; each call is a few dictionary operations)."""

    def __init__(self) -> None:
        self.markets: dict[str, _Market] = {}
        self.parents: dict[str, _Parent] = {}
        self._waiting: dict[str, set[str]] = {}  # per symbol: parents without an arrival mid yet
        # Per symbol, after a restore from the recorded ticks: the last one it fed (event time, seq). The
        # service's subscription then redelivers from where it acknowledged; those already counted are
        # passed over until the first newer one.
        self._restored: dict[str, tuple[int, int]] = {}
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
        mark = self._restored.get(t.symbol)
        if mark is not None:
            if (t.ts_event, t.seq) <= mark:
                return
            del self._restored[t.symbol]
        m = self.markets.get(t.symbol)
        if m is None:
            m = self.markets[t.symbol] = _Market()
        if m.ts:
            held = max(0, t.ts_event - m.ts)
            m.bid_area += m.bid * held
            m.ask_area += m.ask * held
        m.mid, m.bid, m.ask, m.ts = (t.bid_px + t.ask_px) / 2, t.bid_px, t.ask_px, t.ts_event
        m.recent.append((t.ts_event, m.mid))
        if t.trade_px is not None and t.trade_sz:
            m.print_notional, m.print_volume = t.trade_px * t.trade_sz, t.trade_sz
        else:
            m.print_notional, m.print_volume = 0.0, 0
        m.notional += m.print_notional
        m.volume += m.print_volume
        waiting = self._waiting.get(t.symbol)
        if waiting:
            for pid in [pid for pid in waiting if arrives(None, self.parents[pid].start_ns, t.ts_event)]:
                waiting.discard(pid)
                self._arrive(self.parents[pid], m)

    def restore(self, ticks: Iterable[Tick], fills: Iterable[Fill]) -> None:
        """A restarted service's state for the parents it tracks again (``track`` first): the symbol's
        recorded ticks and their fills fed as they were seen live (``feed``); the same ticks redelivered by
        its subscription afterwards are not counted twice."""
        ticks = list(ticks)
        feed(self, ticks, fills)
        with self._lock:
            for t in ticks:
                self._restored[t.symbol] = (t.ts_event, t.seq)

    @staticmethod
    def _arrive(p: _Parent, m: _Market) -> None:
        # The arrival tick's print is in the order's life (at or after its start).
        p.arrival, p.arrival_ts = m.mid, m.ts
        p.notional0, p.volume0 = m.notional - m.print_notional, m.volume - m.print_volume
        p.area0 = m.area(p.side)

    def track(self, parent_id: str, symbol: str, side: Side, start_ns: int) -> None:
        with self._lock:
            self._track(parent_id, symbol, side, start_ns)

    def _track(self, parent_id: str, symbol: str, side: Side, start_ns: int) -> None:
        if parent_id in self.parents:
            return
        p = self.parents[parent_id] = _Parent(symbol, side, start_ns)
        m = self.markets.get(symbol)
        if m is not None and arrives(None, start_ns, m.ts):  # already started: the mid now is its arrival
            self._arrive(p, m)
        else:
            self._waiting.setdefault(symbol, set()).add(parent_id)

    def on_fill(self, f: Fill) -> float | None:
        """A fill of a tracked parent, costed against the mid when it was made (once per fill id): that mid,
        or None if the fill is not counted (untracked, no market yet, or seen before)."""
        with self._lock:
            p = self.parents.get(f.parent_id)
            m = self.markets.get(f.symbol)
            if p is None or m is None or f.fill_id in p.fills:
                return None
            p.fills.add(f.fill_id)
            # The mid of the quote the fill met: a taker's, the book it crossed (the tick of its time); a
            # maker's, the book it rested in, before the tick whose trade went through it (that tick's move
            # is the market's, and lands in timing).
            mid = m.mid_at(f.ts_event, before=f.liquidity is Liquidity.MAKER)
            if p.first_mid is None:
                p.first_mid = mid
            p.seen_notional += f.px * f.qty
            p.mid_notional += mid * f.qty
            return mid

    def running(self, parent_id: str, avg_px: float, filled: int, quantity: int) -> float | None:
        """The shortfall so far (bps), what is not filled marked at the mid now; None where unknown."""
        with self._lock:
            p = self.parents.get(parent_id)
            if p is None or p.arrival is None or quantity <= 0:
                return None
            mid = self.markets[p.symbol].mid
        return shortfall_bps(p.side, p.arrival, quantity=quantity, filled=filled, notional=avg_px * filled,
                             end_mid=mid)  # fmt: skip

    def arrival(self, parent_id: str) -> float | None:
        with self._lock:
            p = self.parents.get(parent_id)
            return None if p is None else p.arrival

    def drop(self, parent_id: str) -> None:
        with self._lock:
            self._pop(parent_id)

    def _pop(self, parent_id: str) -> _Parent | None:
        p = self.parents.pop(parent_id, None)
        if p is not None:
            self._waiting.get(p.symbol, set()).discard(parent_id)
        return p

    def finish(self, parent_id: str, avg_px: float, filled: int, quantity: int) -> TcaFigures | None:
        """A finished parent's figures, marked at the latest tick (once: it is no longer tracked)."""
        with self._lock:
            p = self._pop(parent_id)
            if p is None or p.arrival is None or quantity <= 0:
                return None
            return _figures(p, self.markets[p.symbol], avg_px, filled, quantity)


def tracked_from(start_ns: int, seen_ns: int) -> int:
    """Where a replay tracks a parent from, so that it arrives where the live service's ``track`` did: at
    the first tick at or after the later of its start and the market time the desk accepted it (its
    ``ts_init``: the latest tick's then)."""
    return max(start_ns, seen_ns)


def feed(
    tca: Tca, ticks: Iterable[Tick], fills: Iterable[Fill], *, end_ns: int | None = None
) -> dict[str, float]:
    """Recorded ticks and fills through ``tca`` as a service saw them live: in event-time order, a tick
    before a fill of its time (the tick made it); ticks after ``end_ns`` left out. The mid each fill it
    counted was costed against, by fill id."""
    mids: dict[str, float] = {}
    pending = iter(sorted(fills, key=lambda f: f.ts_event))
    nxt = next(pending, None)
    for t in ticks:
        if end_ns is not None and t.ts_event > end_ns:
            break
        while nxt is not None and nxt.ts_event < t.ts_event:
            if (mid := tca.on_fill(nxt)) is not None:
                mids[nxt.fill_id] = mid
            nxt = next(pending, None)
        tca.on_tick(t)
    while nxt is not None:
        if (mid := tca.on_fill(nxt)) is not None:
            mids[nxt.fill_id] = mid
        nxt = next(pending, None)
    return mids


def _figures(p: _Parent, m: _Market, avg_px: float, filled: int, quantity: int) -> TcaFigures:
    assert p.arrival is not None
    notional = avg_px * filled
    parts = shortfall_parts(
        p.side, p.arrival, quantity=quantity, filled=filled, notional=notional, end_mid=m.mid,
        first_mid=p.first_mid, mid_notional=p.mid_notional, seen_notional=p.seen_notional,
    )  # fmt: skip
    vol = m.volume - p.volume0
    interval = vwap(m.notional - p.notional0, vol)
    twap = p.twap(m)

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    def r6(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    return TcaFigures(
        quantity=quantity, filled=filled, avg_px=round(avg_px, 6), arrival_mid=p.arrival,
        arrival_ts=p.arrival_ts, first_fill_mid=p.first_mid, end_mid=m.mid, end_ts=m.ts,
        interval_vwap=r6(interval), twap_px=r6(twap),
        is_bps=round(parts.total, 3), delay_bps=round(parts.delay, 3), spread_bps=round(parts.spread, 3),
        timing_bps=round(parts.timing, 3), opportunity_bps=round(parts.opportunity, 3),
        vwap_slippage_bps=r(slippage_bps(p.side, avg_px, interval)),
        twap_slippage_bps=r(slippage_bps(p.side, avg_px, twap)),
    )  # fmt: skip
