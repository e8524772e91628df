"""The fill and impact model: how our child orders execute against a market we observe as ticks.
One implementation, used by the simulated venue (endpoint) and the RL environment (worker) alike.

- The book we trade against is the tick's depth, shifted by the impact of our own earlier aggressive fills
  (``market.impact``; the replayed or simulated data cannot know about us, so our impact is an overlay).
- A market order walks the levels. Beyond the levels the tick shows, the book is extended from what the
  data itself has shown so far (``DepthProfile``: the average spacing between shown levels and the average
  size of a shown level), level after level until the order is filled: every market order completes, at a
  price that grows with its size as it would in the real book.
- A limit order that crosses fills like a market order capped at its price; the rest rests. A resting order
  gets a queue position: the size displayed at its price when it arrived (zero when it improves the
  touch). Trades at or through its price by the other side consume the queue ahead, then fill it; a
  displayed size that drops below the queue ahead (cancellations) shortens the queue. When the opposite
  side's quote reaches its price, the size quoted at or through it is an incoming order: it consumes the
  queue ahead, then fills us, once per crossing (a quote that stays there is the same liquidity, not new).
  Filling the whole order the moment the price touches it would overstate passive strategies.
- Only aggressive fills cause impact: a passive fill is someone else's market order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from market.impact import Impact, ImpactParams
from market.prices import CENT, to_units
from models import Side, Tick


@dataclass(frozen=True, slots=True)
class Execution:
    order_id: str
    price: int  # price units
    qty: int
    aggressive: bool


@dataclass
class Resting:
    order_id: str
    side: Side
    price: int
    qty: int
    queue_ahead: int
    crossed: bool = False  # the opposite quote is at or through our price (counted once per crossing)


@dataclass(frozen=True)
class FillParams:
    # Our own trades' overlay: 0.01 cent per lot for good (linear: splitting or lumping an order moves the
    # price as much), 0.3 cent per sqrt(lot) that decays with a 30 s half-life.
    impact: ImpactParams = field(
        default_factory=lambda: ImpactParams(permanent=1.0, transient=30.0, permanent_linear=True)
    )
    depth_memory: int = 2_000  # ticks: the horizon of the depth profile's moving averages


class DepthProfile:
    """What the hidden part of the book looks like, learned from the levels the data shows: exponential
    moving averages of the spacing between adjacent shown levels and of a shown level's size."""

    __slots__ = ("_alpha", "size", "spacing")

    def __init__(self, memory: int) -> None:
        self._alpha = 1.0 / max(1, memory)
        self.spacing: float = CENT
        self.size: float = 0.0

    def observe(self, tick: Tick) -> None:
        levels = tick.asks or tick.bids
        if len(levels) >= 2:
            gap = abs(to_units(levels[-1].px) - to_units(levels[0].px)) / (len(levels) - 1)
            self.spacing += self._alpha * (max(float(CENT), gap) - self.spacing)
        sizes = [lv.sz for lv in tick.asks] + [lv.sz for lv in tick.bids] or [tick.bid_sz, tick.ask_sz]
        mean = sum(sizes) / len(sizes)
        self.size = mean if self.size == 0.0 else self.size + self._alpha * (mean - self.size)

    def step(self) -> int:
        """Price distance between two hidden levels: whole ticks, at least one."""
        return max(CENT, round(self.spacing / CENT) * CENT)


class FillModel:
    """Our orders on one instrument."""

    def __init__(self, params: FillParams | None = None) -> None:
        self.params = params or FillParams()
        self.impact = Impact(self.params.impact)
        self.resting: dict[str, Resting] = {}
        self.profile = DepthProfile(self.params.depth_memory)

    # --- the book as we see it -------------------------------------------------------------------------
    def _shift(self, t_ns: int) -> int:
        """Our impact, rounded to whole ticks of price."""
        return round(self.impact.offset(t_ns) / CENT) * CENT

    def levels(self, tick: Tick, side: Side) -> Iterator[tuple[int, int]]:
        """The opposite side's levels (price units, size) a ``side`` order would take, best first: the
        shown ones, then hidden ones from the depth profile without end (the caller stops)."""
        shown = self._shown(tick, side)
        step = self.profile.step() if side is Side.BUY else -self.profile.step()
        yield from shown
        last_px = shown[-1][0]
        size = max(1, round(self.profile.size or shown[-1][1]))
        while True:
            last_px += step
            if last_px <= 0:  # a sell walking to zero: nothing below
                return
            yield last_px, size

    def _shown(self, tick: Tick, side: Side) -> list[tuple[int, int]]:
        """The displayed levels a ``side`` order would meet (the opposite side), as we see them."""
        shift = self._shift(tick.ts_event)
        if side is Side.BUY:
            shown = [(to_units(lv.px), lv.sz) for lv in tick.asks] or [(to_units(tick.ask_px), tick.ask_sz)]
        else:
            shown = [(to_units(lv.px), lv.sz) for lv in tick.bids] or [(to_units(tick.bid_px), tick.bid_sz)]
        return [(p + shift, s) for p, s in shown]

    def touch(self, tick: Tick) -> tuple[int, int]:
        """Best bid and ask in price units, as we see them."""
        shift = self._shift(tick.ts_event)
        return to_units(tick.bid_px) + shift, to_units(tick.ask_px) + shift

    # --- orders ---------------------------------------------------------------------------------------
    def _take(self, order_id: str, side: Side, qty: int, tick: Tick, limit: int | None) -> list[Execution]:
        out: list[Execution] = []
        left = qty
        for price, size in self.levels(tick, side):
            if left == 0 or (limit is not None and (price > limit if side is Side.BUY else price < limit)):
                break
            take = min(left, size)
            out.append(Execution(order_id, price, take, aggressive=True))
            left -= take
        taken = qty - left
        if taken:
            self.impact.trade(side, taken, tick.ts_event)
        return out

    def market(self, order_id: str, side: Side, qty: int, tick: Tick) -> list[Execution]:
        """Execute at once against the book (shown, then profiled depth)."""
        return self._take(order_id, side, qty, tick, None)

    def limit(self, order_id: str, side: Side, qty: int, price: int, tick: Tick) -> list[Execution]:
        """Place a limit order: the marketable part fills now, the rest rests with a queue position."""
        if order_id in self.resting:
            raise ValueError(f"order {order_id} is already resting")
        fills = self._take(order_id, side, qty, tick, price)
        left = qty - sum(f.qty for f in fills)
        if left:
            self.resting[order_id] = Resting(order_id, side, price, left, self._displayed(tick, side, price))
        return fills

    def cancel(self, order_id: str) -> int:
        """Cancel a resting order; returns the quantity that was still open (0 if none)."""
        order = self.resting.pop(order_id, None)
        return order.qty if order else 0

    def _displayed(self, tick: Tick, side: Side, price: int) -> int:
        shift = self._shift(tick.ts_event)
        levels = tick.bids if side is Side.BUY else tick.asks
        for lv in levels:
            if to_units(lv.px) + shift == price:
                return lv.sz
        bid, ask = self.touch(tick)
        if side is Side.BUY and price == bid:
            return tick.bid_sz
        if side is Side.SELL and price == ask:
            return tick.ask_sz
        return 0

    def observe(self, tick: Tick) -> None:
        """Every market update, resting orders or not: the depth profile learns from it."""
        self.profile.observe(tick)

    def _meet(self, order: Resting, incoming: int, out: list[Execution]) -> bool:
        """``incoming`` shares reach our price: the queue ahead takes its part first, then us. True when
        that fills the order (it is gone)."""
        ahead = min(order.queue_ahead, incoming)
        order.queue_ahead -= ahead
        fill = min(order.qty, incoming - ahead)
        if fill:
            out.append(Execution(order.order_id, order.price, fill, aggressive=False))
            order.qty -= fill
            if order.qty == 0:
                del self.resting[order.order_id]
                return True
        return False

    def on_tick(self, tick: Tick) -> list[Execution]:
        """Advance every resting order by one market update; returns the passive fills."""
        out: list[Execution] = []
        bid, ask = self.touch(tick)
        shift = self._shift(tick.ts_event)
        for order in list(self.resting.values()):
            buy = order.side is Side.BUY
            crossing = (buy and ask <= order.price) or (not buy and bid >= order.price)
            if crossing and not order.crossed:
                offered = sum(
                    s
                    for p, s in self._shown(tick, order.side)
                    if (p <= order.price if buy else p >= order.price)
                )
                if self._meet(order, offered, out):
                    continue
            order.crossed = crossing
            traded = 0
            if tick.trade_sz and tick.trade_px is not None and tick.trade_side is not None:
                trade_px = to_units(tick.trade_px) + shift
                hits_us = (buy and tick.trade_side is Side.SELL and trade_px <= order.price) or (
                    not buy and tick.trade_side is Side.BUY and trade_px >= order.price
                )
                traded = tick.trade_sz if hits_us else 0
            if traded and self._meet(order, traded, out):
                continue
            order.queue_ahead = min(order.queue_ahead, self._displayed(tick, order.side, order.price))
        return out
