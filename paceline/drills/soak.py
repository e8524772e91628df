"""``paceline soak``: a desk's day at an accelerated clock — many parents from several FIX and native
clients across the symbols, every service as its own process — reported per market minute, with every
promise of the drills checked over all parents at the end.

On a standalone of its own (durable, authentication on): two health-checkers (a leader and a standby), the
endpoint, two workers; this process publishes the synthetic market (``Feed``) and is every client. The
plan of parents is drawn from the seed: arrival times over the session, windows of 5 to 60 market
minutes, sizes, symbols, clients and strategies (TWAP, VWAP, POV, implementation shortfall), some cancelled
and some amended mid-way. ``--kill-leader-at HH:MM`` SIGKILLs the leading health-checker at that market
time; the standby's takeover is timed.

Per market minute: parents live, reports and fills per second, the saga's lag (a fill's publish to the
saga's report of it), the acknowledgement time a client sees (FIX and native: NewOrder sent to the first
answer), each service's resident memory, the endpoint's per-job topics open, the workers' jobs. The table,
a JSON file and a plot go to the run's folder (``~/.paceline/soak/<run>/`` or ``--out``).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import random
import signal
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fixclient import FixClient
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S, midnight_ns
from market.synthetic import SymbolSim, SymbolSpec
from models import (
    ExecType,
    ExecutionReport,
    Fill,
    JobAssignment,
    Message,
    ParentOrder,
    Strategy,
    topics,
)
from models.fix import STRATEGY_OUT, TERMINAL_ORD_STATUS
from paceline.bench.stats import percentile
from paceline.drills.drill import Check, History, evaluate
from paceline.ops import broker
from paceline.ops.stack import (
    Feed,
    Proc,
    demo_client,
    free_port,
    start_scratch_broker,
    until,
    wait_for_workers,
    write_endpoint_config,
)
from runtime.bus import Bus
from runtime.logs import get_logger
from runtime.settings import Settings

log = get_logger("paceline.drills.soak")

S = 1_000_000_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM")
STRATEGIES = (Strategy.TWAP, Strategy.VWAP, Strategy.POV, Strategy.IS)
WINDOWS_MIN = (5, 10, 20, 30, 60)
SERVICES = ("hc-a", "hc-b", "endpoint", "w1", "w2")


@dataclass(frozen=True)
class Plan:
    """One parent of the day: who sends it, when, and what happens to it."""

    cl: str
    client: int  # 1-based; the first ``fix_clients`` speak FIX, the rest the native protocol
    symbol: str
    qty: int
    start_s: int  # market second of the day
    end_s: int
    strategy: Strategy
    rate: float | None
    cancel_s: int | None = None
    amend_s: int | None = None
    amend_qty: int = 0


def plan_day(
    parents: int, clients: int, symbols: list[str], seed: int, *, open_s: int, close_s: int
) -> list[Plan]:
    rng = random.Random(seed)
    out = []
    for i in range(parents):
        start = rng.randrange(open_s + 60, close_s - 6 * 60)
        end = min(close_s - 60, start + 60 * rng.choice(WINDOWS_MIN))
        strategy = STRATEGIES[i % len(STRATEGIES)]
        qty = 100 * max(5, round(rng.lognormvariate(3.4, 0.8)))
        fate = rng.random()
        cancel = start + round((end - start) * rng.uniform(0.2, 0.7)) if fate < 0.08 else None
        amend = start + round((end - start) * rng.uniform(0.2, 0.6)) if 0.08 <= fate < 0.13 else None
        out.append(
            Plan(
                cl=f"S{seed}-{i:04d}",
                client=1 + i % clients,
                symbol=symbols[i % len(symbols)],
                qty=qty,
                start_s=start,
                end_s=end,
                strategy=strategy,
                rate=0.05 if strategy is Strategy.POV else None,
                cancel_s=cancel,
                amend_s=amend,
                amend_qty=qty + 100 * rng.randrange(5, 50),
            )
        )
    return sorted(out, key=lambda p: p.start_s)


class NativeClient:
    """A native-protocol client (WebSocket, JSON) that keeps every answer and when its first came."""

    def __init__(self, port: int, token: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(f"ws://127.0.0.1:{port}/", additional_headers={"Authorization": f"Bearer {token}"})
        self.sent_at: dict[str, float] = {}
        self.first_reply_at: dict[str, float] = {}
        self.final: dict[str, int] = {}  # ClOrdID -> CumQty of its terminal report
        self._send = threading.Lock()
        self._th = threading.Thread(target=self._read, daemon=True)
        self._th.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            for raw in self.ws:
                m = json.loads(raw)
                cl = m.get("cl_ord_id")
                if cl is None:
                    continue
                self.first_reply_at.setdefault(cl, time.perf_counter())
                if m.get("kind") == "execution_report" and m.get("ord_status") in TERMINAL:
                    self.final[cl] = int(m["cum_qty"])

    def send(self, obj: dict[str, Any]) -> None:
        with self._send:
            if obj["op"] == "submit":
                self.sent_at[obj["cl_ord_id"]] = time.perf_counter()
            self.ws.send(json.dumps(obj))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


TERMINAL = {"FILLED", "CANCELED", "DONE_FOR_DAY", "EXPIRED", "REJECTED"}


@dataclass
class Minute:
    minute: str  # market HH:MM
    live: int = 0
    reports_per_s: float = 0.0
    fills_per_s: float = 0.0
    saga_lag_p50_ms: float | None = None
    saga_lag_p99_ms: float | None = None
    ack_p50_ms: float | None = None
    ack_p99_ms: float | None = None
    acks: int = 0
    rss_mb: dict[str, float] = field(default_factory=dict)
    held_actions: float | None = None
    worker_jobs: float | None = None


@dataclass
class SoakResult:
    parents: int
    minutes: list[Minute] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    takeover: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


class _Watch:
    """What this process hears, by market minute: reports, fills, the saga's lag, clients' acks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports = 0
        self.fills = 0
        self.lags_ms: list[float] = []
        self.fill_pub_ms: dict[str, list[int]] = defaultdict(list)  # parent -> its fills' publish times
        self.trades: dict[str, int] = defaultdict(int)  # parent -> TRADE reports seen
        self.accepted: set[str] = set()
        self.ended: set[str] = set()

    def on_execution(self, d: Any) -> None:
        if isinstance(d.message, Fill):
            with self.lock:
                self.fill_pub_ms[d.message.parent_id].append(d.publish_time_ms)

    def on_report(self, d: Any) -> None:
        r = d.message
        if not isinstance(r, ExecutionReport):
            return
        with self.lock:
            self.reports += 1
            if r.exec_type is ExecType.NEW:
                self.accepted.add(r.parent_id)
            if r.exec_type is ExecType.TRADE:
                self.fills += 1
                k = self.trades[r.parent_id]
                self.trades[r.parent_id] = k + 1
                pubs = self.fill_pub_ms.get(r.parent_id, [])
                if k < len(pubs):
                    self.lags_ms.append(max(0.0, r.ts_init / 1e6 - pubs[k]))
            if r.ord_status.terminal:
                self.ended.add(r.parent_id)

    def take(self) -> tuple[int, int, list[float], int]:
        with self.lock:
            out = (self.reports, self.fills, self.lags_ms, len(self.accepted - self.ended))
            self.reports, self.fills, self.lags_ms = 0, 0, []
            return out


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _ms(xs: list[float], q: float) -> float | None:
    return round(percentile(xs, q / 100), 2) if xs else None


class Soak:
    def __init__(
        self,
        settings: Settings,
        cfg: broker.BrokerConfig,
        out: Path,
        *,
        parents: int,
        fix_clients: int,
        native_clients: int,
        symbols: list[str],
        speed: float,
        seed: int,
        kill_leader_at: int | None,
        open_s: int,
        close_s: int,
    ) -> None:
        self.settings, self.cfg, self.out = settings, cfg, out
        self.speed, self.seed, self.kill_at = speed, seed, kill_leader_at
        self.open_s, self.close_s = open_s, close_s
        self.symbols = symbols
        self.fix_clients, self.native_clients = fix_clients, native_clients
        self.run = uuid.uuid4().hex[:6]
        out.mkdir(parents=True, exist_ok=True)
        self.log = (out / "services.log").open("w")
        self.plan = plan_day(
            parents, fix_clients + native_clients, symbols, seed, open_s=open_s, close_s=close_s
        )
        self.cls = {p.cl for p in self.plan}
        self.procs: dict[str, Proc] = {}
        self.fix: dict[int, FixClient] = {}
        self.native: dict[int, NativeClient] = {}
        self.fix_port, self.native_port = free_port(), free_port()
        self.ep_cfg = write_endpoint_config(
            out / "endpoint.toml",
            name=f"soak-ep-{self.run}",
            fix_port=self.fix_port,
            native_port=self.native_port,
            state_dir=out / "endpoint",
            symbols=symbols,
            clients=fix_clients + native_clients,
        )
        self.watch = _Watch()
        self.res = SoakResult(parents=parents)

    # --- services and clients ----------------------------------------------------------------------------
    def _spawn(self, key: str, *args: str) -> Proc:
        p = Proc.on(self.cfg, *args, log=self.log, env={"PACELINE_LOG_LEVEL": "WARNING"})
        self.procs[key] = p
        return p

    def start(self, bus: Bus) -> None:
        for key in ("hc-a", "hc-b"):
            self._spawn(key, "health-checker", "--name", f"{key}-{self.run}")
        until(
            lambda: any(self.procs[k].metric("paceline_hc_leader") == 1 for k in ("hc-a", "hc-b")),
            120,
            "a leading health-checker",
        )
        self._spawn("endpoint", "endpoint", "--config", str(self.ep_cfg)).wait_for_metric(
            "paceline_service_ready", 1, 120, service="endpoint"
        )
        for w in ("w1", "w2"):
            self._spawn(w, "worker", "--id", f"{w}-{self.run}", "--capacity", "1000")
        wait_for_workers(bus, {f"w1-{self.run}", f"w2-{self.run}"})
        for i in range(1, self.fix_clients + 1):
            cid, _ = demo_client(i)
            self.fix[i] = FixClient(self.out / f"fix-{cid}", self.fix_port, comp_id=cid).start(timeout_s=90)
        for i in range(self.fix_clients + 1, self.fix_clients + self.native_clients + 1):
            self.native[i] = NativeClient(self.native_port, demo_client(i)[1])

    def stop(self) -> None:
        for c in self.fix.values():
            c.stop()
        for n in self.native.values():
            n.close()
        for p in self.procs.values():
            p.stop()
        self.log.close()

    # --- the day ----------------------------------------------------------------------------------------
    def _ticks(self) -> list[Any]:
        sims = [
            SymbolSim(
                SymbolSpec(s, price=50.0 + 25.0 * k, events_per_s=2.0),
                self.seed + k,
                depth=5,
                start_s=self.open_s,
                close_s=self.close_s,
            )
            for k, s in enumerate(self.symbols)
        ]
        return list(heapq.merge(*sims, key=lambda t: t.ts_event))

    def _send(self, kind: str, p: Plan, day: int) -> None:
        fix = self.fix.get(p.client)
        if kind == "new":
            start_ns, end_ns = day + p.start_s * S, day + p.end_s * S
            if fix is not None:
                fix.new_order(
                    p.cl,
                    p.symbol,
                    p.qty,
                    start_ns=start_ns,
                    end_ns=end_ns,
                    strategy=STRATEGY_OUT[p.strategy],
                    rate=p.rate,
                )
            else:
                self.native[p.client].send(
                    {
                        "op": "submit",
                        "cl_ord_id": p.cl,
                        "symbol": p.symbol,
                        "side": "BUY",
                        "quantity": p.qty,
                        "start_ns": start_ns,
                        "end_ns": end_ns,
                        "strategy": p.strategy.value,
                        "participation_rate": p.rate,
                    }
                )
        elif kind == "cancel":
            if fix is not None:
                fix.cancel(f"{p.cl}-X", p.cl, p.symbol, p.qty)
            else:
                self.native[p.client].send({"op": "cancel", "cl_ord_id": f"{p.cl}-X", "orig_cl_ord_id": p.cl})
        elif kind == "amend":
            if fix is not None:
                fix.replace(f"{p.cl}-A", p.cl, p.symbol, p.amend_qty)
            else:
                self.native[p.client].send(
                    {"op": "amend", "cl_ord_id": f"{p.cl}-A", "orig_cl_ord_id": p.cl, "quantity": p.amend_qty}
                )

    def execute(self) -> SoakResult:
        t0 = time.monotonic()
        ticks = self._ticks()
        day = midnight_ns(ticks[0].ts_event)
        actions = sorted(
            [(p.start_s, 0, "new", p) for p in self.plan]
            + [(p.cancel_s, 1, "cancel", p) for p in self.plan if p.cancel_s is not None]
            + [(p.amend_s, 1, "amend", p) for p in self.plan if p.amend_s is not None],
            key=lambda a: (a[0], a[1], a[3].cl),
        )
        print(
            f"soak: {len(self.plan)} parents, {self.fix_clients} FIX + {self.native_clients} native clients, "
            f"{len(self.symbols)} symbols, {len(ticks):,} ticks at {self.speed:g}x "
            f"(~{(self.close_s - self.open_s) / self.speed / 60:.0f} min)",
            flush=True,
        )
        with Bus(self.cfg.service_url, quiet=True, token=self.cfg.admin_token) as bus:
            feed: Feed | None = None
            readers: list[Any] = []
            try:
                self.start(bus)
                readers = [
                    bus.tail(topics.REPORTS, Message, self.watch.on_report),
                    bus.tail(topics.EXECUTIONS, Message, self.watch.on_execution),
                ]
                feed = Feed(bus, f"soak-{self.run}", ticks, self.speed).start()
                self._drive(feed, actions, day)
                self._wait_done(feed)
            finally:
                if feed is not None:
                    feed.stop()
                for r in readers:
                    r.close()
                self.stop()
            self._check(bus)
        self.res.wall_s = time.monotonic() - t0
        (self.out / "soak.json").write_text(json.dumps(asdict(self.res), indent=1, default=str))
        _plot(self.res, self.out / "soak.png")
        return self.res

    def _drive(self, feed: Feed, actions: list[tuple[int, int, str, Plan]], day: int) -> None:
        """Send each action when the market reaches it; a row every market minute; the leader's kill."""
        i = 0
        next_minute = day + (self.open_s + 60) * S
        killed = False
        while not feed.done.is_set() or i < len(actions):
            now = feed.market_ns
            while i < len(actions) and now >= day + actions[i][0] * S:
                _, _, kind, p = actions[i]
                self._send(kind, p, day)
                i += 1
            if now >= next_minute:
                self._row((next_minute - day) // S)
                next_minute += 60 * S
            if self.kill_at is not None and not killed and now >= day + self.kill_at * S:
                killed = True
                threading.Thread(target=self._kill_leader, daemon=True).start()
            if feed.done.is_set() and i >= len(actions):
                break
            time.sleep(0.01)

    def _row(self, second: int) -> None:
        reports, fills, lags, live = self.watch.take()
        per_s = 60 / self.speed  # wall seconds in a market minute
        sent: list[float] = []
        clients: list[FixClient | NativeClient] = [*self.fix.values(), *self.native.values()]
        for c in clients:
            for cl, at in list(c.sent_at.items()):
                got = c.first_reply_at.get(cl)
                if got is not None:
                    if cl in self.cls:  # a NewOrder's (not a cancel's or an amend's)
                        sent.append((got - at) * 1000)
                    del c.sent_at[cl]
        row = Minute(
            minute=f"{second // 3600:02d}:{second % 3600 // 60:02d}",
            live=live,
            reports_per_s=round(reports / per_s, 1),
            fills_per_s=round(fills / per_s, 1),
            saga_lag_p50_ms=_ms(lags, 50),
            saga_lag_p99_ms=_ms(lags, 99),
            ack_p50_ms=_ms(sent, 50),
            ack_p99_ms=_ms(sent, 99),
            acks=len(sent),
            rss_mb={k: round(m, 1) for k, p in self.procs.items() if (m := _rss_mb(p.pid)) is not None},
            held_actions=self.procs["endpoint"].metric("paceline_venue_held_actions"),
            worker_jobs=sum(self.procs[w].metric("paceline_worker_jobs") or 0.0 for w in ("w1", "w2")),
        )
        self.res.minutes.append(row)
        if len(self.res.minutes) % 15 == 1:
            print(
                f"  {'min':5s} {'live':>4s} {'rep/s':>6s} {'fill/s':>6s} {'lag p99':>8s} {'ack p50':>8s} "
                f"{'ack p99':>8s} {'held':>6s}  rss MB (hc-a hc-b endpoint w1 w2)",
                flush=True,
            )
        rss = " ".join(f"{row.rss_mb.get(k, 0):.0f}" for k in SERVICES)
        print(
            f"  {row.minute:5s} {row.live:4d} {row.reports_per_s:6.1f} {row.fills_per_s:6.1f} "
            f"{_fmt(row.saga_lag_p99_ms):>8s} {_fmt(row.ack_p50_ms):>8s} {_fmt(row.ack_p99_ms):>8s} "
            f"{_fmt(row.held_actions):>6s}  {rss}",
            flush=True,
        )

    def _kill_leader(self) -> None:
        leader = next((k for k in ("hc-a", "hc-b") if self.procs[k].metric("paceline_hc_leader") == 1), None)
        if leader is None:
            self.res.takeover = {"error": "no leader found to kill"}
            return
        standby = "hc-b" if leader == "hc-a" else "hc-a"
        t_kill = time.time()
        self.procs[leader].signal(signal.SIGKILL)
        try:
            t_lead = self.procs[standby].wait_for_metric("paceline_hc_leader", 1, 60)
        except RuntimeError as exc:
            self.res.takeover = {"killed": leader, "error": str(exc)[:200]}
            return
        took = self.procs[standby].metric("paceline_hc_takeover_seconds_sum")
        self.res.takeover = {
            "killed": leader,
            "standby": standby,
            "kill_to_leading_s": round(t_lead - t_kill, 3),
            "replay_and_open_s": took,
        }
        print(
            f"  leader {leader} SIGKILLed; {standby} leads after {t_lead - t_kill:.2f} s "
            f"(snapshot + tail + inputs open: {took or 0:.3f} s)",
            flush=True,
        )

    def _finals(self) -> dict[str, int]:
        """ClOrdID (the parent's first) -> CumQty of the terminal report its client received."""
        out: dict[str, int] = {}
        for c in self.fix.values():
            for f in c.reports():
                if f.get(39) in TERMINAL_ORD_STATUS and 11 in f:
                    out[self._first(f[11])] = int(f[14])
        for n in self.native.values():
            for cl, cum in n.final.items():
                out[self._first(cl)] = cum
        return out

    def _wait_done(self, feed: Feed) -> None:
        mine = {p.cl for p in self.plan}
        with contextlib.suppress(RuntimeError):
            until(lambda: mine <= set(self._finals()), 180, "every parent to end")
        time.sleep(1.0)

    def _first(self, cl: str) -> str:
        """The parent's first ClOrdID for a ClOrdID of its amend or cancel."""
        return cl.removesuffix("-X").removesuffix("-A")

    def _check(self, bus: Bus) -> None:
        mine = {p.cl for p in self.plan}
        first: dict[str, ParentOrder] = {}  # by the parent's first ClOrdID, as the client last asked
        jobs: set[str] = set()
        for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment):
            cl = self._first(d.message.parent.cl_ord_id)
            if cl in mine:
                first[cl] = d.message.parent  # the last one: an amend changes the quantity
                jobs.add(d.message.job_id)
        h = History.read(bus, first, jobs, self._finals())
        checks, rows = evaluate(h)
        never = mine - set(first)
        detail = f"{len(mine) - len(never)}/{len(mine)}" + (f"; never: {sorted(never)[:5]}" if never else "")
        checks.insert(0, Check("every parent assigned", not never, detail))
        self.res.checks = checks
        for r in rows:
            self.res.statuses[r["status"]] = self.res.statuses.get(r["status"], 0) + 1


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _plot(res: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = res.minutes
    if not ms:
        return
    x = list(range(len(ms)))
    ticks = [i for i in x if i % 60 == 0]
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    axes[0].plot(x, [m.live for m in ms], label="parents live")
    axes[0].plot(x, [m.held_actions or 0 for m in ms], label="endpoint actions held for their OPEN")
    axes[0].plot(x, [m.fills_per_s for m in ms], label="fills / s", alpha=0.6)
    axes[0].legend(loc="upper right")
    axes[1].plot(x, [m.saga_lag_p99_ms or float("nan") for m in ms], label="saga lag p99 (ms)")
    axes[1].plot(x, [m.saga_lag_p50_ms or float("nan") for m in ms], label="saga lag p50 (ms)")
    axes[1].set_yscale("log")
    axes[1].legend(loc="upper right")
    axes[2].plot(x, [m.ack_p99_ms or float("nan") for m in ms], ".", label="ack p99 (ms)")
    axes[2].plot(x, [m.ack_p50_ms or float("nan") for m in ms], ".", label="ack p50 (ms)")
    axes[2].set_yscale("log")
    axes[2].legend(loc="upper right")
    for k in SERVICES:
        axes[3].plot(x, [m.rss_mb.get(k, float("nan")) for m in ms], label=k)
    axes[3].set_ylabel("resident MB")
    axes[3].legend(loc="upper left", ncol=5)
    axes[3].set_xticks(ticks, [ms[i].minute for i in ticks])
    axes[0].set_title(
        f"paceline soak: {res.parents} parents, "
        f"{'PASS' if res.passed else 'FAIL'} ({sum(c.ok for c in res.checks)}/{len(res.checks)} checks)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _hhmm(s: str) -> int:
    h, m = s.split(":")
    return int(h) * 3600 + int(m) * 60


def run_soak(
    settings: Settings,
    *,
    parents: int = 1_000,
    fix_clients: int = 5,
    native_clients: int = 5,
    symbols: int = 8,
    speed: float = 20.0,
    seed: int = 11,
    kill_leader_at: str | None = None,
    start: str | None = None,
    end: str | None = None,
    out_dir: Path | None = None,
) -> SoakResult:
    out = out_dir or settings.home / "soak" / time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="paceline-soak-") as tmp:
        cfg = start_scratch_broker(Path(tmp), settings.cache_dir, auth=True)
        try:
            soak = Soak(
                settings,
                cfg,
                out,
                parents=parents,
                fix_clients=fix_clients,
                native_clients=native_clients,
                symbols=list(SYMBOLS[:symbols]),
                speed=speed,
                seed=seed,
                kill_leader_at=_hhmm(kill_leader_at) if kill_leader_at else None,
                open_s=_hhmm(start) if start else SESSION_OPEN_S,
                close_s=_hhmm(end) if end else SESSION_CLOSE_S,
            )
            res = soak.execute()
        finally:
            broker.stop(cfg)
    print(f"\nsoak: {'PASS' if res.passed else 'FAIL'} in {res.wall_s:.0f} s; statuses {res.statuses}")
    for c in res.checks:
        print(f"  [{'ok' if c.ok else 'FAIL':4s}] {c.name:28s} {c.detail}")
    if res.takeover:
        print(f"  takeover: {res.takeover}")
    print(f"  report: {out / 'soak.json'}, plot: {out / 'soak.png'}, services' log: {out / 'services.log'}")
    return res
