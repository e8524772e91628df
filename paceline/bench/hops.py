"""``paceline bench hops``: what one round trip through the broker costs, by topic kind and by client.

A fresh standalone (low-latency or durable), and on it four echo processes, each answering on one topic what
it receives on another:

- ``raw``: a bare ``pulsar-client`` echo (``paceline.bench.latency.Echo``), no Paceline code: the floor.
- ``bus``: Paceline's own path, a ``runtime.bus`` subscriber that decodes a ``Tick`` with five levels of
  depth and answers with a ``ChildOrderAction`` through a ``runtime.bus`` producer, as a worker does.

each on persistent and on non-persistent topics. This process pings them in turn (interleaved rounds, at a
steady rate) and prints each round trip's percentiles beside the raw persistent one: what the bookie write
costs a hop, and what Paceline's decode, build and encode cost on top of the client.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from market.session import SESSION_OPEN_S
from market.synthetic import SymbolSim, SymbolSpec
from models import ChildAction, ChildOrderAction, OrdType, Side, Tick, now_ns
from paceline.bench.latency import Echo
from paceline.bench.stats import percentile
from paceline.ops import broker
from paceline.ops.stack import start_scratch_broker
from runtime.bus import Bus, Delivery
from runtime.settings import Settings

KINDS = ("persistent", "non-persistent")
CLIENTS = ("raw", "bus")
BUS_ECHO = [sys.executable, "-m", "paceline.bench.hops", "--echo"]  # ``_bus_echo`` in a process of its own


def _bus_echo(url: str, src: str, dst: str) -> None:
    """The ``bus`` echo (run as ``python -m paceline.bench.hops --echo URL SRC DST``)."""
    bus = Bus(url, quiet=True)
    out = bus.producer(dst)

    def on(d: Delivery[Tick]) -> None:
        t = d.message
        recv = now_ns()
        a = ChildOrderAction(
            action=ChildAction.NEW, child_id=f"C{t.seq}", job_id="JHOP", parent_id="PHOP", worker_id="whop",
            epoch=1, symbol=t.symbol, side=Side.BUY, quantity=100, ord_type=OrdType.LIMIT, limit_px=t.bid_px,
            ts_event=t.ts_event, ts_init=now_ns(), tick_seq=t.seq, tick_ts_init=t.ts_init, tick_recv_ns=recv,
        )  # fmt: skip
        out.send_async(a, key=a.job_id)

    bus.subscribe(src, "echo", Tick, handler=on)
    print("ready", flush=True)
    threading.Event().wait()


def _topics(kind: str, client: str, run: str) -> tuple[str, str]:
    return f"{kind}://paceline/exec/hop-{client}-{run}-a", f"{kind}://paceline/exec/hop-{client}-{run}-b"


def run(settings: Settings, *, low_latency: bool, rounds: int = 4, seconds: float = 5.0,
        rate: float = 100.0) -> int:  # fmt: skip
    run_id = f"{int(time.time()) % 100000}"
    start = SESSION_OPEN_S + 3600
    sim = SymbolSim(SymbolSpec("AAPL"), 5, depth=5, start_s=start, close_s=start + 3600)
    ticks = list(itertools.islice(iter(sim), 5000))
    variants = [(k, c) for k in KINDS for c in CLIENTS]
    rtts: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    current: list[tuple[str, str] | None] = [None]
    sent: dict[int, int] = {}  # ping number -> perf_counter_ns when sent

    def landed(v: tuple[str, str], i: int | None) -> None:
        t0 = sent.pop(i, None) if i is not None else None
        if t0 is not None and current[0] == v:
            rtts[v].append((time.perf_counter_ns() - t0) / 1e6)

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-hops-")))
        cfg = start_scratch_broker(tmp, settings.cache_dir, low_latency=low_latency)
        stack.callback(broker.stop, cfg)
        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        raw_client: Any = bus._client  # the bare client's own surface, for the raw pings
        senders: dict[tuple[str, str], Any] = {}
        for kind, client in variants:
            src, dst = _topics(kind, client, run_id)
            v = (kind, client)
            if client == "raw":
                echo = Echo(cfg.service_url, src, dst)

                def on_raw(c: Any, m: Any, v: tuple[str, str] = v) -> None:
                    landed(v, int(m.data()))
                    c.acknowledge(m)

                raw_client.subscribe(dst, "ping", message_listener=on_raw)
                senders[v] = raw_client.create_producer(src, batching_enabled=False)
            else:
                echo = Echo(cfg.service_url, src, dst, argv=BUS_ECHO)

                def on_bus(d: Delivery[ChildOrderAction], v: tuple[str, str] = v) -> None:
                    landed(v, d.message.tick_seq)

                bus.subscribe(dst, "ping", ChildOrderAction, handler=on_bus)
                senders[v] = bus.producer(src)
            stack.callback(echo.stop)
        time.sleep(2)
        n = 0
        gap = 1 / rate
        for _ in range(rounds):
            for v in variants:
                current[0] = v
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    n += 1
                    sent[n] = time.perf_counter_ns()
                    if v[1] == "raw":
                        senders[v].send_async(str(n).encode(), None)
                    else:
                        t = ticks[n % len(ticks)].model_copy(update={"seq": n, "ts_init": now_ns()})
                        senders[v].send_async(t, key=t.symbol)
                    time.sleep(gap)
                time.sleep(0.3)  # the last answers land before the next variant's pings
                current[0] = None
                sent.clear()
    mode = "low-latency" if low_latency else "durable"
    base = percentile(rtts[("persistent", "raw")], 0.5)
    print(f"\n{mode} broker, {rounds} interleaved rounds of {seconds:g} s per variant at {rate:g} pings/s\n")
    print(f"{'topics':16s} {'client':7s} {'n':>6s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} "
          f"{'p50 ÷ raw persistent':>22s}")  # fmt: skip
    for kind, client in variants:
        xs = rtts[(kind, client)]
        p50 = percentile(xs, 0.5)
        print(f"{kind:16s} {client:7s} {len(xs):6d} {p50:8.2f} {percentile(xs, 0.9):8.2f} "
              f"{percentile(xs, 0.99):8.2f} {p50 / base:21.2f}x")  # fmt: skip
    return 0 if all(rtts.values()) else 1


if __name__ == "__main__" and sys.argv[1:2] == ["--echo"]:
    _bus_echo(*sys.argv[2:5])
