"""``paceline demo``: bring up Apache Pulsar and the whole pipeline, and work real parent orders.

A real broker (started here when none answers); the health-checker, the endpoint and two workers as their
own processes; the Receiver publishing the synthetic market at an accelerated clock to one persistent topic
per equity (a consumer per equity checks every tick arrived in order and measures publish-to-receive
latency); a FIX client sending TWAP, VWAP, POV, implementation-shortfall and RL parents; a live view of
each parent against its schedule; at the end a TCA table and a PNG report in the run's folder
(``~/.paceline/demo/<run>/``, or ``--out``). Ctrl-C stops
everything.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from market.session import SESSION_OPEN_S, midnight_ns, second_of_day
from models import Tick, now_ns, topics
from paceline.bench.stats import percentile
from paceline.demo.pipeline import STRATEGIES, PipelineDemo, follow_clock
from paceline.ops import broker
from receiver.service import Receiver, ReceiverStats
from receiver.sources import synthetic
from runtime import auth
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


def _work_parents(
    pipe: PipelineDemo, feed: threading.Thread, close_s: int, minutes: float, speed: float
) -> None:
    """Send the parents a minute into the window, show them live, wait until they are all done."""
    while pipe.market_ns == 0 or second_of_day(pipe.market_ns) < SESSION_OPEN_S + 60:
        if not feed.is_alive():
            return
        time.sleep(0.05)
    day = midnight_ns(pipe.market_ns)
    end = day + (close_s - 60) * 1_000_000_000
    # They start a little ahead of the market clock as this process last saw it: at 100x a second of wall
    # time is 100 s of market time, and the health-checker refuses a start more than 60 s in the past.
    lead_ns = round(min(max(30.0, 5.0 * speed), 0.1 * (end - pipe.market_ns) / 1e9) * 1e9)
    pipe.send_parents(pipe.market_ns + lead_ns, end, qty=2_000 if minutes < 30 else 20_000)
    live = sys.stdout.isatty()
    last_print = 0.0
    deadline = None
    while True:
        pipe.poll_reports()
        if time.monotonic() - last_print > (1.0 if live else 10.0):
            view = pipe.view()
            print(("\x1b[2J\x1b[H" if live else "") + view, flush=True)
            last_print = time.monotonic()
        if all(p.done for p in pipe.parents.values()):
            break
        if not feed.is_alive():
            deadline = deadline or time.monotonic() + 30  # the market is over: the end-of-window closes them
            if time.monotonic() > deadline:
                break
        time.sleep(0.25)
    pipe.poll_reports()
    print(pipe.view())


def run_demo(
    settings: Settings,
    *,
    symbols: list[str],
    minutes: float,
    speed: float,
    keep_broker: bool,
    out_dir: Path | None = None,
    on_cluster: bool = False,
) -> int:
    if on_cluster:
        return _on_cluster(settings, symbols, minutes, speed, out_dir, keep=keep_broker)
    # The demo's broker runs with authentication and authorisation on: every service under its own role.
    cfg = broker.BrokerConfig(run_dir=settings.home / "broker", cache_dir=settings.cache_dir, auth=True)
    started_here = False
    # The caller's token first (PACELINE_PULSAR_TOKEN): the run folder's is the demo's own broker's, and a
    # broker the caller points at would refuse it. Every service then runs with the caller's token.
    env_token = auth.token_from_env()
    if env_token and broker.is_ready(settings.pulsar_admin_url, env_token):
        print(f"using the broker already answering at {settings.pulsar_admin_url}")
        broker.ensure_namespaces(settings.pulsar_admin_url, env_token)
        return _push_ticks(settings, symbols, minutes, speed, out_dir, auth_dir=None, token=env_token)
    if broker.is_ready(settings.pulsar_admin_url, cfg.admin_token):
        print(f"using the broker already answering at {settings.pulsar_admin_url}")
        broker.ensure_namespaces(settings.pulsar_admin_url, cfg.admin_token)
    else:
        res = broker.provision(settings.cache_dir)
        print(f"Apache Pulsar {broker.pulsar_version()} provisioned: {res.jars} jars, {res.size_mb:.0f} MB")
        broker.start(cfg)
        print("starting the standalone broker (token authentication and authorisation on) ...")
        print(f"broker ready after {broker.wait(cfg):.1f} s")
        started_here = True
    # A broker this run folder did not set up for authentication gets no tokens (it asks for none).
    auth_dir = cfg.auth_dir if cfg.admin_token else None
    try:
        token = cfg.admin_token
        return _push_ticks(settings, symbols, minutes, speed, out_dir, auth_dir=auth_dir, token=token)
    finally:
        if started_here and not keep_broker:
            broker.stop(cfg)
            print("broker stopped")


def _on_cluster(
    settings: Settings, symbols: list[str], minutes: float, speed: float, out_dir: Path | None, *, keep: bool
) -> int:
    """The demo on the Pulsar cluster of ``paceline cluster`` (started here, with authentication, when none
    runs): the same services, on its multi-host service URL."""
    from paceline.ops import cluster

    run_dir = settings.home / "cluster"
    cfg = cluster.ClusterConfig.load(run_dir, settings.cache_dir)
    started_here = cfg is None or not all(cluster.status(cfg)["brokers_ready"])
    if cfg is None:
        cfg = cluster.ClusterConfig.new(run_dir, settings.cache_dir, auth=True)
    if started_here:
        broker.provision(settings.cache_dir)
        print("starting the cluster (ZooKeeper, three bookies, two brokers) ...")
        print(f"cluster ready after {cluster.start(cfg)['ready']:.1f} s")
    else:
        print(f"using the cluster already running at {cfg.service_url}")
        broker.ensure_namespaces(cfg.admin_url, cfg.admin_token, cluster=cluster.CLUSTER)
    on = settings.model_copy(update={"pulsar_url": cfg.service_url, "pulsar_admin_url": cfg.admin_url})
    try:
        return _push_ticks(on, symbols, minutes, speed, out_dir, auth_dir=cfg.auth_dir if cfg.auth else None,
                           token=cfg.admin_token)  # fmt: skip
    finally:
        if started_here and not keep:
            cluster.stop(cfg)
            print("cluster stopped")


def _tca_reports(bus: Bus, pipe: PipelineDemo) -> None:
    """Each parent's TCA report (``paceline tca``), from the topics the run left."""
    from paceline.reports import tca_report

    archive = tca_report.Archive(bus)
    print(f"\n{'ClOrdID':24s} {'IS':>7s} {'delay':>7s} {'spread':>7s} {'timing':>7s} {'opport.':>7s} "
          f"{'vs VWAP':>7s} {'vs TWAP':>7s}  (bps; positive = cost)")  # fmt: skip
    for cl in pipe.parents:
        try:
            rec = archive.record(cl)
            path = tca_report.write(archive, cl, pipe.out_dir / "tca")
        except tca_report.NotFoundError as exc:
            print(f"{cl:24s} no report: {exc}")
            continue
        f = rec.told
        if f is None:
            print(f"{cl:24s} {'no final figures':>55s}  {path}")
            continue
        cells = (f.is_bps, f.delay_bps, f.spread_bps, f.timing_bps, f.opportunity_bps, f.vwap_slippage_bps,
                 f.twap_slippage_bps)  # fmt: skip
        print(f"{cl:24s} " + " ".join(_bps(v) for v in cells) + f"  {path}")


def _bps(v: float | None) -> str:
    return f"{'n/a':>7s}" if v is None else f"{v:+7.2f}"


def _push_ticks(
    settings: Settings, symbols: list[str], minutes: float, speed: float, out_dir: Path | None,
    *, auth_dir: Path | None, token: str | None,
) -> int:  # fmt: skip
    run_id = uuid.uuid4().hex[:8]
    close_s = SESSION_OPEN_S + int(minutes * 60)
    expected = Counter(t.symbol for t in synthetic(symbols, seed=7, depth=5, close_s=close_s))  # type: ignore[union-attr]
    results = {s: SymbolResult(s) for s in symbols}
    print(f"publishing the first {minutes:g} minutes of a synthetic session at {speed:g}x: "
          f"{sum(expected.values())} ticks for {', '.join(symbols)}")  # fmt: skip
    with Bus(settings.pulsar_url, token=token) as bus:  # the demo's own client is the superuser
        consumers = {
            s: bus.subscribe(topics.ticks(s), f"demo-{run_id}", Tick, from_earliest=False) for s in symbols
        }
        rx = Receiver(bus, name=f"demo-{run_id}", speed=speed)
        for s in symbols:  # producers before the clock starts: a topic lookup is not tick latency
            rx.prepare(s)
        pipe = PipelineDemo(settings, symbols, out_dir, auth_dir=auth_dir)
        threads: list[threading.Thread] = []
        try:
            pipe.start_services(bus)
            deadline = time.monotonic() + 60 + minutes * 60 / speed
            threads = [
                threading.Thread(
                    target=_drain, args=(consumers[s], results[s], expected[s], deadline), daemon=True
                )
                for s in symbols
            ]
            for th in threads:
                th.start()
            clock = follow_clock(
                bus, symbols[0], lambda t: setattr(pipe, "market_ns", max(pipe.market_ns, t))
            )
            t0 = time.perf_counter()
            out: dict[str, object] = {}
            feed = threading.Thread(
                target=lambda: out.setdefault(
                    "stats", rx.run(synthetic(symbols, seed=7, depth=5, close_s=close_s))
                ),
                daemon=True,
            )
            feed.start()
            _work_parents(pipe, feed, close_s, minutes, speed)
            feed.join()
            stats = out["stats"]
            assert isinstance(stats, ReceiverStats)
            clock.close()
            png = pipe.report()
            pipe.observed()
            print(f"report: {png}")
            _tca_reports(bus, pipe)
        finally:
            rx.stop()
            pipe.stop_services()
        for th in threads:
            th.join(timeout=30)
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
    ticks_ok = stats.failed == 0
    worked = [p.label for p in pipe.parents.values() if p.status in ("FILLED", "DONE_FOR_DAY")]
    if len(worked) < len(STRATEGIES):
        left = [p.label for p in pipe.parents.values() if p.label not in worked]
        print(f"parents not worked to the end: {left}")
    for r in results.values():
        ticks_ok &= r.received == r.published == expected[r.symbol] and r.out_of_order == 0
        print(
            f"{r.symbol:8s} {r.published:9d} {r.received:9d} {'yes' if r.out_of_order == 0 else 'NO':>8s} "
            f"{percentile(r.latencies_ms, 0.5):7.2f} {percentile(r.latencies_ms, 0.99):7.2f}"
        )
    print(
        f"\n{total} ticks through Apache Pulsar in {elapsed:.2f} s ({total / elapsed:,.0f} ticks/s): "
        + ("every tick arrived, in order per symbol" if ticks_ok else "TICKS MISSING OR OUT OF ORDER")
    )
    ok = ticks_ok and len(worked) == len(STRATEGIES)
    return 0 if ok else 1
