"""Market data messages."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import Field, model_validator

from models.common import Message, Price, Side, Size, Symbol, TimestampNs


class BookLevel(Message):
    kind: Literal["level"] = "level"
    px: Price
    sz: Size


class Tick(Message):
    """One normalised market-data update for one equity: the L1 quote, optional depth, optional trade.

    ``seq`` is the venue's sequence number for the instrument; redundant feeds are merged on it.
    ``ts_event`` is when the venue says it happened, ``ts_init`` when Paceline created the message.
    """

    kind: Literal["tick"] = "tick"
    symbol: Symbol
    venue: str = Field(default="SIM", min_length=1, max_length=16)
    seq: int = Field(ge=0)
    ts_event: TimestampNs
    ts_init: TimestampNs
    bid_px: Price
    bid_sz: Size
    ask_px: Price
    ask_sz: Size
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    trade_px: Price | None = None
    trade_sz: Size = 0
    trade_side: Side | None = None  # aggressor side, when the venue tells it
    volume: Size = 0  # cumulative traded volume of the session

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Runs on every decode on the tick path, so the common case (no depth) is kept to two compares.
        if self.bid_px >= self.ask_px:
            raise ValueError(f"crossed or locked quote: bid {self.bid_px} >= ask {self.ask_px}")
        if self.bids or self.asks:
            _check_depth(self)
        if self.trade_sz and self.trade_px is None:
            raise ValueError("trade_sz without trade_px")
        return self

    @property
    def mid(self) -> float:
        return (self.bid_px + self.ask_px) / 2.0

    @property
    def spread(self) -> float:
        return self.ask_px - self.bid_px


def _check_depth(tick: Tick) -> None:
    bids, asks = tick.bids, tick.asks
    if bids and bids[0].px != tick.bid_px:
        raise ValueError("first bid level does not match bid_px")
    if asks and asks[0].px != tick.ask_px:
        raise ValueError("first ask level does not match ask_px")
    if any(a.px <= b.px for a, b in pairwise(bids)):
        raise ValueError("bid levels must be strictly descending")
    if any(a.px >= b.px for a, b in pairwise(asks)):
        raise ValueError("ask levels must be strictly ascending")
