"""An L2 order book: aggregated size per price level, with integrity checks.

Events that would corrupt the book (reducing a level that is not there, or by more than it holds) raise
BookError and leave the book unchanged, so the caller can count, report and resynchronise. A crossed or
locked book can happen in a real feed for a moment; it is kept but reported by ``validate``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from market.prices import to_float
from models import BookLevel, Side, Tick


class BookError(ValueError):
    """An event inconsistent with the book (it was not applied)."""


@dataclass(frozen=True, slots=True)
class Level:
    price: int  # price units (market.prices)
    size: int


class Book:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        # Bids keyed by -price so both sides iterate best first.
        self._bids: SortedDict = SortedDict(operator.neg)
        self._asks: SortedDict = SortedDict()

    def _side(self, side: Side) -> SortedDict:
        return self._bids if side is Side.BUY else self._asks

    # --- events -------------------------------------------------------------------------------------
    def add(self, side: Side, price: int, size: int) -> None:
        if size <= 0:
            raise BookError(f"add of non-positive size {size} at {price}")
        if price <= 0:
            raise BookError(f"add at non-positive price {price}")
        levels = self._side(side)
        levels[price] = levels.get(price, 0) + size

    def reduce(self, side: Side, price: int, size: int) -> None:
        """Cancel, delete or execute ``size`` at ``price``; the level goes when it reaches zero."""
        if size <= 0:
            raise BookError(f"reduce of non-positive size {size} at {price}")
        levels = self._side(side)
        have = levels.get(price)
        if have is None:
            raise BookError(f"reduce {size} at {price} on the {side.value} side: no such level")
        if size > have:
            raise BookError(f"reduce {size} at {price} on the {side.value} side exceeds the level's {have}")
        if size == have:
            del levels[price]
        else:
            levels[price] = have - size

    def set_level(self, side: Side, price: int, size: int) -> None:
        """Overwrite one level (snapshots and resynchronisation); size 0 removes it."""
        if size < 0:
            raise BookError(f"negative size {size} at {price}")
        levels = self._side(side)
        if size == 0:
            levels.pop(price, None)
        else:
            levels[price] = size

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()

    # --- queries ------------------------------------------------------------------------------------
    def best(self, side: Side) -> Level | None:
        levels = self._side(side)
        if not levels:
            return None
        price, size = levels.peekitem(0)
        return Level(price, size)

    def best_bid(self) -> Level | None:
        return self.best(Side.BUY)

    def best_ask(self) -> Level | None:
        return self.best(Side.SELL)

    def size_at(self, side: Side, price: int) -> int:
        return int(self._side(side).get(price, 0))

    def mid(self) -> float | None:
        """Mid in price units (may fall between ticks), or None with an empty side."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) / 2

    def spread(self) -> int | None:
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return ask.price - bid.price

    def depth(self, side: Side, k: int) -> list[Level]:
        levels = self._side(side)
        return [Level(p, levels[p]) for p in levels.islice(0, k)]

    def levels(self, side: Side) -> int:
        return len(self._side(side))

    def imbalance(self, k: int = 1) -> float:
        """(bid volume - ask volume) / total over the top ``k`` levels: +1 all bids, -1 all asks."""
        bv = sum(lv.size for lv in self.depth(Side.BUY, k))
        av = sum(lv.size for lv in self.depth(Side.SELL, k))
        return 0.0 if bv + av == 0 else (bv - av) / (bv + av)

    def validate(self) -> list[str]:
        """Integrity problems, empty when the book is sound."""
        issues = []
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None:
            if bid.price > ask.price:
                issues.append(f"crossed: bid {bid.price} > ask {ask.price}")
            elif bid.price == ask.price:
                issues.append(f"locked: bid == ask == {bid.price}")
        for side in (Side.BUY, Side.SELL):
            issues += [
                f"non-positive size {s} at {p} ({side.value})" for p, s in self._side(side).items() if s <= 0
            ]
        return issues

    def to_tick(self, *, seq: int, ts_event: int, ts_init: int, depth: int = 0, **trade: object) -> Tick:
        """The book's L1 (and ``depth`` levels) as a Tick. Raises BookError for an empty side."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            raise BookError("no two-sided quote")
        bids = tuple(BookLevel(px=to_float(lv.price), sz=lv.size) for lv in self.depth(Side.BUY, depth))
        asks = tuple(BookLevel(px=to_float(lv.price), sz=lv.size) for lv in self.depth(Side.SELL, depth))
        return Tick(
            symbol=self.symbol, seq=seq, ts_event=ts_event, ts_init=ts_init,
            bid_px=to_float(bid.price), bid_sz=bid.size, ask_px=to_float(ask.price), ask_sz=ask.size,
            bids=bids, asks=asks, **trade,
        )  # fmt: skip
