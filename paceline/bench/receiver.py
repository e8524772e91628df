"""``paceline bench receiver``: the Receiver's sustained publish rate into a real broker, beside a bare
``pulsar-client`` producer loop on the same broker in the same run (same message count, same payload
sizes, no batching, the same in-flight window). The ratio is the Receiver's overhead: codec, metrics,
per-symbol producers, pacing logic."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pulsar

from market.synthetic import SymbolSpec, SyntheticMarket
from models import Tick, encode, topics
from paceline.bench.stats import percentile
from receiver.service import Receiver
from runtime.bus import Bus


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    latencies_s: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def pct_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1e3


def _ticks(symbols: list[str], per_symbol: int, seed: int) -> list[Tick]:
    out: list[Tick] = []
    counts = dict.fromkeys(symbols, 0)
    for t in SyntheticMarket([SymbolSpec(s) for s in symbols], seed, depth=0):
        if counts[t.symbol] < per_symbol:
            out.append(t)
            counts[t.symbol] += 1
        if len(out) == per_symbol * len(symbols):
            break
    return out


def bench_receiver(url: str, ticks: list[Tick]) -> Result:
    with Bus(url) as bus:
        rx = Receiver(bus, name=f"bench-{uuid.uuid4().hex[:6]}", speed=None, keep_latencies=True)
        for sym in {t.symbol for t in ticks}:  # producers up front: connection set-up is not throughput
            rx.prepare(sym)
        t0 = time.perf_counter()
        stats = rx.run(ticks)
        secs = time.perf_counter() - t0
        rx.close()
    return Result("Receiver (paceline)", stats.published, secs, stats.latencies_s)


def bench_bare(url: str, ticks: list[Tick]) -> Result:
    payloads = [(t.symbol, encode(t)) for t in ticks]  # encoded outside the timed loop: the bare floor
    client = pulsar.Client(url, io_threads=1, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    run = uuid.uuid4().hex[:6]
    producers: dict[str, Any] = {
        s: client.create_producer(
            topics.ticks(s) + f"-bare{run}",
            batching_enabled=False,
            block_if_queue_full=True,
            max_pending_messages=1000,
        )
        for s in {t.symbol for t in ticks}
    }
    lat: list[float] = []
    lock = threading.Lock()

    def cb_for(t0: float):  # type: ignore[no-untyped-def]
        def cb(res: Any, _mid: Any) -> None:
            with lock:
                lat.append(time.perf_counter() - t0)

        return cb

    t0 = time.perf_counter()
    for sym, data in payloads:
        producers[sym].send_async(data, cb_for(time.perf_counter()), partition_key=sym)
    for p in producers.values():
        p.flush()
    secs = time.perf_counter() - t0
    client.close()
    return Result("bare pulsar-client", len(lat), secs, lat)


def run(url: str, symbols: list[str], per_symbol: int, rounds: int = 3) -> int:
    ticks = _ticks(symbols, per_symbol, seed=1)
    print(f"{len(ticks)} ticks, {len(symbols)} symbols, broker {url}; best of {rounds} rounds, alternating")
    best: dict[str, Result] = {}
    for _ in range(rounds):
        for fn in (bench_bare, bench_receiver):
            r = fn(url, ticks)
            if r.name not in best or r.rate > best[r.name].rate:
                best[r.name] = r
    print(f"\n{'':22s} {'ticks/s':>10s} {'ack p50 ms':>11s} {'ack p99 ms':>11s}")
    for r in best.values():
        print(f"{r.name:22s} {r.rate:10,.0f} {r.pct_ms(0.5):11.2f} {r.pct_ms(0.99):11.2f}")
    bare, ours = best["bare pulsar-client"], best["Receiver (paceline)"]
    print(f"\nReceiver / bare rate: {ours.rate / bare.rate:.2f}  (aim: >= 0.80)")
    ratio = statistics.median(ours.latencies_s) / statistics.median(bare.latencies_s)
    print(f"median ack latency ratio: {ratio:.2f}")
    return 0
