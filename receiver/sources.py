"""Where ticks come from. Every source yields Ticks, or Malformed records that say where and why; a source
never raises on bad input."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from market.lobster import Replay
from market.synthetic import DEFAULT_DAY_NS, SymbolSpec, SyntheticMarket
from models import DecodeError, Tick, decode
from receiver import metrics


@dataclass(frozen=True, slots=True)
class Malformed:
    source: str
    position: str  # e.g. "line 12"
    reason: str


Record = Tick | Malformed


def synthetic(
    symbols: list[str], seed: int, *, depth: int = 5, day_ns: int = DEFAULT_DAY_NS, close_s: int | None = None
) -> Iterator[Record]:
    specs = [SymbolSpec(s) for s in symbols]
    if close_s is None:
        yield from SyntheticMarket(specs, seed, day_ns=day_ns, depth=depth)
    else:
        yield from SyntheticMarket(specs, seed, day_ns=day_ns, depth=depth, close_s=close_s)


def lobster(
    symbol: str, messages: Path, orderbook: Path | None, *, day_ns: int = DEFAULT_DAY_NS, depth: int = 5
) -> Iterator[Record]:
    """A LOBSTER replay; lines the reader could not use come out as Malformed, in file order."""
    replay = Replay(symbol, messages, orderbook)
    reported = 0
    for tick in replay.ticks(day_start_ns=day_ns, depth=depth):
        yield from _new_problems(replay, reported, messages.name)
        reported = len(replay.stats.problems)
        yield tick
    yield from _new_problems(replay, reported, messages.name)


def _new_problems(replay: Replay, reported: int, name: str) -> Iterator[Malformed]:
    for text in replay.stats.problems[reported:]:
        position, _, reason = text.partition(": ")
        yield Malformed(name, position, reason)


def tick_file(path: Path) -> Iterator[Record]:
    """JSON lines, one Tick each (the bus codec's format)."""
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield decode(line.strip(), Tick)
            except DecodeError as exc:
                yield Malformed(path.name, f"line {n}", str(exc))


class FeedMerger:
    """Merge redundant feeds of the same instruments, dropping what was already passed on.

    Ticks are passed on at most once per (symbol, venue sequence number) and in sequence order per symbol:
    a tick at or below the last sequence passed on is a duplicate. When one feed dies, the other carries
    on and nothing is lost; when both carry a tick, the first to arrive wins.
    """

    def __init__(self) -> None:
        self.last_seq: dict[str, int] = {}
        self.duplicates = 0

    def accept(self, tick: Tick) -> bool:
        if tick.seq <= self.last_seq.get(tick.symbol, -1):
            self.duplicates += 1
            metrics.DUPLICATES.inc()
            return False
        self.last_seq[tick.symbol] = tick.seq
        return True

    def merge(self, *feeds: Iterator[Record]) -> Iterator[Record]:
        """Interleave feeds by event time (a dead feed simply ends) and de-duplicate."""
        heap: list[tuple[int, int, int, Record]] = []
        counter = 0

        def push(i: int) -> None:
            nonlocal counter
            rec = next(feeds[i], None)
            if rec is not None:
                counter += 1  # ties keep arrival order
                key = rec.ts_event if isinstance(rec, Tick) else -1
                heapq.heappush(heap, (key, counter, i, rec))

        for i in range(len(feeds)):
            push(i)
        while heap:
            _, _, i, rec = heapq.heappop(heap)
            push(i)
            if isinstance(rec, Malformed) or self.accept(rec):
                yield rec
