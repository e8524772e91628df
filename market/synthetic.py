"""A deterministic, seeded multi-symbol equity market with the stylised facts of real books.

Per symbol, events arrive as a Poisson process whose intensity is U-shaped over the session. Each event
is a quote update or a trade. The efficient price follows GARCH(1,1) innovations in event time (volatility
clustering); trade signs follow a persistent Markov chain (autocorrelated order flow); every trade moves
the price through ``market.impact`` (permanent plus a decaying transient part); the spread, a whole number
of ticks, is wider after the open and widens with volatility. Prices sit on a one-cent grid.

The same seed always gives the same ticks. Random numbers are drawn in blocks for speed, and nothing that
our own orders do (``SymbolSim.trade``) changes which random numbers are drawn, so a run with and without
our order differs only by our impact: a controlled experiment.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from market.impact import LOT, Impact, ImpactParams
from market.prices import CENT, to_float
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S, SESSION_S
from models import BookLevel, Side, Tick

# 2026-01-02 00:00 UTC: the synthetic trading day's midnight, in ns since the epoch.
DEFAULT_DAY_NS = 1_767_312_000 * 1_000_000_000
_BLOCK = 4096


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    price: float = 100.0
    daily_vol: float = 0.02  # of the price, over the session
    events_per_s: float = 4.0  # mean over the session
    trade_prob: float = 0.3
    mean_trade_lots: float = 2.0

    @property
    def day_volume(self) -> float:
        """Expected shares traded over the session (orders are sized as a share of it)."""
        return self.events_per_s * self.trade_prob * self.mean_trade_lots * LOT * SESSION_S


@dataclass(frozen=True)
class MarketParams:
    """Shape parameters shared by all symbols (documented in each field's comment)."""

    open_boost: float = 3.0  # extra intensity at the open, decaying over `u_width` of the session
    close_boost: float = 2.0  # extra intensity into the close
    u_width: float = 0.05  # fraction of the session (about 20 minutes)
    garch_alpha: float = 0.06  # GARCH(1,1) in event time: persistence 0.995, a half-life of about 35 s
    garch_beta: float = 0.935
    sign_persistence: float = 0.8  # P(next trade has the same sign as the last)
    spread_base: float = 0.4  # mean extra ticks of spread mid-day (Poisson)
    spread_open: float = 3.0  # mean extra ticks right at the open, decaying with `spread_decay`
    spread_decay: float = 0.03  # fraction of the session
    spread_vol: float = 0.5  # extra ticks per unit of (current vol / long-run vol - 1)
    depth_levels: int = 5
    # The crowd's trades: small transient impact, so autocorrelated signs do not turn into mean reversion.
    impact: ImpactParams = field(default_factory=lambda: ImpactParams(permanent=3.0, transient=8.0))


class SymbolSim:
    """One symbol's market, stepped one event at a time."""

    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        params: MarketParams | None = None,
        *,
        day_ns: int = DEFAULT_DAY_NS,
        open_s: int = SESSION_OPEN_S,
        close_s: int = SESSION_CLOSE_S,
        depth: int | None = None,
        start_s: int | None = None,
    ) -> None:
        """``start_s`` starts the clock later than the open (the intraday shape stays the session's)."""
        self.spec = spec
        self.params = p = params or MarketParams()
        self.rng = np.random.default_rng([seed, zlib.crc32(spec.symbol.encode())])
        self.depth = p.depth_levels if depth is None else depth
        self.open_ns = day_ns + open_s * 1_000_000_000
        self.close_ns = day_ns + close_s * 1_000_000_000
        self._session_ns = self.close_ns - self.open_ns
        self.t_ns = self.open_ns if start_s is None else day_ns + start_s * 1_000_000_000
        self.seq = 0
        self.volume = 0
        self.efficient = float(round(spec.price * 10_000 / CENT) * CENT)  # price units
        self.impact = Impact(p.impact)
        n_events = spec.events_per_s * self._session_ns / 1e9
        # Per-event variance so that the session's variance matches daily_vol.
        self._var_bar = (spec.daily_vol * self.efficient) ** 2 / n_events
        self._var = self._var_bar
        self._omega = self._var_bar * (1 - p.garch_alpha - p.garch_beta)
        self._last_eps2 = self._var_bar
        self._sign = 1
        u_mean = 1 + (p.open_boost + p.close_boost) * p.u_width * (1 - math.exp(-1 / p.u_width))
        self._rate_scale = spec.events_per_s / u_mean
        self._refill()

    # --- random blocks --------------------------------------------------------------------------------
    def _refill(self) -> None:
        r = self.rng
        self._exp = r.standard_exponential(_BLOCK)
        self._norm = r.standard_normal(_BLOCK)
        self._unif = r.random((_BLOCK, 3))
        self._pois = r.random(_BLOCK)
        self._sizes = r.poisson(3.0, (_BLOCK, 2 * max(self.depth, 1)))
        self._lots = r.geometric(1 / self.spec.mean_trade_lots, _BLOCK)
        self._i = 0

    def _intensity(self, x: float) -> float:
        p = self.params
        return self._rate_scale * (
            1 + p.open_boost * math.exp(-x / p.u_width) + p.close_boost * math.exp(-(1 - x) / p.u_width)
        )

    def _spread_ticks(self, x: float, u: float) -> int:
        p = self.params
        vol_excess = max(0.0, math.sqrt(self._var / self._var_bar) - 1)
        lam = p.spread_base + p.spread_open * math.exp(-x / p.spread_decay) + p.spread_vol * vol_excess
        # Inverse-CDF Poisson draw from one uniform keeps the random stream fixed per event.
        k, term = 0, math.exp(-lam)
        cdf = term
        while u > cdf and k < 50:
            k += 1
            term *= lam / k
            cdf += term
        return 1 + k

    @property
    def mid(self) -> float:
        """The fair mid in price units (efficient price plus impact): what quotes are built around."""
        return self.efficient + self.impact.offset(self.t_ns)

    def trade(self, side: Side, qty: int) -> None:
        """Our own aggressive trade at the current time: it moves this market's price like anyone's."""
        self.impact.trade(side, qty, self.t_ns)

    def step(self) -> Tick | None:
        """The next event's tick, or None once the session is over."""
        if self._i >= _BLOCK:
            self._refill()
        i = self._i
        self._i += 1
        p = self.params
        x = (self.t_ns - self.open_ns) / self._session_ns
        self.t_ns += max(1, int(self._exp[i] / self._intensity(min(x, 1.0)) * 1e9))
        if self.t_ns >= self.close_ns:
            return None
        x = (self.t_ns - self.open_ns) / self._session_ns
        # GARCH(1,1) in event time.
        self._var = self._omega + p.garch_alpha * self._last_eps2 + p.garch_beta * self._var
        eps = math.sqrt(self._var) * float(self._norm[i])
        self._last_eps2 = eps * eps
        self.efficient += eps
        u_trade, u_sign, _ = self._unif[i]
        trade: dict[str, object] = {}
        if u_trade < self.spec.trade_prob:
            if u_sign > p.sign_persistence:
                self._sign = -self._sign
            side = Side.BUY if self._sign > 0 else Side.SELL
            qty = int(self._lots[i]) * LOT
            self.impact.trade(side, qty, self.t_ns)
            self.volume += qty
            trade = {"trade_sz": qty, "trade_side": side}
        spread = self._spread_ticks(x, float(self._pois[i]))
        mid_ticks = self.mid / CENT
        bid = math.floor(mid_ticks - spread / 2 + 0.5)
        ask = bid + spread
        if trade:
            trade["trade_px"] = to_float((ask if trade["trade_side"] is Side.BUY else bid) * CENT)
        sizes = self._sizes[i]
        bids: tuple[BookLevel, ...] = ()
        asks: tuple[BookLevel, ...] = ()
        if self.depth:
            bids = tuple(
                BookLevel(px=to_float((bid - k) * CENT), sz=int(1 + sizes[k] + k) * LOT)
                for k in range(self.depth)
            )
            asks = tuple(
                BookLevel(px=to_float((ask + k) * CENT), sz=int(1 + sizes[self.depth + k] + k) * LOT)
                for k in range(self.depth)
            )
        self.seq += 1
        return Tick(
            symbol=self.spec.symbol, seq=self.seq, ts_event=self.t_ns, ts_init=self.t_ns,
            bid_px=to_float(bid * CENT), bid_sz=int(1 + sizes[0]) * LOT if not self.depth else bids[0].sz,
            ask_px=to_float(ask * CENT), ask_sz=int(1 + sizes[-1]) * LOT if not self.depth else asks[0].sz,
            bids=bids, asks=asks, volume=self.volume, **trade,
        )  # fmt: skip

    def __iter__(self) -> Iterator[Tick]:
        while (tick := self.step()) is not None:
            yield tick


class SyntheticMarket:
    """Several symbols' sessions merged in event time (ties broken by symbol order)."""

    def __init__(
        self,
        symbols: list[SymbolSpec] | list[str],
        seed: int,
        params: MarketParams | None = None,
        *,
        day_ns: int = DEFAULT_DAY_NS,
        open_s: int = SESSION_OPEN_S,
        close_s: int = SESSION_CLOSE_S,
        depth: int | None = None,
    ) -> None:
        specs = [s if isinstance(s, SymbolSpec) else SymbolSpec(s) for s in symbols]
        self.sims = {
            s.symbol: SymbolSim(s, seed, params, day_ns=day_ns, open_s=open_s, close_s=close_s, depth=depth)
            for s in specs
        }

    def sim(self, symbol: str) -> SymbolSim:
        return self.sims[symbol]

    def __iter__(self) -> Iterator[Tick]:
        heap: list[tuple[int, int, Tick]] = []
        order = list(self.sims)
        for n, sym in enumerate(order):
            if (t := self.sims[sym].step()) is not None:
                heap.append((t.ts_event, n, t))
        heapq.heapify(heap)
        while heap:
            _, n, tick = heapq.heappop(heap)
            yield tick
            if (nxt := self.sims[order[n]].step()) is not None:
                heapq.heappush(heap, (nxt.ts_event, n, nxt))
