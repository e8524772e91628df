"""The facts of a limit order book that a simulator must get right, measured the same way on any day.

A day is a ``Tape``: arrays of the book's touch after every event and, for order-level days (LOBSTER files,
recorded or generated), the messages themselves. ``facts`` measures, by the definitions of
``shared/market/REAL-BOOK-FACTS.md`` (``docs/MARKET.md`` gives them and the ranges real books show):

- spread in ticks and bps, the share of time at one tick, depth at the touch and over five levels (time
  weighted); execution sizes; submits, cancels, executions and the cancel-to-submit ratio; hidden volume;
- the intraday volume shape (first and last 30 minutes); 1-minute and 30-minute mid volatility and the
  lag-1 autocorrelation of 1-minute returns; the trade-sign autocorrelation; level-1 imbalance against the
  next 10/30/60 s mid move;
- **a passive order's fate**: every 30 s from 09:35 to 15:25, on each side, 100 shares join the back of the
  touch queue. On an order-level day the queue is followed exactly (FIFO by order id: executions and cancels
  of orders that were there before us move us up; an execution of an order behind us, or a trade-through,
  fills us). On a tick-only day (the synthetic market) there are no order ids, and the order is given to the
  fill model the backtest uses for that market (``market.fills.FillModel``): the facts then show what the
  instrument credits. Fill odds within 30 s / 2 min / 10 min, the queue-blind ("naive") odds, markouts
  1/10/30/60 s after a fill, and the drift of the price away from the orders still unfilled.

Every order of the experiment is independent of the others (none consumes liquidity another would get).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from market.fills import FillModel
from market.lobster import EventType
from market.prices import CENT, to_units
from market.recorded import RecordedDay
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S, S
from models import Side, Tick

JOIN_EVERY_S = 30
JOIN_FROM_S = SESSION_OPEN_S + 300  # 09:35
JOIN_TO_S = SESSION_CLOSE_S - 35 * 60  # 15:25: every order has its 10 minutes (and a minute of markout)
ORDER = 100  # shares
FILL_HORIZONS_S = (30, 120, 600)
MARKOUTS_S = (1, 10, 30, 60)
DRIFT_S = (120, 600)
IMBALANCE_S = (10, 30, 60)


@dataclass
class Tape:
    """One symbol's day. Times in ns after midnight; prices in price units; the book after each event."""

    name: str
    t: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_sz: np.ndarray
    ask_sz: np.ndarray
    depth5: np.ndarray | None  # mean of the two sides' sizes over five levels (None: fewer levels shown)
    trade_sz: np.ndarray  # executed shares at the event (0: none), visible and hidden
    trade_sign: np.ndarray  # the aggressor's sign (+1 buy) of a visible execution, else 0
    # Order-level days only:
    typ: np.ndarray | None = None
    oid: np.ndarray | None = None
    size: np.ndarray | None = None
    price: np.ndarray | None = None
    direction: np.ndarray | None = None
    ticks: list[Tick] | None = None  # tick-only days: the ticks themselves, for the fill model

    @classmethod
    def from_day(cls, day: RecordedDay, name: str | None = None) -> Tape:
        m, r = day.messages, day.rows
        ok = day.tradable
        levels = r.shape[1] // 4
        ask, ask_sz, bid, bid_sz = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
        depth5 = None
        if levels >= 5:
            depth5 = (r[:, 1:20:4].sum(axis=1) + r[:, 3:20:4].sum(axis=1)) / 2
        typ = m[:, 1]
        visible = typ == EventType.EXECUTE
        traded = visible | (typ == EventType.HIDDEN_EXECUTE)
        # Keep untradable rows (crossed, one-sided, halted) out of the book arrays by carrying the last
        # good state forward: they are rare, and the order-level experiment still reads every message.
        idx = np.where(ok, np.arange(len(ok)), 0)
        np.maximum.accumulate(idx, out=idx)
        idx[: int(np.argmax(ok))] = int(np.argmax(ok))
        return cls(
            name=name or f"{day.symbol}_{day.date}",
            t=m[:, 0].copy(), bid=bid[idx], ask=ask[idx], bid_sz=bid_sz[idx], ask_sz=ask_sz[idx],
            depth5=None if depth5 is None else depth5[idx],
            trade_sz=np.where(traded, m[:, 3], 0), trade_sign=np.where(visible, -m[:, 5], 0),
            typ=typ, oid=m[:, 2], size=m[:, 3], price=m[:, 4], direction=m[:, 5],
        )  # fmt: skip

    @classmethod
    def from_ticks(cls, name: str, ticks: list[Tick]) -> Tape:
        def arr(f: Any) -> np.ndarray:
            return np.fromiter((f(x) for x in ticks), dtype=np.int64, count=len(ticks))

        day0 = ticks[0].ts_event - ticks[0].ts_event % (86_400 * S)
        depth5 = None
        if ticks and len(ticks[0].bids) >= 5:
            depth5 = arr(lambda x: sum(lv.sz for lv in x.bids[:5]) + sum(lv.sz for lv in x.asks[:5])) / 2
        return cls(
            name=name, t=arr(lambda x: x.ts_event - day0),
            bid=arr(lambda x: to_units(x.bid_px)), ask=arr(lambda x: to_units(x.ask_px)),
            bid_sz=arr(lambda x: x.bid_sz), ask_sz=arr(lambda x: x.ask_sz), depth5=depth5,
            trade_sz=arr(lambda x: x.trade_sz or 0),
            trade_sign=arr(lambda x: x.trade_side.sign if x.trade_side is not None and x.trade_sz else 0),
            ticks=ticks,
        )  # fmt: skip

    # --- the book at a time -----------------------------------------------------------------------------
    def at(self, t_ns: np.ndarray | int) -> np.ndarray:
        """Index of the state in force at ``t_ns`` (the last event at or before it)."""
        return np.maximum(np.searchsorted(self.t, t_ns, side="right") - 1, 0)

    @property
    def mid(self) -> np.ndarray:
        return np.asarray((self.bid + self.ask) / 2, dtype=float)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    if not len(cw) or cw[-1] <= 0:
        return math.nan
    return float(x[order][np.searchsorted(cw, cw[-1] / 2)])


def _autocorr(x: np.ndarray) -> float:
    if len(x) < 3 or np.std(x[:-1]) == 0 or np.std(x[1:]) == 0:
        return math.nan
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


# --- the passive order's fate ---------------------------------------------------------------------------
@dataclass
class _Fate:
    side: int  # +1 a buy resting on the bid
    join_ns: int
    price: int
    ahead: int
    filled_ns: int | None  # when the last share filled (None: not within 10 minutes)
    naive_ns: int | None  # the first execution at or through our price, queue ignored
    first_ns: int | None = None  # when its first share filled
    path: str = ""  # how it filled: "queue" (executions reached us), "through" (the price went through us)


def join_times(tp: Tape) -> list[int]:
    """Seconds after midnight at which the experiment's orders join: every 30 s from 09:35 to 15:25, within
    what the tape covers (five minutes of market before, eleven after)."""
    first = max(JOIN_FROM_S, math.ceil(tp.t[0] / S) + 300)
    last = min(JOIN_TO_S, int(tp.t[-1] // S) - (FILL_HORIZONS_S[-1] + MARKOUTS_S[-1]))
    return list(range(first, last + 1, JOIN_EVERY_S))


def _fates_fifo(tp: Tape) -> list[_Fate]:
    """Exact FIFO on an order-level tape (REAL-BOOK-FACTS.md's method)."""
    assert tp.typ is not None and tp.oid is not None and tp.size is not None
    assert tp.price is not None and tp.direction is not None
    typ, oid, size, price, direction = tp.typ, tp.oid, tp.size, tp.price, tp.direction
    # Index of each order id's submission: an id never submitted was resting before the file began.
    first: dict[int, int] = {}
    for i in np.flatnonzero(typ == EventType.NEW).tolist():
        first.setdefault(int(oid[i]), i)
    out: list[_Fate] = []
    for join_s in join_times(tp):
        t0 = join_s * S
        i0 = int(tp.at(t0))
        i1 = int(np.searchsorted(tp.t, t0 + FILL_HORIZONS_S[-1] * S, side="right"))
        for d in (1, -1):
            px = int(tp.bid[i0] if d == 1 else tp.ask[i0])
            sl = slice(i0 + 1, i1)
            ty, pr, di = typ[sl], price[sl], direction[sl]
            opp = tp.ask[sl] if d == 1 else tp.bid[sl]
            worse = (pr < px) if d == 1 else (pr > px)
            through = ((opp <= px) if d == 1 else (opp >= px)) | (
                (ty == EventType.EXECUTE) & (di == d) & worse
            )
            k_through = int(np.argmax(through)) if through.any() else len(ty)
            execs = (di == d) & (pr == px) & (ty == EventType.EXECUTE)
            k_naive = min(k_through, int(np.argmax(execs)) if execs.any() else len(ty))
            left, filled, path, first_fill = ORDER, None, "", None
            # Executions and cancels of orders ahead of us only move us up; an execution of an order that
            # arrived after us means the queue ahead is gone, and it fills us.
            for k in np.flatnonzero(execs[:k_through]).tolist():
                j = i0 + 1 + k
                if first.get(int(oid[j]), -1) <= i0:
                    continue
                left -= min(int(size[j]), left)
                first_fill = first_fill or int(tp.t[j])
                if left == 0:
                    filled, path = int(tp.t[j]), "queue"
                    break
            if filled is None and k_through < len(ty):
                filled, path = int(tp.t[i0 + 1 + k_through]), "through"
            naive = int(tp.t[i0 + 1 + k_naive]) if k_naive < len(ty) else None
            first_fill = first_fill or filled
            out.append(_Fate(d, t0, px, ahead=int(tp.bid_sz[i0] if d == 1 else tp.ask_sz[i0]),
                             filled_ns=filled, naive_ns=naive, first_ns=first_fill, path=path))  # fmt: skip
    return out


def _fates_model(tp: Tape) -> list[_Fate]:
    """A tick-only tape: each order given to the backtest's fill model for that market."""
    assert tp.ticks is not None
    ticks = tp.ticks
    out: list[_Fate] = []
    fm = FillModel()
    pending: dict[str, _Fate] = {}
    joins = iter(join_times(tp))
    next_join = next(joins, None)
    for i, tick in enumerate(ticks):
        t = int(tp.t[i])
        while next_join is not None and t >= next_join * S:
            prev = ticks[max(i - 1, 0)]
            for d in (1, -1):
                side = Side.BUY if d == 1 else Side.SELL
                px = to_units(prev.bid_px if d == 1 else prev.ask_px)
                oid = f"{next_join}.{d}"
                fm.limit(oid, side, ORDER, px, prev)
                ahead = fm.resting[oid].queue_ahead if oid in fm.resting else 0
                pending[oid] = _Fate(d, next_join * S, px, ahead, None, None)
            next_join = next(joins, None)
        fm.observe(tick)
        for e in fm.on_tick(tick):
            f = pending.get(e.order_id)
            if f is not None and e.order_id not in fm.resting:
                f.filled_ns = t
        for oid, f in list(pending.items()):
            if f.naive_ns is None and tick.trade_sz and tick.trade_side is not None:
                tpx = to_units(tick.trade_px or 0.0)
                hit = (
                    (tick.trade_side is Side.SELL and tpx <= f.price)
                    if f.side == 1
                    else (tick.trade_side is Side.BUY and tpx >= f.price)
                )
                if hit:
                    f.naive_ns = t
            if f.naive_ns is None and (
                (f.side == 1 and tp.ask[i] <= f.price) or (f.side == -1 and tp.bid[i] >= f.price)
            ):
                f.naive_ns = t
            if t - f.join_ns > FILL_HORIZONS_S[-1] * S or f.filled_ns is not None:
                if f.filled_ns is not None and f.filled_ns - f.join_ns > FILL_HORIZONS_S[-1] * S:
                    f.filled_ns = None
                if f.naive_ns is not None and f.naive_ns - f.join_ns > FILL_HORIZONS_S[-1] * S:
                    f.naive_ns = None
                fm.cancel(oid)
                out.append(pending.pop(oid))
    out += pending.values()
    return out


# --- the facts ------------------------------------------------------------------------------------------
def facts(tp: Tape) -> dict[str, float]:
    """Every fact of the module docstring for one day (NaN where the tape cannot tell)."""
    f: dict[str, float] = {}
    t = tp.t
    sess = (t >= SESSION_OPEN_S * S) & (t < SESSION_CLOSE_S * S)
    w = np.diff(np.append(t, t[-1])).astype(float) * sess
    mid = tp.mid
    spread = (tp.ask - tp.bid) / CENT
    f["mid_low"], f["mid_high"] = float(mid[sess].min() / 1e4), float(mid[sess].max() / 1e4)
    f["spread_ticks_median"] = _weighted_median(spread, w)
    f["spread_bps_median"] = _weighted_median((tp.ask - tp.bid) / mid * 1e4, w)
    f["one_tick_share"] = float(w[spread <= 1].sum() / w.sum())
    f["touch_depth_median"] = _weighted_median((tp.bid_sz + tp.ask_sz) / 2, w)
    f["depth5_median"] = _weighted_median(tp.depth5, w) if tp.depth5 is not None else math.nan
    vis = tp.trade_sign != 0
    f["exec_size_median"] = float(np.median(tp.trade_sz[vis])) if vis.any() else math.nan
    f["exec_size_mean"] = float(np.mean(tp.trade_sz[vis])) if vis.any() else math.nan
    if tp.typ is not None:
        n = {e: int((tp.typ == e).sum()) for e in EventType}
        f["submits"] = n[EventType.NEW]
        f["cancels"] = n[EventType.CANCEL] + n[EventType.DELETE]
        f["visible_execs"] = n[EventType.EXECUTE]
        f["hidden_execs"] = n[EventType.HIDDEN_EXECUTE]
        f["cancel_to_submit"] = f["cancels"] / max(1, f["submits"])
        hid = tp.typ == EventType.HIDDEN_EXECUTE
        f["hidden_volume_share"] = float(tp.trade_sz[hid].sum() / max(1, tp.trade_sz.sum()))
    else:
        for k in (
            "submits",
            "cancels",
            "visible_execs",
            "hidden_execs",
            "cancel_to_submit",
            "hidden_volume_share",
        ):
            f[k] = math.nan
    vol = tp.trade_sz * sess
    total = max(1, int(vol.sum()))
    f["volume_first_30m"] = float(vol[t < (SESSION_OPEN_S + 1800) * S].sum() / total)
    f["volume_last_30m"] = float(vol[t >= (SESSION_CLOSE_S - 1800) * S].sum() / total)
    # Mid returns on a clock.
    m1 = mid[tp.at(np.arange(SESSION_OPEN_S, SESSION_CLOSE_S + 1, 60) * S)]
    r1 = np.diff(np.log(m1)) * 1e4
    f["ret_1m_std_bps"] = float(np.std(r1))
    f["ret_1m_ac1"] = _autocorr(r1)
    m30 = mid[tp.at(np.arange(SESSION_OPEN_S, SESSION_CLOSE_S + 1, 1800) * S)]
    f["ret_30m_std_bps"] = float(np.std(np.diff(np.log(m30)) * 1e4))
    # Trade signs: execution messages, and trades (one timestamp and sign merged).
    signs, times = tp.trade_sign[vis], t[vis]
    f["sign_ac1_messages"] = _autocorr(signs.astype(float))
    keep = np.ones(len(signs), dtype=bool)
    keep[1:] = (times[1:] != times[:-1]) | (signs[1:] != signs[:-1])
    f["sign_ac1_trades"] = _autocorr(signs[keep].astype(float))
    # Level-1 imbalance every second against the next mid moves.
    grid = np.arange(SESSION_OPEN_S + 300, SESSION_CLOSE_S - 300) * S
    i = tp.at(grid)
    imb = (tp.bid_sz[i] - tp.ask_sz[i]) / np.maximum(1, tp.bid_sz[i] + tp.ask_sz[i])
    for h in IMBALANCE_S:
        move = mid[tp.at(grid + h * S)] - mid[i]
        ok = np.std(move) > 0 and np.std(imb) > 0
        f[f"imbalance_corr_{h}s"] = float(np.corrcoef(imb, move)[0, 1]) if ok else math.nan
    f.update(_passive(tp))
    return f


def _passive(tp: Tape) -> dict[str, float]:
    fates = _fates_fifo(tp) if tp.typ is not None else _fates_model(tp)
    mid = tp.mid
    f: dict[str, float] = {"passive_orders": float(len(fates))}
    n = max(1, len(fates))
    for h in FILL_HORIZONS_S:
        f[f"fill_{h}s"] = sum(x.filled_ns is not None and x.filled_ns - x.join_ns <= h * S for x in fates) / n
        f[f"naive_fill_{h}s"] = (
            sum(x.naive_ns is not None and x.naive_ns - x.join_ns <= h * S for x in fates) / n
        )
    waits = [(x.filled_ns - x.join_ns) / S for x in fates if x.filled_ns is not None]
    f["fill_time_median_s"] = float(np.median(waits)) if waits else math.nan
    q = np.percentile([x.ahead for x in fates], [25, 50, 75]) if fates else [math.nan] * 3
    f["queue_ahead_q1"], f["queue_ahead_median"], f["queue_ahead_q3"] = (float(v) for v in q)
    filled = [x for x in fates if x.filled_ns is not None]
    if filled:
        tf = np.array([x.filled_ns for x in filled])
        px = np.array([x.price for x in filled], dtype=float)
        sgn = np.array([x.side for x in filled], dtype=float)
        at_fill = mid[tp.at(tf)]
        for h in MARKOUTS_S:
            later = mid[tp.at(tf + h * S)]
            f[f"markout_{h}s_bps"] = float(np.mean(sgn * (later - px) / px * 1e4))
        f["markout_30s_vs_mid_bps"] = float(
            np.mean(sgn * (mid[tp.at(tf + 30 * S)] - at_fill) / at_fill * 1e4)
        )
        f["fill_vs_mid_bps"] = float(np.mean(sgn * (at_fill - px) / px * 1e4))
        f["filled_through_share"] = sum(x.path == "through" for x in filled) / len(filled)
    else:
        for h in MARKOUTS_S:
            f[f"markout_{h}s_bps"] = math.nan
        f["markout_30s_vs_mid_bps"] = math.nan
    for h in DRIFT_S:
        left = [x for x in fates if x.filled_ns is None or x.filled_ns - x.join_ns > h * S]
        if left:
            t0 = np.array([x.join_ns for x in left])
            sgn = np.array([x.side for x in left], dtype=float)
            m0, m1 = mid[tp.at(t0)], mid[tp.at(t0 + h * S)]
            f[f"drift_unfilled_{h}s_bps"] = float(np.mean(sgn * (m1 - m0) / m0 * 1e4))
        else:
            f[f"drift_unfilled_{h}s_bps"] = math.nan
    return f


# --- the ranges real books show, and the report ------------------------------------------------------------
# Wide-spread large caps ($200-600, the "mid" and "high" profiles): shared/market/REAL-BOOK-FACTS.md's three
# NASDAQ days widened by the literature's spread of such stocks (docs/MARKET.md gives each source). A
# generated day of those profiles must land inside every one (tests/unit/market/test_realism.py).
REAL_RANGES: dict[str, tuple[float, float]] = {
    "spread_ticks_median": (10, 30),
    "spread_bps_median": (2.0, 7.0),
    "touch_depth_median": (60, 200),
    "depth5_median": (250, 800),
    "exec_size_median": (30, 120),
    "cancel_to_submit": (0.5, 1.0),
    "hidden_volume_share": (0.15, 0.45),
    "volume_first_30m": (0.05, 0.14),
    "volume_last_30m": (0.15, 0.32),
    "ret_1m_std_bps": (3.5, 9.0),
    "ret_1m_ac1": (-0.25, 0.12),
    "ret_30m_std_bps": (15, 45),
    "sign_ac1_messages": (0.55, 0.85),
    "imbalance_corr_10s": (-0.05, 0.08),
    "fill_30s": (0.25, 0.60),
    "fill_120s": (0.50, 0.85),
    "fill_600s": (0.75, 0.95),
    "markout_10s_bps": (-2.0, -0.2),
    "markout_30s_bps": (-2.0, -0.2),
    "markout_30s_vs_mid_bps": (-3.0, -0.5),
    "drift_unfilled_120s_bps": (3.0, 9.0),
    "drift_unfilled_600s_bps": (9.0, 25.0),
}
# A $30 large-tick stock (the "large-tick" profile): the literature's qualitative facts (docs/MARKET.md).
LARGE_TICK_RANGES: dict[str, tuple[float, float]] = {
    "spread_ticks_median": (1, 1),
    "one_tick_share": (0.5, 1.0),
    "queue_ahead_median": (1000, 1e9),
    "touch_depth_median": (1000, 1e9),
    "markout_30s_vs_mid_bps": (-5.0, 0.0),
    "fill_600s": (0.5, 0.97),
}


# The three real days' figures themselves (shared/market/REAL-BOOK-FACTS.md; figures, not data), drawn
# beside every day measured.
REAL_BOOKS: dict[str, dict[str, float]] = {
    "GOOG 2012-06-21 (real)": {
        "fill_30s": 0.325, "fill_120s": 0.612, "fill_600s": 0.831, "markout_1s_bps": -0.25,
        "markout_10s_bps": -0.53, "markout_30s_bps": -0.69, "markout_60s_bps": -0.43,
    },
    "AMZN 2012-06-21 (real)": {
        "fill_30s": 0.330, "fill_120s": 0.620, "fill_600s": 0.835, "markout_1s_bps": -0.53,
        "markout_10s_bps": -1.31, "markout_30s_bps": -1.57, "markout_60s_bps": -1.57,
    },
    "AAPL 2012-06-21 (real)": {
        "fill_30s": 0.531, "fill_120s": 0.769, "fill_600s": 0.894, "markout_1s_bps": -0.23,
        "markout_10s_bps": -0.43, "markout_30s_bps": -0.39, "markout_60s_bps": -0.38,
    },
}  # fmt: skip


def outside(f: dict[str, float], ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """The facts of ``f`` that leave their range (NaN counts as outside)."""
    return {k: f[k] for k, (lo, hi) in ranges.items() if not lo <= f.get(k, math.nan) <= hi}


def table(days: dict[str, dict[str, float]]) -> str:
    """Markdown: one row a fact, one column a day, and the wide-spread real range beside them."""
    names = list(days)
    keys = list(next(iter(days.values()))) if days else []
    lines = ["| fact | " + " | ".join(names) + " | real range (wide-spread large caps) |",
             "|---|" + "---|" * (len(names) + 1)]  # fmt: skip
    for k in keys:
        lo_hi = REAL_RANGES.get(k)
        cells = []
        for n in names:
            v = days[n].get(k, math.nan)
            mark = "" if lo_hi is None or lo_hi[0] <= v <= lo_hi[1] else " ✗"
            cells.append(("—" if math.isnan(v) else f"{v:.3g}") + mark)
        rng = f"{lo_hi[0]:g} to {lo_hi[1]:g}" if lo_hi else ""
        lines.append(f"| {k} | " + " | ".join(cells) + f" | {rng} |")
    return "\n".join(lines)


def plot(days: dict[str, dict[str, float]], path: Any) -> None:
    """Fill odds by wait and markouts by horizon, each day a line, the real ranges shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    xs = list(FILL_HORIZONS_S)
    a.fill_between(xs, [REAL_RANGES[f"fill_{h}s"][0] for h in xs], [REAL_RANGES[f"fill_{h}s"][1] for h in xs],
                   color="0.85", label="real range")  # fmt: skip
    for f in REAL_BOOKS.values():
        a.plot(xs, [f[f"fill_{h}s"] for h in xs], ls="--", color="k", lw=0.8, alpha=0.6)
    for n, f in days.items():
        a.plot(xs, [f[f"fill_{h}s"] for h in xs], marker="o", label=n)
    a.set(xscale="log", xlabel="seconds after joining the back of the touch queue", ylabel="filled",
          title="A passive order's fill odds (dashed: the real days)")  # fmt: skip
    a.set_xticks(xs, [f"{h} s" for h in xs])
    a.minorticks_off()
    a.legend(fontsize=7)
    ms = list(MARKOUTS_S)
    b.axhspan(*REAL_RANGES["markout_30s_bps"], color="0.85", label="real range at 30 s")
    for f in REAL_BOOKS.values():
        b.plot(ms, [f[f"markout_{h}s_bps"] for h in ms], ls="--", color="k", lw=0.8, alpha=0.6)
    for n, f in days.items():
        b.plot(ms, [f[f"markout_{h}s_bps"] for h in ms], marker="o", label=n)
    b.axhline(0, color="k", lw=0.5)
    b.set(xscale="log", xlabel="seconds after the fill", ylabel="bps (negative = against us)",
          title="Markout after a passive fill (dashed: the real days)")  # fmt: skip
    b.set_xticks(ms, [f"{h} s" for h in ms])
    b.minorticks_off()
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
