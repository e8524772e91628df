"""The pre-trade risk gate: every parent order at the door and every child order before the venue.

A refusal is a ``Refusal`` (a short countable code and a sentence for the client). Checks on a parent:
kill switch, order rate, order notional, open notional of the client's live parents, position after
the order, limit price against the reference mid (fat finger), participation rate. On a child order:
kill switch, child rate, child notional, limit price against the mid. The kill switch has three states,
globally and per client: ACTIVE, REDUCING (only what reduces the client's position in that symbol),
HALTED (nothing; working child orders are refused too). The stricter of the two scopes applies.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from endpoint.config import Limits
from models import ChildOrderAction, KillState, ParentOrder, Side, Strategy

_ORDER = {KillState.ACTIVE: 0, KillState.REDUCING: 1, KillState.HALTED: 2}


@dataclass(frozen=True)
class Refusal:
    code: str
    text: str


class _Bucket:
    """Token bucket: ``rate`` per second, bursts up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.tokens = max(1.0, rate)
        self.clock = clock
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RiskGate:
    """Thread-safe (one re-entrant lock): FIX and native threads check parents, the listener thread checks
    child orders, applies fills and the kill switch."""

    def __init__(self, limits: dict[str, Limits], clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self.limits = limits
        self.clock = clock
        self.global_state = KillState.ACTIVE
        self.client_state: dict[str, KillState] = {}
        self.position: dict[tuple[str, str], int] = defaultdict(int)
        self._orders: dict[str, _Bucket] = {}
        self._children: dict[str, _Bucket] = {}

    # --- state ------------------------------------------------------------------------------------------
    def set_state(self, client_id: str | None, state: KillState) -> None:
        with self._lock:
            if client_id is None:
                self.global_state = state
            else:
                self.client_state[client_id] = state

    def state(self, client_id: str) -> KillState:
        with self._lock:
            own = self.client_state.get(client_id, KillState.ACTIVE)
            return max(own, self.global_state, key=_ORDER.__getitem__)

    def on_fill(self, client_id: str, symbol: str, side: Side, qty: int) -> None:
        with self._lock:
            self.position[(client_id, symbol)] += side.sign * qty

    def _limits(self, client_id: str) -> Limits:
        return self.limits.get(client_id) or Limits()

    def _reduces(self, client_id: str, symbol: str, side: Side, qty: int) -> bool:
        pos = self.position[(client_id, symbol)]
        after = pos + side.sign * qty
        return pos != 0 and abs(after) <= abs(pos) and (after == 0 or (after > 0) == (pos > 0))

    def _kill(self, client_id: str, symbol: str, side: Side, qty: int, what: str) -> Refusal | None:
        st = self.state(client_id)
        if st is KillState.HALTED:
            return Refusal("halted", f"trading is halted for {client_id}")
        if st is KillState.REDUCING and not self._reduces(client_id, symbol, side, qty):
            return Refusal("reducing_only", f"only orders that reduce the position are accepted ({what})")
        return None

    @staticmethod
    def _band(px: float | None, mid: float | None, band_bps: float) -> Refusal | None:
        if px is None or mid is None or mid <= 0:
            return None
        off = abs(px - mid) / mid * 1e4
        if off > band_bps:
            return Refusal(
                "price_band", f"limit {px:.4f} is {off:.0f} bps from the mid {mid:.4f} (band {band_bps:g})"
            )
        return None

    # --- checks -----------------------------------------------------------------------------------------
    def check_parent(
        self, p: ParentOrder, mid: float | None, open_notional: float, *, rate: bool = True
    ) -> Refusal | None:
        with self._lock:
            lim = self._limits(p.client_id)
            if (r := self._kill(p.client_id, p.symbol, p.side, p.quantity, "parent")) is not None:
                return r
            if rate:
                bucket = self._orders.setdefault(p.client_id, _Bucket(lim.max_orders_per_s, self.clock))
                if not bucket.take():
                    return Refusal("rate", f"more than {lim.max_orders_per_s:g} orders per second")
            if (band := self._band(p.limit_px, mid, lim.price_band_bps)) is not None:
                return band
            ref = p.limit_px or mid
            if ref is not None:
                notional = ref * p.quantity
                if notional > lim.max_order_notional:
                    return Refusal(
                        "order_notional", f"notional {notional:,.0f} > limit {lim.max_order_notional:,.0f}"
                    )
                if open_notional + notional > lim.max_open_notional:
                    return Refusal("open_notional", f"open notional would be {open_notional + notional:,.0f} "
                                                    f"> limit {lim.max_open_notional:,.0f}")  # fmt: skip
            after = self.position[(p.client_id, p.symbol)] + p.side.sign * p.quantity
            if abs(after) > lim.max_position:
                return Refusal("position", f"position would be {after:,} shares (limit {lim.max_position:,})")
            if p.strategy is Strategy.POV and (p.participation_rate or 0) > lim.max_participation:
                return Refusal(
                    "participation", f"participation {p.participation_rate:g} > {lim.max_participation:g}"
                )
            return None

    def check_child(self, client_id: str, a: ChildOrderAction, mid: float | None) -> Refusal | None:
        with self._lock:
            lim = self._limits(client_id)
            if (r := self._kill(client_id, a.symbol, a.side, a.quantity, "child order")) is not None:
                return r
            bucket = self._children.setdefault(client_id, _Bucket(lim.max_children_per_s, self.clock))
            if not bucket.take():
                return Refusal("child_rate", f"more than {lim.max_children_per_s:g} child orders per second")
            ref = a.limit_px or mid
            if ref is not None and ref * a.quantity > lim.max_child_notional:
                return Refusal(
                    "child_notional",
                    f"child notional {ref * a.quantity:,.0f} > {lim.max_child_notional:,.0f}",
                )
            return self._band(a.limit_px, mid, lim.price_band_bps)
