"""``paceline demo``: bring up Apache Pulsar and run the market-data path end to end.

A real broker (started here when none answers), the Receiver publishing the synthetic market's opening
minutes at an accelerated clock to one persistent topic per equity, and a consumer per equity that checks
every tick arrived in order and measures publish-to-receive latency. Later issues grow it into the full
pipeline (health-checker, workers, endpoint, a FIX client working parent orders).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from market.synthetic import SESSION_OPEN_S
from models import Tick, now_ns, topics
from paceline import broker
from receiver.service import Receiver
from receiver.sources import synthetic
from runtime.bus import Bus, Consumer
from runtime.logs import get_logger
from runtime.settings import Settings

log = get_logger("paceline.demo")


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


def run_demo(
    settings: Settings, *, symbols: list[str], minutes: float, speed: float, keep_broker: bool
) -> int:
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
        return _push_ticks(settings, symbols, minutes, speed)
    finally:
        if started_here and not keep_broker:
            broker.stop(cfg)
            print("broker stopped")


def _push_ticks(settings: Settings, symbols: list[str], minutes: float, speed: float) -> int:
    run_id = uuid.uuid4().hex[:8]
    close_s = SESSION_OPEN_S + int(minutes * 60)
    expected = Counter(t.symbol for t in synthetic(symbols, seed=7, depth=5, close_s=close_s))  # type: ignore[union-attr]
    results = {s: SymbolResult(s) for s in symbols}
    print(f"publishing the first {minutes:g} minutes of a synthetic session at {speed:g}x: "
          f"{sum(expected.values())} ticks for {', '.join(symbols)}")  # fmt: skip
    with Bus(settings.pulsar_url) as bus:
        consumers = {
            s: bus.subscribe(topics.ticks(s), f"demo-{run_id}", Tick, from_earliest=False) for s in symbols
        }
        deadline = time.monotonic() + 60 + minutes * 60 / speed
        threads = [
            threading.Thread(
                target=_drain, args=(consumers[s], results[s], expected[s], deadline), daemon=True
            )
            for s in symbols
        ]
        for th in threads:
            th.start()
        rx = Receiver(bus, name=f"demo-{run_id}", speed=speed)
        for s in symbols:  # producers before the clock starts: a topic lookup is not tick latency
            rx.prepare(s)
        t0 = time.perf_counter()
        stats = rx.run(synthetic(symbols, seed=7, depth=5, close_s=close_s))
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        for s, n in rx.per_symbol.items():
            results[s].published = n
        rx.close()
        for c in consumers.values():
            c.close()
    total = sum(r.received for r in results.values())
    print(
        f"\n{'symbol':8s} {'published':>9s} {'received':>9s} {'in order':>8s} {'p50 ms':>7s} {'p99 ms':>7s}"
    )
    ok = stats.failed == 0
    for r in results.values():
        good = r.received == r.published == expected[r.symbol] and r.out_of_order == 0
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
