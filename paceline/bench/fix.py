"""``paceline bench fix``: the FIX round trip a client sees, NewOrderSingle -> ExecutionReport New, with the
services as separate processes on a running broker (``paceline health-checker``, ``paceline endpoint``,
``paceline worker``), a synthetic market feeding the endpoint, and a QuickFIX initiator as the client.

The New comes from the saga, not from the endpoint: the order crosses the broker to the health-checker,
is appended to the saga log, and the report crosses the broker back. For scale, the same run measures a
bare ``pulsar-client`` hop (send -> receive) on the same broker: the round trip is at least two such
hops plus the log append.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fixclient import FixClient
from models import Tick
from paceline.stats import percentile
from receiver import sources
from receiver.service import Receiver
from runtime.bus import Bus
from runtime.settings import Settings


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(settings: Settings, *, orders: int = 200, symbol: str = "BENCHFIX", worker: bool = True) -> int:
    """``worker=False`` leaves the orders unassigned (each waits for a worker): the round trip without the
    load of working 200 parents on the same two cores."""
    tag = uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="paceline-bench-fix-"))
    port = _port()
    (tmp / "endpoint.toml").write_text("\n".join([
        f'name = "bench-ep-{tag}"', 'comp_id = "PACELINE"', f"fix_port = {port}", "native_port = 0",
        f'state_dir = "{tmp / "endpoint"}"', f'symbols = ["{symbol}"]', "", "[[clients]]",
        'client_id = "CLIENT1"', 'comp_id = "CLIENT1"', 'token = "bench-token-0123456789"', "",
        "[clients.limits]", "max_orders_per_s = 1000.0", "",
    ]))  # fmt: skip
    env = {**os.environ, "PACELINE_PULSAR_URL": settings.pulsar_url, "PACELINE_LOG_LEVEL": "WARNING"}
    log = (tmp / "services.log").open("w")
    procs = [
        subprocess.Popen([sys.executable, "-m", "paceline", *args], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
        for args in (["health-checker", "--name", f"bench-hc-{tag}"],
                     ["endpoint", "--config", str(tmp / "endpoint.toml")],
                     *([["worker", "--id", f"bench-w-{tag}"]] if worker else []))
    ]  # fmt: skip
    bus = Bus(settings.pulsar_url)
    rx = Receiver(bus, name=f"bench-fix-{tag}", speed=5.0)
    last: list[Tick | None] = [None]

    def records() -> Any:
        for rec in sources.synthetic([symbol], seed=7, depth=2):
            if isinstance(rec, Tick):
                last[0] = rec
            yield rec

    threading.Thread(target=rx.run, args=(records(),), daemon=True).start()
    client: FixClient | None = None
    try:
        time.sleep(3.0)  # the services start (torch import in the worker takes a few seconds)
        # The initiator reconnects every second until the endpoint listens (the worker imports torch first).
        client = FixClient(tmp / "client", port).start(timeout_s=90)
        rtts: list[float] = []
        for i in range(orders + 10):
            t = last[0]
            assert t is not None
            low = round((t.bid_px + t.ask_px) / 2 * 0.97, 2)  # rests: a cap below the market
            cl = f"B{tag}-{i}"
            client.new_order(
                cl, symbol, 100, start_ns=t.ts_event, end_ns=t.ts_event + 3_600 * 10**9, price=low
            )
            f = client.wait(lambda m, cl=cl: m.get(11) == cl, timeout_s=60, what="the first report")
            if f.get(150) != "0":
                print(f"order refused: {f.get(58)}", file=sys.stderr)
                return 1
            if i >= 10:  # the first ones warm up connections and code paths
                rtts.append((client.first_reply_at[cl] - client.sent_at[cl]) * 1000)
        # Cancelled afterwards, so no order's cancellation is in the way of the next one's round trip.
        for i in range(orders + 10):
            client.cancel(f"X{tag}-{i}", f"B{tag}-{i}", symbol, 100)
        for i in range(orders + 10):
            client.wait(lambda m, i=i: m.get(11) == f"X{tag}-{i}", timeout_s=120, what="the cancel's answer")
        hop = _hop(bus, 200)
        result: dict[str, Any] = {
            "orders": len(rtts),
            "rtt_ms": {"p50": percentile(rtts, 0.5), "p90": percentile(rtts, 0.9),
                       "p99": percentile(rtts, 0.99), "max": max(rtts)},
            "bare_hop_ms": {"p50": percentile(hop, 0.5), "p99": percentile(hop, 0.99)},
        }  # fmt: skip
        r, h = result["rtt_ms"], result["bare_hop_ms"]
        print(
            f"FIX NewOrderSingle -> ExecutionReport New, {len(rtts)} orders, services in separate processes"
        )
        print("| | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|")
        print(f"| round trip | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['max']:.2f} |")
        print(f"| bare pulsar-client hop (same broker, same run) | {h['p50']:.2f} | | {h['p99']:.2f} | |")
        print(json.dumps(result))
        return 0
    finally:
        rx.stop()
        if client is not None:
            client.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        rx.close()
        bus.close()
        log.close()


def _hop(bus: Bus, n: int) -> list[float]:
    """One message at a time on a fresh topic: send until the consumer has it (ms)."""
    topic = f"persistent://paceline/exec/bench-hop-{uuid.uuid4().hex[:8]}"
    consumer = bus.subscribe(topic, "bench", Tick)
    producer = bus.producer(topic)
    probe: Any = Tick(symbol="HOP", seq=1, ts_event=1, ts_init=1, bid_px=1.0, bid_sz=1, ask_px=1.01, ask_sz=1)
    out: list[float] = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            producer.send_async(probe)
            d = consumer.receive(timeout_ms=5_000)
            if d is None:
                break
            out.append((time.perf_counter() - t0) * 1000)
            consumer.ack(d)
    finally:
        producer.close()
        consumer.unsubscribe()
    return out


__all__ = ["run"]
