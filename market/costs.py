"""Execution cost, one definition for the RL environment's reward and summary, the backtest, the client's
TCA and the live page.

Implementation shortfall (Perold) against the arrival mid, in basis points of the order's notional at
arrival, positive = cost:

    IS = side * [ sum(fill px * qty) - filled * arrival  +  (quantity - filled) * (end mid - arrival) ]
         / (quantity * arrival) * 1e4

The second term is the opportunity cost of what did not fill, marked at the mid when the order ended: an
order that leaves quantity behind cannot look cheaper than one that completes. VWAP slippage compares the
average fill with the market's volume-weighted price over the order's life.
"""

from __future__ import annotations

from models import Side

BPS = 1e4


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
    mark = arrival_mid if end_mid is None or end_mid <= 0 else end_mid
    cost = (notional - filled * arrival_mid) + left * (mark - arrival_mid)
    return side.sign * cost / (quantity * arrival_mid) * BPS


def fill_cost_bps(side: Side, reference: float, px: float, qty: int, quantity: int) -> float:
    """One fill's share of the shortfall against ``reference``, in bps of ``quantity`` at ``reference``:
    the per-step reward of the environment sums these (plus the opportunity cost at the end)."""
    return side.sign * (px - reference) * qty / (quantity * reference) * BPS


def vwap_slippage_bps(side: Side, avg_px: float, interval_vwap: float | None) -> float | None:
    """Average fill against the interval VWAP in bps (positive = cost); None without fills or volume."""
    if not interval_vwap or avg_px <= 0:
        return None
    return side.sign * (avg_px - interval_vwap) / interval_vwap * BPS
