"""``paceline bench latency``: tick published -> child order at the endpoint, beside a bare Pulsar ping-pong.

Per broker mode (durable, low-latency) a fresh standalone in a temporary folder, and on it the real
services as processes: a health-checker, the endpoint, the live page, ``--workers`` workers (two by
default; each job decides every ``--decision`` seconds of market time). A WebSocket client of the live
page counts the pushes it gets.
This process is the Receiver: it publishes the synthetic market at ``--rate`` ticks/s over ``--symbols``
and notes when each tick left. ``--jobs`` TWAP parents are registered through the health-checker. The
endpoint, the child orders' consumer, times each NEW child from its tick's publish (the tick's ``ts_init``,
carried on the child) in ``paceline_endpoint_tick_to_child_seconds`` and by stage; this process reads those
histograms before and after the measured seconds (quantiles interpolated within a bucket, 0.1 ms wide
there). With ``--observer bench`` a subscription of this process's on every job's actions topic times each
child too, exactly, and looks up the tick that triggered it (``tick_seq``): a second subscription on the
topic measured, which costs the hop (docs/PERFORMANCE.md). That path crosses the broker twice: ticks topic
-> worker, actions topic -> endpoint.

The reference runs at the same time on the same broker: this process sends a ping on one topic, a bare
``pulsar-client`` echo process (no Paceline code) sends it back on another. Its round trip is two broker
hops between two processes with nothing done in between: the pipeline's floor. A second echo, pinged as
often, answers a non-persistent ping on a persistent topic: the floor over the pipeline's own topic kinds
when the workers read the ticks' non-persistent twins (``--live-ticks non-persistent``).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulsar

from market.session import SESSION_OPEN_S
from market.synthetic import SymbolSim, SymbolSpec
from models import ChildAction, ChildOrderAction, JobRequest, ParentOrder, Side, Strategy, Tick, topics
from paceline.bench.stats import Buckets, bucket_summary, bucket_window, summary
from paceline.ops import broker
from paceline.ops.stack import (
    Feed,
    Proc,
    free_port,
    start_scratch_broker,
    until,
    wait_for_workers,
    write_endpoint_config,
)
from runtime.bus import Bus, Consumer
from runtime.settings import Settings

S = 1_000_000_000
PING_PER_S = 50  # per floor: two floors, 100 pings/s in all


# Stages of tick -> child order: the receiver's publish to the worker's listener, the worker's decision (its
# lock, the features, the policy, the child order built), the worker's send to this process's listener.
STAGES = ("tick_to_worker", "worker_decide", "worker_to_consumer")
# The endpoint's histograms of the same path (``endpoint.service``): its receipt ends the last stage.
TICK_TO_CHILD = "paceline_endpoint_tick_to_child_seconds"
ENDPOINT_STAGE = "paceline_endpoint_stage_seconds"
ENDPOINT_STAGES = ("tick_to_worker", "worker_decide", "worker_to_endpoint")
OBSERVERS = ("endpoint", "bench")


@dataclass
class ModeResult:
    mode: str
    rate: float = 0.0  # ticks/s achieved
    ticks: int = 0
    pipeline_ms: list[float] = field(default_factory=list)
    # The same path by stage, from the order's stamps (``ChildOrderAction.stage_seconds``).
    stages_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    floor_ms: list[float] = field(default_factory=list)  # bare round trip = two hops
    # A bare round trip over a non-persistent hop, then a persistent one: the pipeline's own topic kinds
    # when workers read the ticks' non-persistent twins (the goal's floor is two persistent hops).
    floor_same_ms: list[float] = field(default_factory=list)
    # The endpoint's own figures over the measured seconds (``bucket_summary``, ms), and its histogram's
    # window as (upper bound ms, cumulative count) for the plot.
    endpoint: dict[str, float] = field(default_factory=dict)
    endpoint_stages: dict[str, dict[str, float]] = field(default_factory=dict)
    endpoint_cdf: list[tuple[float, float]] = field(default_factory=list)
    page_updates_per_s: float = 0.0  # the live page, as a connected browser receives it (a chart chosen)
    page_kb: float = 0.0
    browser: dict[str, float] = field(default_factory=dict)  # --browser: the page itself, chart open

    def stats(self, xs: list[float]) -> dict[str, float]:
        return summary(xs)


def _ticks(symbols: list[str], seconds_wall: float, rate: float, seed: int) -> tuple[list[Tick], float]:
    """Ticks for ``seconds_wall`` at ``rate`` ticks/s; returns them and the speed-up that gives that rate."""
    start_s = SESSION_OPEN_S + 3600

    def market(span_s: int) -> list[Tick]:
        sims = [
            SymbolSim(SymbolSpec(s), seed, depth=5, start_s=start_s, close_s=start_s + span_s)
            for s in symbols
        ]
        return list(heapq.merge(*sims, key=lambda t: t.ts_event))

    speed = rate / (len(market(300)) / 300)  # a first guess from five minutes of the market
    for _ in range(2):  # then from the span actually published: intraday activity is not flat
        span = round(seconds_wall * speed) + 5
        speed = rate / (len(market(span)) / span)
    return market(round(seconds_wall * speed) + 5), speed


class Echo:
    """A bare pulsar-client process that sends every message it receives on ``src`` back on ``dst``."""

    CODE = (
        "import sys, pulsar, threading\n"
        "c = pulsar.Client(sys.argv[1], logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))\n"
        "p = c.create_producer(sys.argv[3], batching_enabled=False)\n"
        "def on(cons, m):\n"
        "    p.send_async(m.data(), None)\n"
        "    cons.acknowledge(m)\n"
        "c.subscribe(sys.argv[2], 'echo', message_listener=on)\n"
        "print('ready', flush=True)\n"
        "threading.Event().wait()\n"
    )

    def __init__(self, url: str, src: str, dst: str, argv: list[str] | None = None) -> None:
        """``argv``: another echo program (given ``url src dst`` last; prints ``ready`` once subscribed)."""
        cmd = [*(argv or [sys.executable, "-c", self.CODE]), url, src, dst]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the echo process did not start: {cmd[:4]}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class PingPong:
    """Pings at a steady rate through an :class:`Echo`; keeps the round trips (ms) once ``measuring``."""

    def __init__(self, url: str, run: str, ping_kind: str = "persistent") -> None:
        """``ping_kind``: the first hop's topic kind (the second is persistent), as the pipeline's tick hop
        is when workers read the ticks' non-persistent twins."""
        self.ping, self.pong = (
            f"{ping_kind}://paceline/exec/ping-{run}",
            f"persistent://paceline/exec/pong-{run}",
        )
        self.client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
        self.rtts: list[float] = []
        self.measuring = False
        self._stop = threading.Event()
        self.consumer = self.client.subscribe(self.pong, "bench", message_listener=self._on)
        self.echo = Echo(url, self.ping, self.pong)
        self.producer = self.client.create_producer(self.ping, batching_enabled=False)
        self._th = threading.Thread(target=self._run, daemon=True)

    def _on(self, consumer: Any, m: Any) -> None:
        if self.measuring:
            self.rtts.append((time.perf_counter_ns() - int(m.data())) / 1e6)
        consumer.acknowledge(m)

    def _run(self) -> None:
        gap = 1 / PING_PER_S
        nxt = time.perf_counter()
        while not self._stop.is_set():
            self.producer.send_async(str(time.perf_counter_ns()).encode(), None)
            nxt += gap
            self._stop.wait(max(0.0, nxt - time.perf_counter()))

    def start(self) -> PingPong:
        self._th.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._th.join(timeout=5)
        self.echo.stop()
        self.client.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


class PageWatcher:
    """A WebSocket client of the live page counting the pushes it receives (what a browser gets), with the
    chart of ``chart`` (a parent id) chosen, as a trader watching one parent has it."""

    def __init__(self, port: int, chart: str | None = None) -> None:
        from websockets.sync.client import connect

        self.ws = connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        if chart is not None:
            self.ws.send(json.dumps({"chart": chart}))
        self.count, self.bytes, self.measuring = 0, 0, False
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for msg in self.ws:
                if self.measuring:
                    self.count += 1
                    self.bytes += len(msg)

    def stop(self) -> None:
        self.measuring = False
        self.ws.close()


class BrowserPage:
    """The live page in headless Chromium with one parent's chart open; reads the page's own counters
    (``perf`` in page.html): updates rendered, the time each render took, the longest main-thread stall."""

    def __init__(self, port: int, chart: str, shot: Path) -> None:
        import shutil

        from playwright.sync_api import sync_playwright

        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise RuntimeError("--browser needs chromium (scripts/bootstrap.sh installs Debian's package)")
        self.shot = shot
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        self.page = self._browser.new_page(viewport={"width": 1400, "height": 1100})
        self.page.goto(f"http://127.0.0.1:{port}/")
        self.page.wait_for_function("typeof choose === 'function' && socket && socket.readyState === 1")
        self.page.evaluate(f"choose({json.dumps(chart)})")
        self._t0, self._u0 = 0.0, 0

    def begin(self) -> None:
        self.page.evaluate("perf.renderMs = []; perf.maxStallMs = 0")
        self._t0, self._u0 = time.perf_counter(), int(self.page.evaluate("perf.updates"))

    def end(self) -> dict[str, float]:
        doc = self.page.evaluate("({u: perf.updates, r: perf.renderMs, s: perf.maxStallMs, "
                                 "c: document.getElementById('chart-stats').textContent})")  # fmt: skip
        elapsed = time.perf_counter() - self._t0
        renders = summary(list(doc["r"]))
        self.page.screenshot(path=str(self.shot), full_page=True)
        fills = str(doc["c"]).split(" ")[0]
        return {"updates_per_s": (doc["u"] - self._u0) / elapsed, "render_p50_ms": renders.get("p50", 0.0),
                "render_p99_ms": renders.get("p99", 0.0), "render_max_ms": renders.get("max", 0.0),
                "max_stall_ms": float(doc["s"]),
                "fills_drawn": float(fills) if fills.isdigit() else 0.0}  # fmt: skip

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def _one_mode(settings: Settings, mode: str, *, rate: float, symbols: list[str], jobs: int,
              seconds: float, warmup_s: float, decision_s: int, out: Path,
              browser: bool = False, stagger: bool = False,
              live_ticks: bool = False, workers: int = 2,
              observer: str = "endpoint") -> ModeResult:  # fmt: skip
    """One mode on a broker of its own: services up, ``jobs`` TWAP parents, warm-up, then ``seconds`` of
    measurement beside the ping-pong floor. Everything started is stopped in reverse order on the way out.
    ``observer``: who times the child orders (the module's docstring)."""
    res = ModeResult(mode)
    run = uuid.uuid4().hex[:6]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-latency-")))
        t0 = time.monotonic()
        cfg = start_scratch_broker(tmp, settings.cache_dir, low_latency=mode == "low-latency")
        stack.callback(broker.stop, cfg)
        print(f"[{mode}] broker ready after {time.monotonic() - t0:.1f} s", flush=True)
        log = stack.enter_context((out / f"services-{mode}.log").open("w"))
        procs: list[Proc] = []

        @stack.callback
        def _stop_services() -> None:
            for p_ in procs:
                p_.stop()

        env = {"PACELINE_LOG_LEVEL": "WARNING",
               "PACELINE_LIVE_TICKS": "non-persistent" if live_ticks else "persistent"}  # fmt: skip

        def spawn(*args: str) -> Proc:
            procs.append(Proc(*args, service_url=cfg.service_url, admin_url=cfg.admin_url, log=log, env=env))
            return procs[-1]

        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        ep_cfg = write_endpoint_config(tmp / "endpoint.toml", name=f"bench-ep-{run}", fix_port=0,
                                       state_dir=tmp / "endpoint", symbols=symbols)  # fmt: skip
        spawn("health-checker", "--name", f"bench-hc-{run}")
        endpoint = spawn("endpoint", "--config", str(ep_cfg))
        page_port = free_port()
        spawn("dashboard", "--port", str(page_port))
        until(lambda: _answers(f"http://127.0.0.1:{page_port}/healthz"), 60, "the live page")
        charted = f"PB{run}-0"  # the first bench parent (``_submit_jobs``): its chart is open throughout
        page = PageWatcher(page_port, chart=charted)
        names = {f"bench-w{i}-{run}" for i in range(1, workers + 1)}
        for w in sorted(names):
            spawn("worker", "--id", w, "--decision", str(decision_s))
        wait_for_workers(bus, names)

        ticks, speed = _ticks(symbols, warmup_s + seconds + 10, rate, seed=5)
        published: dict[tuple[str, int], int] = {}

        def note(t: Tick) -> None:
            published[(t.symbol, t.seq)] = time.perf_counter_ns()

        measuring = threading.Event()

        def on_action(d: Any) -> None:
            a: ChildOrderAction = d.message
            sent = published.get((a.symbol, a.tick_seq)) if a.tick_seq is not None else None
            if measuring.is_set() and sent is not None and a.action is ChildAction.NEW:
                res.pipeline_ms.append((time.perf_counter_ns() - sent) / 1e6)
                for stage, sec in zip(STAGES, a.stage_seconds(time.time_ns()), strict=True):
                    if sec is not None:
                        res.stages_ms[stage].append(sec * 1e3)

        feed = Feed(bus, f"bench-{run}", ticks, speed, on_tick=note, live=live_ticks)
        stack.callback(feed.stop)
        feed.start()
        until(lambda: feed.market_ns > 0, 30, "the first tick")
        subs = _submit_jobs(bus, run=run, symbols=symbols, jobs=jobs, t0=feed.market_ns,
                            on_action=on_action if observer == "bench" else None,
                            spread_ns=decision_s * S if stagger else 0)  # fmt: skip
        for c in subs:
            stack.callback(c.close)
        # Both floors in every run, so that the broker's load is the same whichever topics the workers read.
        floors = (PingPong(cfg.service_url, run),
                  PingPong(cfg.service_url, f"{run}-np", ping_kind="non-persistent"))  # fmt: skip
        for p_ in floors:
            stack.callback(p_.start().stop)
        view = None
        if browser:
            view = BrowserPage(page_port, charted, out / f"page-{mode}.png")
            stack.callback(view.close)
        time.sleep(warmup_s)
        n0 = len(published)
        seen = _endpoint_histograms(endpoint)
        measuring.set()
        page.measuring = True
        for p_ in floors:
            p_.measuring = True
        if view is not None:
            view.begin()
        t_meas = time.perf_counter()
        time.sleep(seconds)
        measuring.clear()
        for p_ in floors:
            p_.measuring = False
        _endpoint_figures(res, seen, _endpoint_histograms(endpoint))
        if view is not None:
            res.browser = view.end()
        res.ticks = len(published) - n0
        res.rate = res.ticks / (time.perf_counter() - t_meas)
        res.floor_ms, res.floor_same_ms = (list(p_.rtts) for p_ in floors)
        page.stop()
        res.page_updates_per_s = page.count / seconds
        res.page_kb = page.bytes / max(1, page.count) / 1e3
    return res


def _endpoint_histograms(endpoint: Proc) -> dict[str, Buckets]:
    """The endpoint's tick -> child histogram and its stages' now, bounds in ms (empty ones: no answer)."""
    got = {"": endpoint.histogram(TICK_TO_CHILD)}
    got |= {stage: endpoint.histogram(ENDPOINT_STAGE, stage=stage) for stage in ENDPOINT_STAGES}
    return {k: [(le * 1e3, n) for le, n in v or []] for k, v in got.items()}


def _endpoint_figures(res: ModeResult, before: dict[str, Buckets], after: dict[str, Buckets]) -> None:
    res.endpoint = bucket_summary(before[""], after[""])
    res.endpoint_stages = {s: bucket_summary(before[s], after[s]) for s in ENDPOINT_STAGES}
    res.endpoint_cdf = [(le, n) for le, n in bucket_window(before[""], after[""]) if le != float("inf")]


def _submit_jobs(
    bus: Bus,
    *,
    run: str,
    symbols: list[str],
    jobs: int,
    t0: int,
    on_action: Callable[[Any], None] | None,
    spread_ns: int = 0,
) -> list[Consumer[ChildOrderAction]]:
    """``jobs`` large TWAP parents (they outlast the run) and, given ``on_action``, a listener on each one's
    actions (a subscription beside the endpoint's). A job's
    decisions fall on a grid from its start: ``spread_ns`` spreads the starts evenly over that span (0: all
    for one start time, as parents for the open are; after their first decision each job decides on the
    grid the health-checker placed it on among every live job's, ``models.grid``)."""
    consumers = []
    if on_action is not None:  # from now on: the run's jobs are the only ones on its symbols' topics
        for sym in symbols:
            consumers.append(bus.subscribe(topics.job_actions(sym), f"bench-{run}", ChildOrderAction,
                                           handler=on_action, from_earliest=False))  # fmt: skip
    req = bus.producer(topics.JOB_REQUESTS)
    for i in range(jobs):
        job = f"JB{run}-{i}"
        p = ParentOrder(parent_id=f"PB{run}-{i}", client_id="CLIENT1", cl_ord_id=f"b{run}-{i}",
                        symbol=symbols[i % len(symbols)], side=Side.BUY if i % 2 == 0 else Side.SELL,
                        quantity=5_000_000, start_ns=t0 + i * spread_ns // jobs, end_ns=t0 + 4 * 3600 * S,
                        strategy=Strategy.TWAP,
                        ts_init=t0)  # fmt: skip
        req.send(JobRequest(job_id=job, parent=p, ts_init=t0), key=p.parent_id)
    req.close()
    return consumers


def _plot(results: list[ModeResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        total = r.endpoint_cdf[-1][1] if r.endpoint_cdf else 0.0
        if total > 0:  # the endpoint's histogram: its cumulative share at each bucket's bound
            ax.plot([le for le, _ in r.endpoint_cdf], [n / total for _, n in r.endpoint_cdf], "-",
                    label=f"{r.mode}: tick → child order at the endpoint")  # fmt: skip
        for xs, label, style in (
            (r.pipeline_ms, "tick → child order at the bench", ":"),
            (r.floor_ms, "bare ping-pong", "--"),
        ):
            s = sorted(xs)
            if s:
                ax.plot(s, [(i + 1) / len(s) for i in range(len(s))], style, label=f"{r.mode}: {label}")
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of messages")
    ax.set_title("Paceline: tick → child order against the two-hop Pulsar floor")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def run(settings: Settings, *, rate: float, symbols: list[str], jobs: int, seconds: float, modes: list[str],
        decision_s: int = 10, out_dir: Path | None = None, warmup_s: float = 8.0,
        browser: bool = False, stagger: bool = False, live_ticks: bool = False,
        workers: int = 2, observer: str = "endpoint") -> int:  # fmt: skip
    """``live_ticks``: workers read the ticks' non-persistent twins (``PACELINE_LIVE_TICKS``). ``workers``:
    the worker processes (the more of them, the more a placement of the jobs' grids per worker would leave
    together). ``observer``: "endpoint" (its histograms) or "bench" (a subscription of its own as well)."""
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    if observer not in OBSERVERS:
        raise ValueError(f"--observer is one of {', '.join(OBSERVERS)}")
    out = out_dir or settings.home / "bench" / f"latency-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    results = [_one_mode(settings, m, rate=rate, symbols=symbols, jobs=jobs, seconds=seconds,
                         warmup_s=warmup_s, decision_s=decision_s, out=out, browser=browser,
                         stagger=stagger, live_ticks=live_ticks, workers=workers, observer=observer)
               for m in modes]  # fmt: skip
    timer = "the endpoint (its histograms)" if observer == "endpoint" else "a bench subscription too"
    print(
        f"\n{rate:g} ticks/s asked over {len(symbols)} symbols, {jobs} live jobs on {workers} workers "
        f"deciding every {decision_s} s of market time "
        f"(starting {'evenly over one interval' if stagger else 'together'}), "
        f"{seconds:g} s measured; workers read ticks from "
        f"{'their non-persistent twins' if live_ticks else 'the persistent topics'}; child orders timed by "
        f"{timer}\n"
    )
    print(
        f"{'mode':12s} {'path':22s} {'n':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'p99.9 ms':>9s} {'max ms':>8s}"
    )
    doc: dict[str, Any] = {
        "rate_asked": rate,
        "symbols": symbols,
        "jobs": jobs,
        "staggered": stagger,
        "workers": workers,
        "observer": observer,
        "live_ticks": "non-persistent" if live_ticks else "persistent",
        "seconds": seconds,
        "modes": {},
    }
    for r in results:
        floor, same, at_bench = r.stats(r.floor_ms), r.stats(r.floor_same_ms), r.stats(r.pipeline_ms)
        # The goal's figure is the endpoint's: the child order at its consumer, no observer beside it.
        pipe = r.endpoint if observer == "endpoint" else at_bench
        stages = (r.endpoint_stages if observer == "endpoint"
                  else {n: r.stats(xs) for n, xs in r.stages_ms.items()})  # fmt: skip
        rows = [("tick -> child order", pipe), *((f"  {n}", st) for n, st in stages.items())]
        if observer == "bench":
            rows.append(("  at the endpoint", r.endpoint))  # the same children, the endpoint's histogram
        rows += [("floor (bare 2 hops)", floor), ("floor, np + p hops", same)]
        for name, st in rows:
            if st:
                print(f"{r.mode:12s} {name:22s} {st['n']:6.0f} {st['p50']:8.2f} {st['p99']:8.2f} "
                      f"{st['p99.9']:9.2f} {st['max']:8.2f}")  # fmt: skip
        ratio = {k: pipe[k] / floor[k] for k in ("p50", "p99", "p99.9") if pipe and floor and floor[k] > 0}
        if ratio:
            print(f"{r.mode:12s} {'ratio to the floor':22s} {'':6s} {ratio['p50']:7.2f}x "
                  f"{ratio['p99']:7.2f}x {ratio['p99.9']:8.2f}x  ({r.rate:,.0f} ticks/s)")  # fmt: skip
            over = ", ".join(f"{pipe['p50'] - f['p50']:+.2f} ms over {what}"
                             for f, what in ((floor, "the floor"), (same, "np + p")) if f)  # fmt: skip
            print(f"{r.mode:12s} {'p50 (goal: floor + 0.5)':22s} {over}")
        print(f"{r.mode:12s} {'live page':22s} {r.page_updates_per_s:.1f} updates/s to a connected client "
              f"with a chart open, {r.page_kb:.1f} kB each")  # fmt: skip
        if r.browser:
            b = r.browser
            print(f"{r.mode:12s} {'page in Chromium':22s} {b['updates_per_s']:.1f} updates/s rendered, "
                  f"render p50 {b['render_p50_ms']:.1f} / p99 {b['render_p99_ms']:.1f} / max "
                  f"{b['render_max_ms']:.1f} ms, longest main-thread stall {b['max_stall_ms']:.0f} ms, "
                  f"{b['fills_drawn']:.0f} fills on the chart")  # fmt: skip
        doc["modes"][r.mode] = {
            "page_updates_per_s": r.page_updates_per_s,
            "page_kb": r.page_kb,
            "browser": r.browser,
            "ticks_per_s": r.rate,
            "pipeline_ms": pipe,
            "stages_ms": stages,
            "endpoint_ms": r.endpoint,
            "endpoint_stages_ms": r.endpoint_stages,
            "bench_ms": at_bench,
            "floor_ms": floor,
            "floor_np_then_p_ms": same,
            "ratio": ratio,
        }
    (out / "latency.json").write_text(json.dumps(doc, indent=1))
    _plot(results, out / "latency_cdf.png")
    print(f"\nwritten: {out / 'latency.json'}, {out / 'latency_cdf.png'}")
    timed = (r.endpoint if observer == "endpoint" else r.pipeline_ms for r in results)
    return 0 if all(timed) and all(r.floor_ms for r in results) else 1
