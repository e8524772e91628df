"""``paceline demo``: bring up Apache Pulsar and push typed ticks through it end to end.

For now the demo proves the foundation: a real broker (started here when none answers), one persistent topic
per equity, typed ticks keyed by symbol, per-symbol order checked on the way out, and the publish-to-receive
latency of each symbol. Later issues grow it into the full pipeline (receiver, workers, endpoint, FIX client).
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field

from models import Side, Tick, now_ns, topics
from paceline import broker
from runtime.bus import Bus, Consumer
from runtime.logs import get_logger
from runtime.settings import Settings

log = get_logger("paceline.demo")

TICK_SIZE = 0.01


def random_walk_ticks(symbol: str, n: int, seed: int, start_px: float = 100.0) -> list[Tick]:
    """A small seeded quote stream on a 1-cent grid (the real synthetic market arrives with issue 3)."""
    rng = random.Random(f"{symbol}:{seed}")
    mid_ticks = round(start_px / TICK_SIZE)
    t = 34_200 * 10**9  # 09:30 in ns after midnight, on a synthetic day
    volume = 0
    out: list[Tick] = []
    for seq in range(n):
        mid_ticks += rng.choice((-1, 0, 0, 1))
        half = rng.choice((1, 1, 2))
        t += rng.randint(1, 50) * 1_000_000
        traded = rng.random() < 0.3
        size = rng.randint(1, 5) * 100 if traded else 0
        volume += size
        out.append(
            Tick(
                symbol=symbol,
                seq=seq,
                ts_event=t,
                ts_init=0,
                bid_px=round((mid_ticks - half) * TICK_SIZE, 2),
                bid_sz=rng.randint(1, 20) * 100,
                ask_px=round((mid_ticks + half) * TICK_SIZE, 2),
                ask_sz=rng.randint(1, 20) * 100,
                trade_px=round((mid_ticks + half) * TICK_SIZE, 2) if traded else None,
                trade_sz=size,
                trade_side=Side.BUY if traded else None,
                volume=volume,
            )
        )
    return out


@dataclass
class SymbolResult:
    symbol: str
    published: int = 0
    received: int = 0
    out_of_order: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def _drain(consumer: Consumer[Tick], res: SymbolResult, expected: int, deadline: float) -> None:
    last_seq = -1
    while res.received < expected and time.monotonic() < deadline:
        d = consumer.receive(timeout_ms=1000)
        if d is None:
            continue
        res.latencies_ms.append((now_ns() - d.message.ts_init) / 1e6)
        if d.message.seq <= last_seq:
            res.out_of_order += 1
        last_seq = d.message.seq
        res.received += 1
        consumer.ack(d)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]
        if len(values) > 1
        else values[0]
    )


def run_demo(settings: Settings, *, symbols: list[str], ticks: int, rate: float, keep_broker: bool) -> int:
    cfg = broker.BrokerConfig(run_dir=settings.home / "broker", cache_dir=settings.cache_dir)
    started_here = False
    if broker.is_ready(settings.pulsar_admin_url):
        print(f"using the broker already answering at {settings.pulsar_admin_url}")
        broker.ensure_namespaces(settings.pulsar_admin_url)
    else:
        res = broker.provision(settings.cache_dir)
        print(f"Apache Pulsar {broker.pulsar_version()} provisioned: {res.jars} jars, {res.size_mb:.0f} MB")
        broker.start(cfg)
        print("starting the standalone broker ...")
        print(f"broker ready after {broker.wait(cfg):.1f} s")
        started_here = True
    try:
        return _push_ticks(settings, symbols, ticks, rate)
    finally:
        if started_here and not keep_broker:
            broker.stop(cfg)
            print("broker stopped")


def _push_ticks(settings: Settings, symbols: list[str], ticks: int, rate: float) -> int:
    run_id = uuid.uuid4().hex[:8]
    results = {s: SymbolResult(s) for s in symbols}
    with Bus(settings.pulsar_url) as bus:
        consumers = {
            s: bus.subscribe(topics.ticks(s), f"demo-{run_id}", Tick, from_earliest=False) for s in symbols
        }
        deadline = time.monotonic() + 120
        threads = [
            threading.Thread(target=_drain, args=(consumers[s], results[s], ticks, deadline), daemon=True)
            for s in symbols
        ]
        for th in threads:
            th.start()
        producers = {s: bus.producer(topics.ticks(s), name=f"demo-{run_id}-{s}") for s in symbols}
        streams = {s: random_walk_ticks(s, ticks, seed=7) for s in symbols}
        t0 = time.perf_counter()
        # Paced at `rate` ticks/s in all, so the latency shown is the path's, not a queue the demo built.
        interval = len(symbols) / rate
        for i in range(ticks):
            delay = t0 + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for s in symbols:
                tick = streams[s][i].model_copy(update={"ts_init": now_ns()})
                producers[s].send_async(tick, key=s, sequence_id=tick.seq, event_time_ns=tick.ts_event)
                results[s].published += 1
        for p in producers.values():
            p.flush()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        for c in consumers.values():
            c.close()
        for p in producers.values():
            p.close()
    total = sum(r.received for r in results.values())
    print(
        f"\n{'symbol':8s} {'published':>9s} {'received':>9s} {'in order':>8s} {'p50 ms':>7s} {'p99 ms':>7s}"
    )
    ok = True
    for r in results.values():
        good = r.received == r.published and r.out_of_order == 0
        ok &= good
        print(
            f"{r.symbol:8s} {r.published:9d} {r.received:9d} {'yes' if r.out_of_order == 0 else 'NO':>8s} "
            f"{_pct(r.latencies_ms, 0.5):7.2f} {_pct(r.latencies_ms, 0.99):7.2f}"
        )
    print(
        f"\n{total} ticks through Apache Pulsar in {elapsed:.2f} s ({total / elapsed:,.0f} ticks/s): "
        + ("every tick arrived, in order per symbol" if ok else "TICKS MISSING OR OUT OF ORDER")
    )
    return 0 if ok else 1
