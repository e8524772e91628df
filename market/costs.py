"""Execution cost, one definition for the RL environment's reward and summary, the backtest, the client's
TCA and the live page.

Implementation shortfall (Perold) against the arrival mid, in basis points of the order's notional at
arrival, positive = cost:

    IS = side * [ sum(fill px * qty) - filled * arrival  +  (quantity - filled) * (end mid - arrival) ]
         / (quantity * arrival) * 1e4

The second term is the opportunity cost of what did not fill, marked at the mid when the order ended: an
order that leaves quantity behind cannot look cheaper than one that completes. VWAP slippage compares the
average fill with the market's volume-weighted price over the order's life.

The shortfall splits into four parts that add up to it exactly (``shortfall_parts``), with ``m_i`` the mid
of the quote fill ``i`` met (``market.tca``: a taker's, the book it crossed; a maker's, the book it rested in)
and ``m_0`` that of the first fill:

    delay       = side * filled * (m_0 - arrival)            the market's move before we first traded
    spread      = side * sum(qty_i * (px_i - m_i))           paid over the mid at each fill: spread and impact
    timing      = side * sum(qty_i * (m_i - m_0))            the mid's move while we traded
    opportunity = side * (quantity - filled) * (end mid - arrival)   what did not fill
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from models import Side

BPS = 1e4


def vwap(notional: float, volume: float) -> float | None:
    """Volume-weighted price, ``notional / volume``; None without volume. One definition for the interval
    VWAP (the worker's features, the client's TCA) and an order's average fill."""
    return notional / volume if volume else None


class _Traded(Protocol):
    @property
    def qty(self) -> int: ...
    @property
    def px(self) -> float: ...


def traded(fills: Iterable[_Traded]) -> tuple[int, float]:
    """Shares filled and their notional (``vwap`` of the two is the average fill)."""
    qty, notional = 0, 0.0
    for f in fills:
        qty += f.qty
        notional += f.qty * f.px
    return qty, notional


def arrives(arrival_mid: float | None, start_ns: int, ts_ns: int) -> bool:
    """The arrival-mid rule, one definition for the worker's features, the client's TCA and the live page:
    the arrival mid is the mid of the first tick at or after the order's start (True: this tick's), and an
    order first seen after its start takes the mid prevailing then."""
    return arrival_mid is None and ts_ns >= start_ns


def shortfall_bps(
    side: Side, arrival_mid: float, *, quantity: int, filled: int, notional: float, end_mid: float | None
) -> float:
    """Implementation shortfall in bps with the unfilled remainder costed at ``end_mid`` (the arrival mid
    when unknown, i.e. no opportunity cost can be measured)."""
    if arrival_mid <= 0 or quantity <= 0:
        raise ValueError(
            f"shortfall needs a positive arrival mid and quantity, got {arrival_mid}, {quantity}"
        )
    left = max(0, quantity - filled)
    cost = (notional - filled * arrival_mid) + left * (_mark(arrival_mid, end_mid) - arrival_mid)
    return side.sign * cost / (quantity * arrival_mid) * BPS


def _mark(arrival_mid: float, end_mid: float | None) -> float:
    """Where what did not fill is marked: the end mid, or the arrival mid when it is unknown."""
    return arrival_mid if end_mid is None or end_mid <= 0 else end_mid


def fill_cost_bps(side: Side, reference: float, px: float, qty: int, quantity: int) -> float:
    """One fill's share of the shortfall against ``reference``, in bps of ``quantity`` at ``reference``:
    the per-step reward of the environment sums these (plus the opportunity cost at the end)."""
    return side.sign * (px - reference) * qty / (quantity * reference) * BPS


def slippage_bps(side: Side, avg_px: float, benchmark: float | None) -> float | None:
    """Average fill against a benchmark price in bps (positive = cost); None without fills or benchmark."""
    if not benchmark or avg_px <= 0:
        return None
    return side.sign * (avg_px - benchmark) / benchmark * BPS


def vwap_slippage_bps(side: Side, avg_px: float, interval_vwap: float | None) -> float | None:
    """Average fill against the interval VWAP in bps (positive = cost); None without fills or volume."""
    return slippage_bps(side, avg_px, interval_vwap)


@dataclass(frozen=True)
class Parts:
    """The shortfall's parts in bps (module docstring); ``sum(parts) == shortfall_bps``."""

    delay: float
    spread: float
    timing: float
    opportunity: float

    @property
    def total(self) -> float:
        return self.delay + self.spread + self.timing + self.opportunity


def shortfall_parts(
    side: Side,
    arrival_mid: float,
    *,
    quantity: int,
    filled: int,
    notional: float,
    end_mid: float | None,
    first_mid: float | None,
    mid_notional: float,
    seen_notional: float,
) -> Parts:
    """The shortfall of ``shortfall_bps`` split into its parts. ``mid_notional`` and ``seen_notional`` are
    sum(qty_i * m_i) and sum(qty_i * px_i) over the fills the caller saw; timing is the filled part's
    remainder, so the parts add up to the total even if a fill was seen that the order did not count."""
    total = shortfall_bps(side, arrival_mid, quantity=quantity, filled=filled, notional=notional,
                          end_mid=end_mid)  # fmt: skip
    scale = side.sign / (quantity * arrival_mid) * BPS
    opportunity = max(0, quantity - filled) * (_mark(arrival_mid, end_mid) - arrival_mid) * scale
    delay = filled * ((first_mid or arrival_mid) - arrival_mid) * scale
    spread = (seen_notional - mid_notional) * scale if filled else 0.0
    return Parts(delay, spread, total - opportunity - delay - spread, opportunity)
