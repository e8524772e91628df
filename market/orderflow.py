"""A calibrated order-level market: one symbol's day as LOBSTER messages, consistent by order id.

What the flow is made of, and which fact of real books each part is there for (``docs/MARKET.md`` has the
ranges and their sources; ``market.facts`` measures them; ``tests/unit/market/test_realism.py`` gates them):

- A **fair value** nobody sees: a random walk (more volatile after the open) plus the impact of market
  orders, a permanent part and a part that decays. Market orders come in runs of one sign, so a passive fill
  is followed by more of the same flow: adverse selection, and a slightly negative 1-minute autocorrelation.
- **Limit orders** at ``half_spread`` plus a geometric number of ticks from the fair value, never crossing;
  submits and cancels balance so each side holds about ``orders`` live orders: the wide, one-order-deep touch
  of high-priced stocks (10-25 ticks, ~100 shares), or for a low-priced profile a one-tick spread with
  queues of thousands of shares. A cancel takes the further from the fair value of two orders drawn.
- **Quotes follow the price**: a touch quote the fair value comes within ``fade`` ticks of is pulled back,
  one it leaves more than ``half_spread + pull`` behind is placed again ``requote`` ticks from it. So the
  price moves *through* a waiting order's level by re-quoting, not only by trades, as on small-tick books.
- **Stale quotes are picked off**: when the fair value is ``stale_ticks`` through the touch, the next event
  is, with probability ``snipe``, a market order against it (it tells the market nothing new). A resting
  order fills most often when the price is about to move through it, and the orders that do not fill are
  the ones the price ran away from (the cost of waiting).
- **Market orders** with persistent signs walk the book in price-time priority, one type-4 message per order
  hit; **hidden executions** strictly inside the spread (order id 0); intensity rises into the close.

Deterministic from the seed. Prices are in price units (``market.prices``: $1 = 10,000; a tick = ``CENT``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from sortedcontainers import SortedDict

from market.lobster import EventType, Message
from market.prices import CENT
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S, S


@dataclass(frozen=True)
class Profile:
    """One kind of stock. Every field is in ticks, shares, seconds or shares of events."""

    name: str
    price: float
    half_spread: float  # ticks from the fair value where the closest new orders go
    depth_ticks: float  # mean extra ticks (geometric) of a new order beyond ``half_spread``
    events_per_s: float  # mean messages per second over the session
    daily_vol: float  # the fair value's volatility over the session, as a share of the price
    orders: float  # live orders a side holds, about (submits and cancels balance there)
    market: float  # shares of events (the rest are submits and cancels)
    hidden: float
    limit_size: float  # median shares of a new limit order (lognormal)
    market_size: float  # median shares of a market order (lognormal)
    sign_persistence: float  # P(a market order has the sign of the one before)
    impact: float  # ticks the fair value moves for good with each market order's sign (information)
    transient: float  # ticks it moves with each market order and then decays (liquidity consumed)
    half_life_s: float  # of the transient part
    snipe: float  # P(the next event takes a stale quote) when the fair value is through the touch
    stale_ticks: float  # how far through the touch the fair value must be for a quote to be stale
    requote: float  # ticks from the fair value where a pulled quote is placed again
    fade: float  # a touch quote closer than this to the fair value (ticks) is pulled back
    pull: float  # ticks beyond ``half_spread`` from the fair value at which a touch quote is pulled
    open_boost: float = 0.8  # extra intensity at the open, decaying over 5 % of the session
    close_boost: float = 6.0  # extra intensity at the close, over the last 4 %


PROFILES: dict[str, Profile] = {
    # A $30 stock: one-tick spread nearly always, queues of thousands of shares (Huang-Lehalle-Rosenbaum's
    # large-tick regime): a passive order waits long in a deep queue.
    "large-tick": Profile(
        name="large-tick", price=30.0, half_spread=0.5, depth_ticks=1.5, events_per_s=6.0, daily_vol=0.008,
        orders=40, market=0.05, hidden=0.004, limit_size=300.0, market_size=300.0, sign_persistence=0.85,
        impact=0.02, transient=0.05, half_life_s=60.0, snipe=0.6, stale_ticks=0.5, requote=0.5, fade=0.0,
        pull=1.0,
    ),
    # A $200 stock: spread around 11 ticks (5-6 bps), one order at the touch (the AMZN column).
    "mid": Profile(
        name="mid", price=200.0, half_spread=6.0, depth_ticks=7.0, events_per_s=6.5, daily_vol=0.0085,
        orders=6, market=0.018, hidden=0.009, limit_size=90.0, market_size=50.0, sign_persistence=0.85,
        impact=0.5, transient=2.0, half_life_s=60.0, snipe=0.6, stale_ticks=1.4, requote=6.0, fade=2.8,
        pull=1.4,
    ),
    # A $600 stock: spread 15-20 ticks (2.5-3.5 bps), one order at the touch (the GOOG and AAPL columns).
    "high": Profile(
        name="high", price=600.0, half_spread=9.0, depth_ticks=10.0, events_per_s=6.5, daily_vol=0.008,
        orders=6, market=0.018, hidden=0.009, limit_size=90.0, market_size=50.0, sign_persistence=0.85,
        impact=1.0, transient=3.0, half_life_s=60.0, snipe=0.6, stale_ticks=2.0, requote=9.0, fade=4.0,
        pull=2.0,
    ),
}  # fmt: skip


def profile(name: str, **changes: float) -> Profile:
    """A named profile, optionally with fields changed (a clear error for an unknown name)."""
    if name not in PROFILES:
        raise ValueError(f"unknown market profile {name!r}; choose from {sorted(PROFILES)}")
    return replace(PROFILES[name], **changes)  # type: ignore[arg-type]


class _Book:
    """Both sides' queues: price -> {order id: size} in arrival order, and where every live order rests."""

    def __init__(self) -> None:
        self.side: dict[int, SortedDict] = {1: SortedDict(), -1: SortedDict()}
        self.where: dict[int, tuple[int, int]] = {}  # order id -> (direction, price)

    def best(self, d: int) -> int | None:
        b = self.side[d]
        if not b:
            return None
        return int(b.peekitem(-1)[0] if d == 1 else b.peekitem(0)[0])

    def add(self, oid: int, d: int, px: int, size: int) -> None:
        self.side[d].setdefault(px, {})[oid] = size
        self.where[oid] = (d, px)

    def take(self, oid: int, qty: int) -> None:
        """Remove ``qty`` shares of order ``oid`` (all of it: the order leaves the book)."""
        d, px = self.where[oid]
        level = self.side[d][px]
        if qty < level[oid]:
            level[oid] -= qty
            return
        del level[oid]
        if not level:
            del self.side[d][px]
        del self.where[oid]

    def count(self, d: int) -> int:
        return sum(len(v) for v in self.side[d].values())


def generate(
    seed: int, prof: Profile, *, start_s: int = SESSION_OPEN_S, end_s: int = SESSION_CLOSE_S
) -> list[Message]:
    """The day's messages (time in ns after midnight), in order."""
    rng = random.Random(seed)
    p = prof
    book = _Book()
    out: list[Message] = []
    next_id = 1
    t = start_s * S
    session = (SESSION_CLOSE_S - SESSION_OPEN_S) * S
    tick = CENT
    eff = fair = round(p.price * 10_000 / tick) * tick * 1.0
    trans = 0.0
    decay = math.log(2) / p.half_life_s
    # The fair value's variance per second, so that the session's equals daily_vol (impact adds its own).
    var_s = (p.daily_vol * fair) ** 2 / (session / S)
    sign = 1
    mean_rate = 1 + p.open_boost * 0.05 + p.close_boost * 0.04  # the integral of the intensity's shape, about
    base = p.events_per_s / mean_rate
    log_limit, log_market = math.log(p.limit_size), math.log(p.market_size)

    def emit(typ: EventType, oid: int, size: int, px: int, d: int) -> None:
        out.append(Message(t, typ, oid, size, px, d))

    def place(d: int, near: bool = False) -> None:
        nonlocal next_id
        k = int(rng.expovariate(1 / p.depth_ticks)) if p.depth_ticks > 0 and not near else 0
        dist = (p.requote if near else p.half_spread + k) * tick
        px = math.floor((fair - dist) / tick) * tick if d == 1 else math.ceil((fair + dist) / tick) * tick
        other = book.best(-d)
        if other is not None:
            px = min(px, other - tick) if d == 1 else max(px, other + tick)
        px = max(tick, int(px))
        size = max(1, round(math.exp(rng.gauss(log_limit, 0.7))))
        if rng.random() < 0.4:
            size = 100 * max(1, round(size / 100))  # round lots are common
        book.add(next_id, d, px, size)
        emit(EventType.NEW, next_id, size, px, d)
        next_id += 1

    def cancel(d: int) -> None:
        # Of two live orders of side d drawn, the one further from the fair value goes: quotes left behind
        # are pulled.
        prices = book.side[d]
        if book.count(d) < 4:
            return
        a, b = (rng.choice(list(prices[prices.keys()[rng.randrange(len(prices))]])) for _ in range(2))
        oid = a if abs(book.where[a][1] - fair) >= abs(book.where[b][1] - fair) else b
        d, px = book.where[oid]
        size = book.side[d][px][oid]
        if size > 100 and rng.random() < 0.02:
            part = rng.randint(1, size - 1)
            book.take(oid, part)
            emit(EventType.CANCEL, oid, part, px, d)
        else:
            book.take(oid, size)
            emit(EventType.DELETE, oid, size, px, d)

    def requote(d: int, px: int, near: bool = True) -> None:
        oid = next(iter(book.side[d][px]))
        size = book.side[d][px][oid]
        book.take(oid, size)
        emit(EventType.DELETE, oid, size, px, d)
        place(d, near=near)

    def shock(s: int, weight: float) -> None:
        """A trade of sign ``s`` moves the fair value: a permanent part and a part that decays."""
        nonlocal eff, trans, fair
        eff += s * p.impact * tick * weight
        trans += s * p.transient * tick * weight
        fair = eff + trans

    def market(s: int, size: int, informed: bool = True) -> None:
        """A market order of sign ``s`` (+1 buys, taking the asks); one that only picks off a stale quote
        tells the market nothing new."""
        d = -s
        while size > 0 and book.count(d) > 3:
            px = book.best(d)
            assert px is not None
            level = book.side[d][px]
            oid = next(iter(level))
            n = min(size, level[oid])
            book.take(oid, n)
            emit(EventType.EXECUTE, oid, n, px, d)
            size -= n
        if informed:
            shock(s, 1.0)

    for d in (1, -1):  # an opening book
        for _ in range(25):
            place(d)
    while True:
        x = (t - SESSION_OPEN_S * S) / session
        shape = 1 + p.open_boost * math.exp(-x / 0.05) + p.close_boost * math.exp(-(1 - x) / 0.04)
        gap = rng.expovariate(base * shape)
        t += max(1, int(gap * S))
        if t >= end_s * S:
            break
        eff += rng.gauss(0.0, math.sqrt(var_s * gap * (1 + 1.0 * math.exp(-x / 0.05))))
        trans *= math.exp(-gap * decay)
        fair = eff + trans
        bid, ask = book.best(1), book.best(-1)
        assert bid is not None and ask is not None
        stale = p.stale_ticks * tick
        if fair > ask + stale and rng.random() < p.snipe:
            sign = 1
            market(1, book.side[-1][ask][next(iter(book.side[-1][ask]))], informed=False)
            continue
        if fair < bid - stale and rng.random() < p.snipe:
            sign = -1
            market(-1, book.side[1][bid][next(iter(book.side[1][bid]))], informed=False)
            continue
        # Touch quotes the fair value has come too close to fade back (their owners fear being picked
        # off); quotes it has left far behind are pulled and placed again near it.
        if fair - bid < p.fade * tick and rng.random() < p.snipe:
            requote(1, bid, near=False)
            continue
        if ask - fair < p.fade * tick and rng.random() < p.snipe:
            requote(-1, ask, near=False)
            continue
        if ask - fair > (p.half_spread + p.pull) * tick and rng.random() < p.snipe:
            requote(-1, ask)
            continue
        if fair - bid > (p.half_spread + p.pull) * tick and rng.random() < p.snipe:
            requote(1, bid)
            continue
        r = rng.random()
        if r < p.market:
            if rng.random() > p.sign_persistence:
                sign = -sign
            market(sign, max(1, round(math.exp(rng.gauss(log_market, 0.8)))))
        elif r < p.market + p.hidden:
            if ask - bid >= 2 * tick:
                if rng.random() > p.sign_persistence:
                    sign = -sign
                px = rng.randrange(bid + tick, ask, tick)
                size = max(1, round(math.exp(rng.gauss(log_market, 0.8))))
                emit(EventType.HIDDEN_EXECUTE, 0, size, px, -sign)
                shock(sign, 0.5)
        else:
            # Submit or cancel, so that each side holds about ``orders`` live orders.
            d = 1 if rng.random() < 0.5 else -1
            n = book.count(d)
            if rng.random() < p.orders / (p.orders + n):
                place(d)
            else:
                cancel(d)
    return out
