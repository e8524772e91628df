"""A recorded book as the market: LOBSTER message + orderbook files replayed, with a queue-aware fill model.

``RecordedDay`` reads one message/orderbook pair once (any level count), checks it with ``lobster.Replay``
and keeps it as compact arrays; ``RecordedDay.ticks`` replays any window of it as ticks while feeding every
message to the day's ``QueueFillModel``, which decides when our resting orders fill from what the file
says happened in the queue we joined (price-time priority):

- a limit order of ours joins the back of the displayed queue at its price: every order displayed there is
  ahead of us (orders the file added after we started following it by id, the rest as an anonymous block);
- a visible execution (type 4) of an order ahead of us consumes it; one of an order behind us means the
  queue ahead is gone: what is left of the aggressor fills us; one at a price through ours fills us first;
- cancels and deletes of orders ahead of us move us up;
- an incoming limit order that would cross our price trades with us once nothing is ahead;
- hidden executions (type 5) and cross trades (type 6) never fill us; nothing fills during a halt (type 7);
- our market orders walk the displayed book and then depth modelled from the day itself
  (``fills.DepthProfile``); our own aggressive fills leave the transient + permanent impact overlay on the
  prices we see, and our resting order's queue is the file's level at our price less that overlay.

Limits, stated: the file cannot react to us (an aggressor that filled us still trades on in the file), and
hidden liquidity ahead of us is invisible, so the model errs toward filling later, not sooner.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from market import lobster, orderflow
from market.book import Book
from market.fills import Execution, FillModel, FillParams
from market.lobster import EventType, HaltState, Message
from market.prices import to_float, to_units
from models import BookLevel, Side, Tick

S = 1_000_000_000
_NAME = re.compile(
    r"^(?P<sym>[A-Za-z][A-Za-z0-9.\-]*)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)"
    r"_message_(?P<levels>\d+)\.csv$"
)


class RecordedDataError(ValueError):
    """Files that cannot be used as a recorded day; the message says which and why."""


# --- the queue-aware fill model ---------------------------------------------------------------------------
@dataclass
class _Queue:
    """Our resting order's place in the recorded queue at ``file_px`` (the file's own price)."""

    file_px: int
    ahead_known: dict[int, int]  # order id -> shares of it still ahead of us, in time priority
    ahead_anon: int  # shares displayed ahead of us that belong to orders placed before we followed ids

    @property
    def ahead(self) -> int:
        return self.ahead_anon + sum(self.ahead_known.values())

    def consume(self, qty: int) -> int:
        """Take ``qty`` off the front of the queue ahead; returns what the queue ahead absorbed."""
        took = min(self.ahead_anon, qty)
        self.ahead_anon -= took
        for oid in list(self.ahead_known):
            if took == qty:
                break
            n = min(self.ahead_known[oid], qty - took)
            took += n
            self.ahead_known[oid] -= n
            if not self.ahead_known[oid]:
                del self.ahead_known[oid]
        return took


class QueueFillModel(FillModel):
    """The fill model for a recorded book: resting orders fill from the file's order-level events."""

    def __init__(self, params: FillParams | None = None) -> None:
        super().__init__(params)
        self.live: dict[int, tuple[int, int, int]] = {}  # order id -> (direction, price, size) since followed
        self.at: dict[tuple[int, int], dict[int, int]] = {}  # (direction, price) -> {order id: size}, FIFO
        self.queues: dict[str, _Queue] = {}
        self.halted = False
        self._fills: list[Execution] = []
        self._last_tick: Tick | None = None

    # --- orders ---------------------------------------------------------------------------------------
    def limit(self, order_id: str, side: Side, qty: int, price: int, tick: Tick) -> list[Execution]:
        fills = super().limit(order_id, side, qty, price, tick)
        if order_id in self.resting:
            file_px = price - self._shift(tick.ts_event)
            d = 1 if side is Side.BUY else -1
            known = dict(self.at.get((d, file_px), {}))
            shown = _shown(tick, side, file_px)
            self.queues[order_id] = _Queue(file_px, known, max(0, shown - sum(known.values())))
            self.resting[order_id].queue_ahead = self.queues[order_id].ahead
        return fills

    def cancel(self, order_id: str) -> int:
        self.queues.pop(order_id, None)
        return super().cancel(order_id)

    # --- the file's events ----------------------------------------------------------------------------
    def feed(self, m: Message) -> None:
        """One message of the file, in order (before the tick it leads to)."""
        if m.type is EventType.HALT:
            self.halted = m.price != HaltState.TRADING
            return
        if m.type is EventType.NEW:
            self.live[m.order_id] = (m.direction, m.price, m.size)
            self.at.setdefault((m.direction, m.price), {})[m.order_id] = m.size
            if self.queues and not self.halted:
                self._crossing(m)
            return
        if m.type not in (EventType.CANCEL, EventType.DELETE, EventType.EXECUTE):
            return  # hidden executions and crosses never touch the displayed queue
        known = m.order_id in self.live
        if known:
            d, p, size = self.live[m.order_id]
            left = size - m.size
            level = self.at[(d, p)]
            if left > 0:
                self.live[m.order_id] = (d, p, left)
                level[m.order_id] = left
            else:
                del self.live[m.order_id]
                level.pop(m.order_id, None)
                if not level:
                    del self.at[(d, p)]
        if self.queues and not self.halted:
            self._reduce(m, known)

    def _ours(self, direction: int) -> list[tuple[str, _Queue]]:
        """Our resting orders on the side of ``direction``, best price first."""
        side = Side.BUY if direction == 1 else Side.SELL
        mine = [(oid, q) for oid, q in self.queues.items() if self.resting[oid].side is side]
        return sorted(mine, key=lambda x: -x[1].file_px * direction)

    def _reduce(self, m: Message, known: bool) -> None:
        budget = m.size if m.type is EventType.EXECUTE else 0
        for oid, q in self._ours(m.direction):
            through = (m.price < q.file_px) if m.direction == 1 else (m.price > q.file_px)
            if m.type is EventType.EXECUTE and through:
                # The aggressor reached a worse price than ours: it went through our order first.
                budget -= self._fill(oid, budget)
            elif m.price == q.file_px:
                if not known:  # placed before we followed ids, so before we joined: ahead of us
                    q.ahead_anon -= min(m.size, q.ahead_anon)
                elif m.order_id in q.ahead_known:
                    q.ahead_known[m.order_id] -= min(m.size, q.ahead_known[m.order_id])
                    if not q.ahead_known[m.order_id]:
                        del q.ahead_known[m.order_id]
                elif m.type is EventType.EXECUTE and budget:
                    # An order behind us traded: the queue ahead goes first, then us.
                    budget -= q.consume(budget)
                    budget -= self._fill(oid, budget)
            if oid in self.resting:
                self.resting[oid].queue_ahead = q.ahead

    def _crossing(self, m: Message) -> None:
        """An incoming limit order at or through our resting price, on the other side: it would have
        traded with us."""
        budget = m.size
        for oid, q in self._ours(-m.direction):
            crosses = (m.price <= q.file_px) if m.direction == -1 else (m.price >= q.file_px)
            if crosses and budget:
                # The file rests it uncrossed, so nothing of the file is left at our price: the queue we
                # counted ahead of us is gone, and the incoming order meets us.
                q.ahead_known.clear()
                q.ahead_anon = 0
                budget -= self._fill(oid, budget)

    def _fill(self, order_id: str, qty: int) -> int:
        order = self.resting.get(order_id)
        if order is None or qty <= 0:
            return 0
        n = min(order.qty, qty)
        self._fills.append(Execution(order_id, order.price, n, aggressive=False))
        order.qty -= n
        if order.qty == 0:
            del self.resting[order_id]
            self.queues.pop(order_id, None)
        return n

    def on_tick(self, tick: Tick) -> list[Execution]:
        out, self._fills = self._fills, []
        return out


def _shown(tick: Tick, side: Side, price: int) -> int:
    levels = tick.bids if side is Side.BUY else tick.asks
    for lv in levels:
        if to_units(lv.px) == price:
            return lv.sz
    if side is Side.BUY and to_units(tick.bid_px) == price:
        return tick.bid_sz
    if side is Side.SELL and to_units(tick.ask_px) == price:
        return tick.ask_sz
    return 0


# --- a recorded day ---------------------------------------------------------------------------------------
@dataclass
class RecordedDay:
    """One symbol's day from a LOBSTER message/orderbook pair, kept as arrays and replayed on demand."""

    symbol: str
    date: str
    levels: int
    messages: np.ndarray  # [n, 6] int64: time ns after midnight, type, order id, size, price, direction
    rows: np.ndarray  # [n, 4 * levels] int64: the orderbook file's row after each message
    tradable: np.ndarray  # [n] bool: two-sided, uncrossed, not halted after the message
    volume: np.ndarray  # [n] int64: cumulative traded volume (visible and hidden executions)
    problems: list[str] = field(default_factory=list)
    _memo: dict[tuple[int, bytes], tuple[BookLevel, ...]] = field(default_factory=dict, repr=False)
    _levels: dict[tuple[int, int], BookLevel] = field(default_factory=dict, repr=False)

    @property
    def day_ns(self) -> int:
        """The day's midnight in ns since the epoch (UTC, like the synthetic market's session clock)."""
        d = dt.date.fromisoformat(self.date)
        return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * S

    @property
    def day_volume(self) -> int:
        return int(self.volume[-1]) if len(self.volume) else 0

    @property
    def first_ns(self) -> int:
        return self.day_ns + int(self.messages[0, 0])

    @property
    def last_ns(self) -> int:
        return self.day_ns + int(self.messages[-1, 0])

    def volume_between(self, start_ns: int, end_ns: int) -> int:
        t = self.messages[:, 0] + self.day_ns
        i, j = np.searchsorted(t, [start_ns, end_ns])
        before = int(self.volume[i - 1]) if i > 0 else 0
        return int(self.volume[j - 1]) - before if j > 0 else 0

    @classmethod
    def read(cls, messages: Path, orderbook: Path | None = None) -> RecordedDay:
        """Read a pair (the orderbook file found by LOBSTER's naming when not given); a missing file, a
        message file without its orderbook, or malformed lines give a RecordedDataError naming them."""
        m = _NAME.match(messages.name)
        if m is None:
            raise RecordedDataError(
                f"{messages}: not a LOBSTER message file name (TICKER_YYYY-MM-DD_START_END_message_N.csv)"
            )
        if not messages.is_file():
            raise RecordedDataError(f"{messages}: no such file")
        orderbook = orderbook or messages.with_name(messages.name.replace("_message_", "_orderbook_"))
        if not orderbook.is_file():
            raise RecordedDataError(f"{messages}: its orderbook file {orderbook.name} is missing")
        replay = lobster.Replay(m["sym"].upper(), messages, orderbook)
        msgs: list[tuple[int, int, int, int, int, int]] = []
        rows: list[list[int]] = []
        tradable: list[bool] = []
        volume: list[int] = []
        total = 0
        levels = int(m["levels"])
        for ev in replay:
            msg = ev.message
            msgs.append((msg.time_ns, int(msg.type), msg.order_id, msg.size, msg.price, msg.direction))
            rows.append(lobster.row_of(replay.book, levels))
            total += ev.trade_size if msg.type in (EventType.EXECUTE, EventType.HIDDEN_EXECUTE) else 0
            volume.append(total)
            bid, ask = replay.book.best_bid(), replay.book.best_ask()
            tradable.append(not ev.halted and bid is not None and ask is not None and bid.price < ask.price)
        st = replay.stats
        if st.malformed:
            raise RecordedDataError(
                f"{messages}: {st.malformed} malformed line(s): " + "; ".join(st.problems[:3])
            )
        if not msgs:
            raise RecordedDataError(f"{messages}: no messages")
        return cls(
            symbol=m["sym"].upper(), date=m["date"], levels=levels,
            messages=np.asarray(msgs, dtype=np.int64), rows=np.asarray(rows, dtype=np.int64),
            tradable=np.asarray(tradable, dtype=bool), volume=np.asarray(volume, dtype=np.int64),
            problems=st.problems,
        )  # fmt: skip

    @classmethod
    def from_messages(cls, symbol: str, date: str, messages: list[Message], levels: int = 5) -> RecordedDay:
        """A day straight from a generated flow (``generate_day``), as if written and read back."""
        book = Book(symbol)
        rows: list[list[int]] = []
        tradable: list[bool] = []
        volume: list[int] = []
        total = 0
        for msg in messages:
            lobster.apply(book, msg)
            rows.append(lobster.row_of(book, levels))
            total += msg.size if msg.type in (EventType.EXECUTE, EventType.HIDDEN_EXECUTE) else 0
            volume.append(total)
            bid, ask = book.best_bid(), book.best_ask()
            tradable.append(bid is not None and ask is not None and bid.price < ask.price)
        arr = [(m.time_ns, int(m.type), m.order_id, m.size, m.price, m.direction) for m in messages]
        return cls(
            symbol=symbol, date=date, levels=levels, messages=np.asarray(arr, dtype=np.int64),
            rows=np.asarray(rows, dtype=np.int64), tradable=np.asarray(tradable, dtype=bool),
            volume=np.asarray(volume, dtype=np.int64),
        )  # fmt: skip

    def ticks(
        self,
        fills: QueueFillModel,
        start_ns: int,
        end_ns: int,
        depth: int | None = None,
        *,
        after_seq: int | None = None,
    ) -> Iterator[Tick]:
        """The ticks from ``start_ns`` to ``end_ns``, each after the message that led to it, which
        ``fills`` receives first. ``seq`` is the message's index in the file. ``after_seq``: go on right
        after that message instead (a replay forked at a tick, with a copy of the fill model)."""
        depth = self.levels if depth is None else min(depth, self.levels)
        t = self.messages[:, 0] + self.day_ns
        i0, i1 = (int(x) for x in np.searchsorted(t, [start_ns, end_ns], side="right"))
        if after_seq is not None:
            i0 = after_seq + 1
        for i in range(i0, i1):
            row = self.messages[i]
            msg = Message(
                int(row[0]), EventType(int(row[1])), int(row[2]), int(row[3]), int(row[4]), int(row[5])
            )
            fills.feed(msg)
            if not self.tradable[i]:
                continue
            yield self._tick(i, msg, int(t[i]), depth)

    def _side(self, r: np.ndarray, depth: int, k0: int, empty: int) -> tuple[BookLevel, ...]:
        """One side's levels of row ``r`` (price at 4k + k0, size after it), memoised: consecutive rows
        usually differ on one side only, and levels repeat all day."""
        vals = r[: 4 * depth].reshape(depth, 4)[:, k0 : k0 + 2]
        key = (k0, vals.tobytes())
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        levels = []
        for px, sz in vals.tolist():
            if sz <= 0 or px == empty:
                continue
            lv = self._levels.get((px, sz))
            if lv is None:
                lv = self._levels[(px, sz)] = BookLevel.model_construct(px=to_float(px), sz=sz)
            levels.append(lv)
        out = tuple(levels)
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[key] = out
        return out

    def _tick(self, i: int, msg: Message, ts: int, depth: int) -> Tick:
        r = self.rows[i]
        asks = self._side(r, depth, 0, lobster.EMPTY_ASK)
        bids = self._side(r, depth, 2, lobster.EMPTY_BID)
        traded = msg.type in (EventType.EXECUTE, EventType.HIDDEN_EXECUTE)
        # Validated once by the replay (two-sided, uncrossed): built without re-validation for speed.
        return Tick.model_construct(
            symbol=self.symbol, venue="LOBSTER", seq=i, ts_event=ts, ts_init=ts,
            bid_px=bids[0].px, bid_sz=bids[0].sz, ask_px=asks[0].px, ask_sz=asks[0].sz,
            bids=bids, asks=asks, volume=int(self.volume[i]),
            trade_px=to_float(msg.price) if traded else None, trade_sz=msg.size if traded else 0,
            trade_side=(Side.SELL if msg.direction == 1 else Side.BUY) if traded else None,
        )  # fmt: skip


def find_days(folder: Path) -> list[Path]:
    """The message files of a folder of LOBSTER pairs, sorted; a clear error for an unusable folder."""
    if not folder.is_dir():
        raise RecordedDataError(f"{folder}: no such folder")
    found = sorted(p for p in folder.iterdir() if "_message_" in p.name and p.suffix == ".csv")
    if not found:
        raise RecordedDataError(f"{folder}: no LOBSTER message files (*_message_N.csv)")
    for p in found:
        ob = p.with_name(p.name.replace("_message_", "_orderbook_"))
        if not ob.is_file():
            raise RecordedDataError(f"{p}: its orderbook file {ob.name} is missing")
    return found


# --- generated days (LOBSTER format, for tests and training; never real data) ----------------------------
def generate_day(
    seed: int,
    symbol: str = "TEST",
    *,
    profile: str = "mid",
    start_s: int = 34_200,
    end_s: int = 57_600,
    **changes: float,
) -> list[Message]:
    """A seeded order-level day of a market profile (``market.orderflow``: ``large-tick`` $30, ``mid``
    $200, ``high`` $600), with any of the profile's fields changed (``price``, ``events_per_s``,
    ``daily_vol``, ...)."""
    return orderflow.generate(seed, orderflow.profile(profile, **changes), start_s=start_s, end_s=end_s)


def write_day(
    out_dir: Path,
    seed: int,
    symbol: str,
    date: str,
    levels: int = 10,
    *,
    profile: str = "mid",
    start_s: int = 34_200,
    end_s: int = 57_600,
    **changes: float,
) -> tuple[Path, Path]:
    """Generate a day and write it as a LOBSTER message/orderbook pair."""
    msgs = generate_day(seed, symbol, profile=profile, start_s=start_s, end_s=end_s, **changes)
    mname, oname = lobster.file_names(symbol, date, levels, start_s * 1000, end_s * 1000)
    m, o = lobster.write(msgs, out_dir, symbol, date, levels)
    if (m.name, o.name) != (mname, oname):
        m = m.rename(out_dir / mname)
        o = o.rename(out_dir / oname)
    return m, o
