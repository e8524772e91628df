"""Price impact of aggressive flow: a permanent part and a transient part that decays exponentially
(a one-exponential propagator, after Bouchaud et al.). One implementation with two users: the synthetic
market (everybody's market orders move its price) and the fill model (our own fills move the price we see,
on any source, replay included).

Parameters (price units per square-root of lots; a lot is 100 shares):
  permanent   impact that stays: information the trade revealed
  transient   impact that decays with half-life ``half_life_s``: liquidity consumed, then replenished
Square-root scaling in size is the empirical law of market impact, for a whole metaorder. Applied to each
child order on its own, a square-root *permanent* part rewards trading in lumps (ten children of one lot
move the price for good sqrt(10) times more than one child of ten): a price-manipulation opportunity that
no real market offers (Huberman and Stanzl 2004: permanent impact must be linear in quantity). With
``permanent_linear`` the permanent part is ``permanent`` units per lot, linear, as in Almgren-Chriss; the
fill model's overlay of our own trades uses it, so a policy cannot learn to game the simulator that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models import Side

LOT = 100


@dataclass(frozen=True)
class ImpactParams:
    permanent: float = 5.0  # price units (1/10,000) per sqrt(lot): 0.05 cent
    transient: float = 30.0  # 0.3 cent per sqrt(lot)
    half_life_s: float = 30.0
    permanent_linear: bool = False  # permanent part in units per lot (linear) instead of per sqrt(lot)

    @property
    def decay_per_ns(self) -> float:
        return math.log(2) / (self.half_life_s * 1e9)


class Impact:
    """Accumulated impact on one instrument, in price units, as a function of event time (ns)."""

    __slots__ = ("_decay", "_last_ns", "_transient", "params", "permanent")

    def __init__(self, params: ImpactParams | None = None) -> None:
        self.params = params or ImpactParams()
        self._decay = self.params.decay_per_ns
        self.permanent = 0.0
        self._transient = 0.0
        self._last_ns: int | None = None

    def transient(self, t_ns: int) -> float:
        if self._last_ns is None or t_ns <= self._last_ns:
            return self._transient
        return self._transient * math.exp(-self._decay * (t_ns - self._last_ns))

    def offset(self, t_ns: int) -> float:
        """Total displacement of the price at ``t_ns`` caused by the trades recorded so far."""
        return self.permanent + self.transient(t_ns)

    def trade(self, side: Side, qty: int, t_ns: int) -> float:
        """Record an aggressive trade (BUY lifts the price); returns the immediate displacement it caused."""
        lots = qty / LOT
        root = math.sqrt(lots) * side.sign
        lasting = self.params.permanent * (lots * side.sign if self.params.permanent_linear else root)
        self._transient = self.transient(t_ns) + self.params.transient * root
        self._last_ns = t_ns if self._last_ns is None else max(self._last_ns, t_ns)
        self.permanent += lasting
        return lasting + self.params.transient * root
