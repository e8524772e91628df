"""LOBSTER files: read, replay into a Book checked row by row, and write (for generated test data).

A message file has one event a line: time (seconds after midnight, up to ns decimals), type (1 new limit
order, 2 partial cancel, 3 delete, 4 visible execution, 5 hidden execution, 6 cross trade, 7 halt),
order id, size, price times 10,000, direction (1 buy / -1 sell side of the *limit* order). The orderbook
file holds the state after each event: ask price, ask size, bid price, bid size per level; an empty level
has price 9999999999 (ask) or -9999999999 (bid) and size 0. Both are streamed line by line: memory stays
bounded whatever the file size. LOBSTER data must never be committed (its terms forbid redistribution);
tests use files this module writes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TextIO

from market.book import Book, BookError, Level
from market.prices import CENT, to_float
from models import Side, Tick

EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999


class EventType(IntEnum):
    NEW = 1
    CANCEL = 2
    DELETE = 3
    EXECUTE = 4
    HIDDEN_EXECUTE = 5
    CROSS = 6
    HALT = 7


class HaltState(IntEnum):
    """Price field of a type-7 message."""

    HALTED = -1
    QUOTING = 0
    TRADING = 1


@dataclass(frozen=True, slots=True)
class Message:
    time_ns: int  # since midnight
    type: EventType
    order_id: int
    size: int
    price: int
    direction: int
    line: int = 0

    @property
    def side(self) -> Side:
        return Side.BUY if self.direction == 1 else Side.SELL

    def to_csv(self) -> str:
        secs, ns = divmod(self.time_ns, 1_000_000_000)
        return f"{secs}.{ns:09d},{int(self.type)},{self.order_id},{self.size},{self.price},{self.direction}"


@dataclass(frozen=True, slots=True)
class Malformed:
    line: int
    reason: str
    text: str


def parse_time_ns(text: str) -> int:
    """'34200.004241176' -> ns after midnight, exactly (no float rounding). Recorded files also print
    times with more than nine decimals ('43002.632812672004', a float's digits): rounded to the ns."""
    secs, _, frac = text.strip().partition(".")
    if not secs.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad time {text!r}")
    ns = int(frac[:9].ljust(9, "0") or 0)
    if len(frac) > 9:  # round half up on the digits beyond the ns
        rest = frac[9:]
        ns += int(rest) * 2 >= 10 ** len(rest)
    return int(secs) * 1_000_000_000 + ns


def parse_message(text: str, line: int) -> Message | Malformed:
    parts = text.strip().split(",")
    if len(parts) != 6:
        return Malformed(line, f"expected 6 fields, got {len(parts)}", text)
    try:
        t = parse_time_ns(parts[0])
        typ = EventType(int(parts[1]))
        oid, size, price, direction = (int(p) for p in parts[2:])
    except ValueError as exc:
        return Malformed(line, str(exc), text)
    if direction not in (1, -1):
        return Malformed(line, f"direction must be 1 or -1, got {direction}", text)
    if typ is not EventType.HALT and (size <= 0 or price <= 0):
        return Malformed(line, f"non-positive size {size} or price {price}", text)
    return Message(t, typ, oid, size, price, direction, line)


def read_messages(path: Path) -> Iterator[Message | Malformed]:
    with path.open() as fh:
        for n, text in enumerate(fh, start=1):
            if text.strip():
                yield parse_message(text, n)


def parse_row(text: str) -> list[int]:
    values = [int(v) for v in text.strip().split(",")]
    if not values or len(values) % 4:
        raise ValueError(f"an orderbook row needs 4 values per level, got {len(values)}")
    return values


def row_of(book: Book, levels: int) -> list[int]:
    """The book's top ``levels`` in orderbook-file layout, with LOBSTER's sentinels for empty levels."""
    asks = book.depth(Side.SELL, levels)
    bids = book.depth(Side.BUY, levels)
    out: list[int] = []
    for i in range(levels):
        a = asks[i] if i < len(asks) else Level(EMPTY_ASK, 0)
        b = bids[i] if i < len(bids) else Level(EMPTY_BID, 0)
        out += [a.price, a.size, b.price, b.size]
    return out


def _row_side(row: list[int], side: Side) -> list[tuple[int, int]]:
    """One side's shown levels of an orderbook row, best first, sentinels left out."""
    px, empty = (0, EMPTY_ASK) if side is Side.SELL else (2, EMPTY_BID)
    return [(row[i + px], row[i + px + 1]) for i in range(0, len(row), 4) if row[i + px] != empty]


def load_row(book: Book, row: list[int]) -> None:
    """Resynchronise the book's top levels from an orderbook row (sentinel levels are skipped)."""
    book.clear()
    for i in range(0, len(row), 4):
        ap, asz, bp, bsz = row[i : i + 4]
        if ap != EMPTY_ASK and asz > 0:
            book.set_level(Side.SELL, ap, asz)
        if bp != EMPTY_BID and bsz > 0:
            book.set_level(Side.BUY, bp, bsz)


@dataclass
class ReplayStats:
    messages: int = 0
    malformed: int = 0
    inconsistent: int = 0  # events the book could not apply (BookError)
    mismatches: int = 0  # rows where the rebuilt book differed from the orderbook file where it could know
    # Rows that brought a level from beyond the file's depth (a level emptied and the next one appeared),
    # and events on such a level for more than the book knows is there: the book cannot know those
    # levels, so it takes them from the rows and counts neither as a mismatch nor as inconsistent.
    beyond_depth: int = 0
    halts: int = 0
    trades: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, with line numbers

    def note(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


@dataclass(frozen=True, slots=True)
class Event:
    """One applied message and what it did."""

    message: Message
    trade_px: int | None  # price units, for executions and cross trades
    trade_size: int
    aggressor: Side | None
    halted: bool


class Replay:
    """Rebuild the book from a message file; with an orderbook file, check it after every message and
    resynchronise from the file where they differ (counted in ``stats``)."""

    def __init__(self, symbol: str, messages: Path, orderbook: Path | None = None) -> None:
        self.symbol = symbol
        self.messages_path = messages
        self.orderbook_path = orderbook
        self.book = Book(symbol)
        self.stats = ReplayStats()
        self.halted = False
        # Per side, the deepest price up to which the book is complete (None: all of it). A book loaded
        # from a full orderbook row knows nothing beyond that row's last level.
        self._known: dict[Side, int | None] = {Side.BUY: None, Side.SELL: None}

    def _load(self, row: list[int]) -> None:
        load_row(self.book, row)
        levels = len(row) // 4
        for side in (Side.SELL, Side.BUY):
            shown = _row_side(row, side)
            self._known[side] = shown[-1][0] if len(shown) == levels else None

    def _beyond(self, side: Side, price: int) -> bool:
        """A price deeper than the part of ``side`` the book is complete for."""
        bound = self._known[side]
        return bound is not None and (price > bound if side is Side.SELL else price < bound)

    def _reduce(self, m: Message) -> None:
        """Beyond the known part of the book a level may hold orders placed before the file started: a
        cancel or execution of more than the book knows there empties the level, without an error."""
        if self._beyond(m.side, m.price) and self.book.size_at(m.side, m.price) <= m.size:
            self.book.set_level(m.side, m.price, 0)
            self.stats.beyond_depth += 1
        else:
            self.book.reduce(m.side, m.price, m.size)

    def _disagrees(self, row: list[int]) -> bool:
        """Whether the book differs from the row on a level it could know: within the part of each side
        it is complete for, and no deeper than the row shows."""
        levels = len(row) // 4
        for side in (Side.SELL, Side.BUY):
            shown = _row_side(row, side)
            bounds = [p for p in (self._known[side], shown[-1][0] if len(shown) == levels else None) if p]
            # The shallower of the two bounds: the lower ask, the higher bid.
            bound = (min if side is Side.SELL else max)(bounds, default=None)

            def known(p: int, bound: int | None = bound, sell: bool = side is Side.SELL) -> bool:
                return bound is None or (p <= bound if sell else p >= bound)

            mine = [(lv.price, lv.size) for lv in self.book.depth(side, levels) if known(lv.price)]
            if mine != [(p, q) for p, q in shown if known(p)]:
                return True
        return False

    def _apply(self, m: Message) -> Event:
        trade_px, trade_size, aggressor = None, 0, None
        if m.type is EventType.NEW:
            self.book.add(m.side, m.price, m.size)
        elif m.type in (EventType.CANCEL, EventType.DELETE):
            self._reduce(m)
        elif m.type is EventType.EXECUTE:
            self._reduce(m)
            trade_px, trade_size, aggressor = m.price, m.size, Side.SELL if m.direction == 1 else Side.BUY
        elif m.type is EventType.HIDDEN_EXECUTE:
            trade_px, trade_size, aggressor = m.price, m.size, Side.SELL if m.direction == 1 else Side.BUY
        elif m.type is EventType.CROSS:
            trade_px, trade_size = m.price, m.size
        elif m.type is EventType.HALT:
            self.stats.halts += 1
            self.halted = m.price != HaltState.TRADING
        if trade_size:
            self.stats.trades += 1
        return Event(m, trade_px, trade_size, aggressor, self.halted)

    def __iter__(self) -> Iterator[Event]:
        rows: TextIO | None = self.orderbook_path.open() if self.orderbook_path else None
        first = True
        try:
            for rec in read_messages(self.messages_path):
                row_text = rows.readline() if rows else ""
                if isinstance(rec, Malformed):
                    self.stats.malformed += 1
                    self.stats.note(f"line {rec.line}: malformed: {rec.reason}")
                    continue
                self.stats.messages += 1
                row = self._row(row_text, rec.line)
                if first and row is not None:
                    # The first row is the state after the first message, including orders placed before
                    # the file starts: take it as the initial book.
                    self._load(row)
                    first = False
                    yield Event(rec, None, 0, None, self.halted)
                    continue
                first = False
                try:
                    event = self._apply(rec)
                except BookError as exc:
                    self.stats.inconsistent += 1
                    self.stats.note(f"line {rec.line}: {exc}")
                    event = Event(rec, None, 0, None, self.halted)
                if row is not None and row_of(self.book, len(row) // 4) != row:
                    if self._disagrees(row):
                        self.stats.mismatches += 1
                        self.stats.note(f"line {rec.line}: book differs from the orderbook file (resynced)")
                    else:
                        self.stats.beyond_depth += 1
                    self._load(row)
                yield event
        finally:
            if rows:
                rows.close()

    def _row(self, text: str, line: int) -> list[int] | None:
        if not text:
            return None
        try:
            return parse_row(text)
        except ValueError as exc:
            self.stats.malformed += 1
            self.stats.note(f"orderbook line {line}: {exc}")
            return None

    def ticks(self, *, day_start_ns: int = 0, depth: int = 0) -> Iterator[Tick]:
        """Ticks after each event with a two-sided, uncrossed book, outside halts. ``seq`` is the line."""
        volume = 0
        for ev in self:
            volume += ev.trade_size
            if ev.halted:
                continue
            bid, ask = self.book.best_bid(), self.book.best_ask()
            if bid is None or ask is None or bid.price >= ask.price:
                continue
            ts = day_start_ns + ev.message.time_ns
            trade: dict[str, object] = {"volume": volume}
            if ev.trade_size:
                trade |= {"trade_px": to_float(ev.trade_px or 0), "trade_sz": ev.trade_size,
                          "trade_side": ev.aggressor}  # fmt: skip
            yield self.book.to_tick(seq=ev.message.line, ts_event=ts, ts_init=ts, depth=depth, **trade)


def file_names(
    symbol: str, date: str, levels: int, start_ms: int = 34_200_000, end_ms: int = 57_600_000
) -> tuple[str, str]:
    """LOBSTER's naming: TICKER_DATE_START_END_message_LEVELS.csv and ..._orderbook_LEVELS.csv."""
    stem = f"{symbol}_{date}_{start_ms}_{end_ms}"
    return f"{stem}_message_{levels}.csv", f"{stem}_orderbook_{levels}.csv"


def apply(book: Book, m: Message) -> None:
    """What a message does to the displayed book (hidden executions, crosses and halts leave it as it is)."""
    if m.type is EventType.NEW:
        book.add(m.side, m.price, m.size)
    elif m.type in (EventType.CANCEL, EventType.DELETE, EventType.EXECUTE):
        book.reduce(m.side, m.price, m.size)


def write(
    messages: Iterable[Message], out_dir: Path, symbol: str, date: str, levels: int
) -> tuple[Path, Path]:
    """Write a message file and the matching orderbook file (the book after each message)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mname, oname = file_names(symbol, date, levels)
    book = Book(symbol)
    with (out_dir / mname).open("w") as mf, (out_dir / oname).open("w") as of:
        for m in messages:
            apply(book, m)
            mf.write(m.to_csv() + "\n")
            of.write(",".join(map(str, row_of(book, levels))) + "\n")
    return out_dir / mname, out_dir / oname


def generate_messages(
    seed: int, n: int, *, mid: int = 100 * 10_000, halt_at: int | None = None
) -> list[Message]:
    """A seeded, internally consistent order flow (orders tracked by id) for LOBSTER-format test files:
    adds around the touch, partial cancels, deletes, visible and hidden executions, and optionally a halt."""
    rng = random.Random(seed)
    live: dict[int, tuple[int, int, int]] = {}  # id -> (direction, price, size)
    out: list[Message] = []
    t = 34_200 * 1_000_000_000
    next_id = 1

    def best(direction: int) -> int | None:
        prices = [p for d, p, _ in live.values() if d == direction]
        if not prices:
            return None
        return max(prices) if direction == 1 else min(prices)

    for _ in range(n):
        t += rng.randint(1, 2_000_000)
        if halt_at is not None and len(out) == halt_at:
            out += [Message(t, EventType.HALT, 0, 0, -1, -1), Message(t + 1000, EventType.HALT, 0, 0, 0, -1),
                    Message(t + 2000, EventType.HALT, 0, 0, 1, -1)]  # fmt: skip
            continue
        r = rng.random()
        if r < 0.5 or len(live) < 6:
            direction = rng.choice((1, -1))
            bb, ba = best(1), best(-1)
            if direction == 1:
                top = (ba - CENT) if ba is not None else mid - CENT
                price = top - CENT * rng.randint(0, 4)
            else:
                bottom = (bb + CENT) if bb is not None else mid + CENT
                price = bottom + CENT * rng.randint(0, 4)
            size = rng.randint(1, 10) * 100
            live[next_id] = (direction, price, size)
            out.append(Message(t, EventType.NEW, next_id, size, price, direction))
            next_id += 1
        elif r < 0.95:
            oid = rng.choice(list(live))
            direction, price, size = live[oid]
            kind = rng.choice((EventType.CANCEL, EventType.DELETE, EventType.EXECUTE))
            if kind is EventType.EXECUTE and price != best(direction):
                kind = EventType.DELETE
            qty = size if kind is EventType.DELETE else rng.randint(1, size)
            out.append(Message(t, kind, oid, qty, price, direction))
            if qty == size:
                del live[oid]
            else:
                live[oid] = (direction, price, size - qty)
        else:
            direction = rng.choice((1, -1))
            ref = best(direction) or mid
            out.append(Message(t, EventType.HIDDEN_EXECUTE, 0, rng.randint(1, 5) * 100, ref, direction))
    return out
