"""``paceline drill <fault>``: work parent orders through every service, inject one fault mid-execution,
then check every promise of the brief against what the broker holds.

The drill runs on a broker of its own (a fresh standalone in a temporary folder, durable mode), so the
broker-restart drill can restart it and the checks read a history that holds this drill only. The
services are processes (``paceline health-checker``, ``endpoint``, two ``worker``; a standby
health-checker for ``health-checker-kill``); this process publishes the synthetic market and is the FIX
client. The checks read the topics themselves, not the services' own accounts:

- every parent ends (a terminal execution report on the topic, and at the FIX client);
- no over-execution: the distinct fills of a parent never exceed its quantity, nor a child's its size;
- no duplicate child order: no child id accepted twice by the venue, no fill id with two contents;
- no lost fill: the final CumQty and AvgPx equal the sum and VWAP of the parent's distinct fills;
- consistent execution reports: CumQty never decreases, one terminal report and it is the last, one
  TRADE report per fill;
- fencing: once the venue confirmed a FENCE at epoch e, nothing of an epoch below e is accepted or filled.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import signal
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fixclient import FixClient
from market.costs import traded, vwap
from market.session import SESSION_OPEN_S, midnight_ns
from market.synthetic import SymbolSim, SymbolSpec
from models import (
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    ExecType,
    ExecutionReport,
    Fill,
    JobAssignment,
    Message,
    ParentOrder,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    topics,
)
from models.fix import TERMINAL_ORD_STATUS, Tag
from paceline.drills.faults import CLUSTER_FAULTS, FAULTS
from paceline.ops import broker, cluster
from paceline.ops.cluster import ClusterConfig
from paceline.ops.stack import (
    Feed,
    Proc,
    free_port,
    start_scratch_broker,
    until,
    wait_for_workers,
    write_endpoint_config,
)
from runtime.bus import Bus
from runtime.settings import Settings

HC_PAUSE_S = 8.0  # the leader is SIGSTOPped this long (past the standby's leader timeout), then SIGCONT
S = 1_000_000_000
HEARTBEAT_TIMEOUT_S = 2.0
# The market runs in real time from the fault until this long after it, then at the drill's speed again: an
# outage of a few wall seconds costs the parents a few market seconds, as in production, not ten times that
# (at 10x a 5-s broker failover and the reassignments after it once ate a sixth of a 6-minute window).
FAULT_REAL_TIME_S = 15.0
SYMBOLS = ["AAPL", "MSFT"]
# (label, symbol, FIX TargetStrategy, participation rate): four parents, two per worker
PARENTS = (
    ("TWAP", "AAPL", 1001, None),
    ("VWAP", "MSFT", 1, None),
    ("POV", "AAPL", 2, 0.1),
    ("IS", "MSFT", 1002, None),
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DrillResult:
    fault: str
    checks: list[Check] = field(default_factory=list)
    detected_s: float | None = None
    detected_what: str = ""
    recovered_s: float | None = None
    recovered_what: str = ""
    parents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def table(self) -> str:
        lines = [f"drill {self.fault}: {'PASS' if self.passed else 'FAIL'} ({self.wall_s:.0f} s)"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c.ok else 'FAIL':4s}] {c.name:28s} {c.detail}")
        if self.detected_s is not None:
            lines.append(f"  detection {self.detected_s * 1000:8.0f} ms  {self.detected_what}")
        if self.recovered_s is not None:
            lines.append(f"  recovery  {self.recovered_s * 1000:8.0f} ms  {self.recovered_what}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        for p in self.parents:
            lines.append(f"  {p['label']:5s} {p['symbol']:5s} {p['cum_qty']:5d}/{p['qty']:<5d} {p['status']}")
        return "\n".join(lines)


def _ticks(start_s: int, window_s: int, seed: int) -> list[Any]:
    sims = [
        SymbolSim(SymbolSpec(s), seed, depth=5, start_s=start_s - 15, close_s=start_s + window_s + 90)
        for s in SYMBOLS
    ]
    return list(heapq.merge(*sims, key=lambda t: t.ts_event))


class Drill:
    _t_fault = 0.0  # wall time the fault was injected

    def __init__(
        self,
        fault: str,
        settings: Settings,
        cfg: broker.BrokerConfig | ClusterConfig,
        out_dir: Path,
        *,
        speed: float,
        window_s: int,
        seed: int,
    ) -> None:
        if fault not in (*FAULTS, *CLUSTER_FAULTS):
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join((*FAULTS, *CLUSTER_FAULTS))}")
        if (fault in CLUSTER_FAULTS) != isinstance(cfg, ClusterConfig):
            raise ValueError(
                f"{fault} is a drill for {'a cluster' if fault in CLUSTER_FAULTS else 'a standalone'}"
            )
        self.fault, self.settings, self.cfg, self.speed, self.window_s = fault, settings, cfg, speed, window_s
        self.run = uuid.uuid4().hex[:6]
        self.out = out_dir
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = (self.out / "services.log").open("w")
        self.seed = seed
        self.procs: dict[str, Proc] = {}
        self.fix_port = free_port()
        self.ep_cfg = write_endpoint_config(
            self.out / "endpoint.toml",
            name=f"drill-ep-{self.run}",
            fix_port=self.fix_port,
            state_dir=self.out / "endpoint",
            symbols=SYMBOLS,
        )
        self.client: FixClient | None = None
        self.res = DrillResult(fault)
        self.cl: dict[str, tuple[str, str, int]] = {}  # ClOrdID -> (label, symbol, qty)

    # --- services --------------------------------------------------------------------------------------
    def _spawn(self, key: str, *args: str) -> Proc:
        p = Proc.on(self.cfg, *args, log=self.log)  # each service under its own role
        self.procs[key] = p
        return p

    def _hc(self, key: str) -> Proc:
        return self._spawn(
            key,
            "health-checker",
            "--name",
            f"{key}-{self.run}",
            "--heartbeat-timeout",
            str(HEARTBEAT_TIMEOUT_S),
        )

    def _endpoint(self) -> Proc:
        return self._spawn("endpoint", "endpoint", "--config", str(self.ep_cfg))

    def start(self, bus: Bus) -> None:
        # Readiness from each service's /metrics, not from its log lines.
        self._hc("hc-a").wait_for_metric("paceline_hc_leader", 1, 120)
        if self.fault in ("health-checker-kill", "health-checker-pause"):
            self._hc("hc-b").wait_for_metric("paceline_service_ready", 1, 60, service="health-checker")
        self._endpoint().wait_for_metric("paceline_service_ready", 1, 120, service="endpoint")
        for w in ("w1", "w2"):
            self._spawn(w, "worker", "--id", f"{w}-{self.run}")
        wait_for_workers(bus, {f"w1-{self.run}", f"w2-{self.run}"})
        self.client = FixClient(self.out / "client", self.fix_port).start(timeout_s=90)

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()
        for p in self.procs.values():
            p.stop()
        self.log.close()

    # --- the run ---------------------------------------------------------------------------------------
    def execute(self) -> DrillResult:
        t_start = time.monotonic()
        start_s = SESSION_OPEN_S + 3600
        ticks = _ticks(start_s, self.window_s, self.seed)
        day = midnight_ns(ticks[0].ts_event)
        start_ns, end_ns = day + start_s * S, day + (start_s + self.window_s) * S
        with Bus(self.cfg.service_url, quiet=True, token=self.cfg.admin_token) as bus:
            feed: Feed | None = None
            try:
                self.start(bus)
                feed = Feed(bus, f"drill-{self.run}", ticks, self.speed).start()
                until(lambda: feed is not None and feed.market_ns >= start_ns, 60, "the market to open")
                assert self.client is not None
                for label, sym, strategy, rate in PARENTS:
                    cl = f"R{self.run}-{label}"
                    self.cl[cl] = (label, sym, 2_000)
                    self.client.new_order(
                        cl, sym, 2_000, start_ns=start_ns, end_ns=end_ns, strategy=strategy, rate=rate
                    )
                fault_ns = start_ns + round(0.35 * self.window_s * S)
                until(
                    lambda: feed is not None and feed.market_ns >= fault_ns, self.window_s, "the fault time"
                )
                t_fault = self._t_fault = time.time()
                feed.set_speed(1.0)
                after = self._inject(bus)
                time.sleep(max(0.0, FAULT_REAL_TIME_S - (time.time() - t_fault)))
                feed.set_speed(self.speed)
                self._wait_done(feed, timeout_s=self.window_s / self.speed + 120)
                after(bus, t_fault)
            finally:
                if feed is not None:
                    feed.stop()
                self.stop()
            self._check(bus)
        self.res.wall_s = time.monotonic() - t_start
        (self.out / "result.json").write_text(json.dumps(asdict(self.res), indent=1, default=str))
        return self.res

    def _wait_done(self, feed: Feed, timeout_s: float) -> None:
        assert self.client is not None
        client = self.client

        def done() -> bool:
            final = {f[11] for f in client.reports() if f.get(39) in TERMINAL_ORD_STATUS}
            return set(self.cl) <= final

        with contextlib.suppress(RuntimeError):
            until(done, timeout_s, "every parent to end")
        # The last reports from the saga can trail the client's; give the topic a moment to settle.
        time.sleep(1.0)

    def _victim_worker(self, bus: Bus) -> str:
        jobs: dict[str, str] = {}
        for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment):
            a = d.message
            if a.parent.cl_ord_id in self.cl and not a.revoked:
                jobs[a.job_id] = a.worker_id
        counts: dict[str, int] = defaultdict(int)
        for w in jobs.values():
            counts[w] += 1
        return max(counts, key=lambda w: counts[w])

    def _inject(self, bus: Bus) -> Callable[[Bus, float], None]:
        """Inject the fault; returns what measures detection and recovery once the parents are done."""
        if self.fault in ("worker-kill", "network-pause"):
            victim = self._victim_worker(bus)
            proc = self.procs["w1" if victim.startswith("w1-") else "w2"]
            if self.fault == "worker-kill":
                proc.kill()
                self.res.notes.append(f"SIGKILL {victim}")
            else:
                proc.signal(signal.SIGSTOP)
                time.sleep(HEARTBEAT_TIMEOUT_S + 3)
                proc.signal(signal.SIGCONT)
                self.res.notes.append(f"SIGSTOP {victim} for {HEARTBEAT_TIMEOUT_S + 3:g} s, then SIGCONT")
            return lambda b, t0: self._times_worker(b, t0, victim)
        if self.fault == "health-checker-kill":
            self.procs["hc-a"].kill()
            took = self.procs["hc-b"].wait_for_metric("paceline_hc_leader", 1, 60)
            self.res.notes.append("SIGKILL the leading health-checker; the standby takes the lease")
            return lambda b, t0: self._times_hc(b, t0, took)
        if self.fault == "health-checker-pause":
            # A hung leader: its connection stays open, so the broker never releases its lease. The
            # standby hears its beats stop, fences it out and frees its input subscriptions.
            self.procs["hc-a"].signal(signal.SIGSTOP)
            took = self.procs["hc-b"].wait_for_metric("paceline_hc_leader", 1, 60)
            time.sleep(max(0.0, HC_PAUSE_S - (time.time() - took)))
            self.procs["hc-a"].signal(signal.SIGCONT)
            down = self.procs["hc-a"].wait_for_metric("paceline_hc_leader", 0, 30)
            self.res.notes.append(
                f"SIGSTOP the leading health-checker; the standby led after {took - self._t_fault:.1f} s; "
                f"SIGCONT after {HC_PAUSE_S:g} s, the resumed one was fenced and stepped down "
                f"{down - took:.1f} s after the takeover"
            )
            return lambda b, t0: self._times_hc(b, t0, took)
        if self.fault == "endpoint-restart":
            assert self.client is not None
            self.procs["endpoint"].kill()
            t_kill = time.time()
            until(
                lambda: self.client is not None and not self.client.logged_on.is_set(),
                30,
                "the client to see the session drop",
            )
            t_drop = time.time()
            self._endpoint().wait_for_metric("paceline_service_ready", 1, 120, service="endpoint")
            until(lambda: self.client is not None and self.client.logged_on.is_set(), 60, "the FIX logon")
            self.res.notes.append(
                f"SIGKILL the endpoint; restarted on its state folder; FIX session back "
                f"after {time.time() - t_kill:.1f} s"
            )
            return lambda b, t0: self._times_endpoint(b, t0, t_drop)
        if isinstance(self.cfg, ClusterConfig):
            return self._inject_cluster(bus, self.cfg)
        # broker-restart: a graceful stop and a start of the same standalone (same data)
        assert isinstance(self.cfg, broker.BrokerConfig)
        t0 = time.monotonic()
        broker.stop(self.cfg)
        down = time.monotonic() - t0
        broker.start(self.cfg)
        broker.wait(self.cfg, timeout_s=180)
        t_ready = time.time()
        self.res.notes.append(
            f"broker stopped in {down:.1f} s, ready again {time.monotonic() - t0:.1f} s after the fault"
        )
        return lambda b, t0_: self._times_broker(b, t0_, t_ready)

    def _parent_topics(self, bus: Bus) -> list[str]:
        """The topics this drill's parents use: the saga's, their symbols' ticks and their jobs'."""
        return [
            topics.EXECUTIONS,
            topics.REPORTS,
            topics.VENUE_COMMANDS,
            topics.SAGA_LOG,
            *(topics.ticks(s) for s in SYMBOLS),
            *(topics.job_actions(s) for s in SYMBOLS),
            *(topics.job_executions(s) for s in SYMBOLS),
        ]

    def _inject_cluster(self, bus: Bus, cfg: ClusterConfig) -> Callable[[Bus, float], None]:
        """SIGKILL a broker (the one that owns the saga's executions topic) or a bookie. What this process
        receives on live readers, timed as it arrives, says when traffic stopped and resumed: a message's
        publish time is the producer's, taken before a broker's death held it back."""
        watched = self._parent_topics(bus)
        before = {t: cluster.owner(cfg, t) for t in watched}
        heard: dict[str, list[float]] = {
            t: [] for t in (topics.EXECUTIONS, *(topics.ticks(s) for s in SYMBOLS))
        }
        fills: list[float] = []

        def hear(topic: str) -> Callable[[Any], None]:
            def on(d: Any) -> None:
                now = time.time()
                heard[topic].append(now)
                if isinstance(d.message, Fill):
                    fills.append(now)

            return on

        readers = [bus.tail(t, Message, hear(t)) for t in heard]
        time.sleep(5.0)  # the traffic before the fault, for comparison
        if self.fault == "broker-kill":
            victim = before[topics.EXECUTIONS] or "broker-1"
        else:  # a bookie the first symbol's ticks are being written to: its writes must go on
            victim = (cluster.ensemble(cfg, topics.ticks(SYMBOLS[0])) or ["bookie-1"])[0]
        cluster.stop_member(cfg, victim, signal.SIGKILL)
        t_kill = time.time()
        moved_at = None
        if self.fault == "broker-kill":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # detected: the executions topic has an owner again
                now_owner = cluster.owner(cfg, topics.EXECUTIONS)
                if now_owner is not None and now_owner != victim:
                    moved_at = time.time()
                    break
                time.sleep(0.1)
            after = {t: cluster.owner(cfg, t) for t in watched}
            owned = [t for t in watched if before[t] == victim]
            moved = [t for t in owned if after[t] not in (None, victim)]
            self.res.notes.append(
                f"SIGKILL {victim}, which owned {len(owned)} of the parents' {len(watched)} topics; "
                f"{len(moved)} of them moved to the surviving broker"
            )
        else:
            self.res.notes.append(
                f"SIGKILL {victim} (ensemble {cluster.ENSEMBLE[0]}, write and ack quorum "
                f"{cluster.ENSEMBLE[1]} over {len(cfg.bookie_ports)} bookies)"
            )

        def measure(_bus: Bus, _t0: float) -> None:
            for r in readers:
                r.close()
            # Back for the next drill, and serving before the checks read the topics: a broker that has
            # registered but not yet opened its port can be handed topics by a lookup (the check's reader
            # then failed on connection refused until it timed out).
            cluster.start_member(cfg, victim)
            cluster.wait_member(cfg, victim, 180)
            first = next((t for t in sorted(fills) if t > t_kill), None)
            self.res.recovered_s = None if first is None else first - t_kill
            self.res.recovered_what = f"SIGKILL {victim} → the first fill received after it"
            gaps = {t: (_longest(xs, t_kill - 5, t_kill), _longest(xs, t_kill, t_kill + 20))
                    for t, xs in heard.items()}  # fmt: skip
            for t, (pre, post) in gaps.items():
                owner, name = before.get(t) or "?", t.rsplit("/", 1)[-1]
                self.res.notes.append(f"longest silence on {name}: {post:.2f} s in the 20 s after, "
                                      f"{pre:.2f} s in the 5 s before (owner {owner})")  # fmt: skip
            if self.fault == "broker-kill":
                self.res.detected_s = None if moved_at is None else moved_at - t_kill
                self.res.detected_what = "SIGKILL → the executions topic owned by the surviving broker"
            else:  # the ticks are a dense stream (a pause shows); executions are as sparse as the fills
                self.res.detected_s = gaps[topics.ticks(SYMBOLS[0])][1]
                self.res.detected_what = f"the longest pause of {SYMBOLS[0]}'s ticks, written to {victim}"

        return measure

    # --- detection and recovery ------------------------------------------------------------------------
    def _jobs(self, bus: Bus) -> dict[str, str]:
        """job id -> ClOrdID of this drill's parents."""
        return {
            d.message.job_id: d.message.parent.cl_ord_id
            for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment)
            if d.message.parent.cl_ord_id in self.cl
        }

    def _first_after(
        self, items: list[tuple[float, Any]], t0: float, pred: Callable[[Any], bool]
    ) -> float | None:
        return next((t - t0 for t, m in sorted(items, key=lambda x: x[0]) if t >= t0 and pred(m)), None)

    def _times_worker(self, bus: Bus, t0: float, victim: str) -> None:
        victim_jobs = {
            d.message.job_id
            for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment)
            if d.message.worker_id == victim and d.message.parent.cl_ord_id in self.cl
        }
        cmds = [
            (d.publish_time_ms / 1e3, d.message) for d in bus.read_all(topics.VENUE_COMMANDS, VenueCommand)
        ]
        self.res.detected_s = self._first_after(
            cmds, t0, lambda c: c.op is VenueOp.FENCE and c.job_id in victim_jobs
        )
        self.res.detected_what = "fault → the health-checker fences the lost worker's job at the venue"
        epoch = {
            d.message.child_id: d.message.epoch
            for s in SYMBOLS
            for d in bus.read_all(topics.job_actions(s), ChildOrderAction)
            if d.message.job_id in victim_jobs
        }
        venue = [
            (d.publish_time_ms / 1e3, d.message)
            for s in SYMBOLS
            for d in bus.read_all(topics.job_executions(s), Message)
            if isinstance(d.message, Fill | ChildOrderAck) and d.message.job_id in victim_jobs
        ]
        self.res.recovered_s = self._first_after(
            venue,
            t0,
            lambda m: epoch.get(m.child_id, 0) >= 2 and getattr(m, "status", None) is not AckStatus.REJECTED,
        )
        self.res.recovered_what = "fault → a child order of the next epoch taken by the venue"

    def _times_hc(self, bus: Bus, t0: float, leading_at: float) -> None:
        self.res.detected_s = leading_at - t0
        self.res.detected_what = (
            "SIGKILL → the standby holds the lease, has replayed the log and leads"
            if self.fault == "health-checker-kill"
            else "SIGSTOP → the standby hears no beat, fences the leader out, replays the log and leads"
        )
        reports = [
            (d.publish_time_ms / 1e3, d.message)
            for d in bus.read_all(topics.REPORTS, Message)
            if isinstance(d.message, ExecutionReport)
        ]
        self.res.recovered_s = self._first_after(
            reports, t0, lambda r: r.cl_ord_id in self.cl and r.exec_type is ExecType.TRADE
        )
        fault = "SIGKILL" if self.fault == "health-checker-kill" else "SIGSTOP"
        self.res.recovered_what = f"{fault} → the first fill reported by the new leader"

    def _fills_after(self, bus: Bus, t0: float) -> float | None:
        fills = [
            (d.publish_time_ms / 1e3, d.message)
            for d in bus.read_all(topics.EXECUTIONS, Message)
            if isinstance(d.message, Fill)
        ]
        jobs = self._jobs(bus)
        return self._first_after(fills, t0, lambda f: f.job_id in jobs)

    def _times_endpoint(self, bus: Bus, t0: float, t_drop: float) -> None:
        self.res.detected_s = t_drop - t0
        self.res.detected_what = "SIGKILL → the FIX client sees its session drop"
        self.res.recovered_s = self._fills_after(bus, t0)
        self.res.recovered_what = "SIGKILL → the first fill from the restarted endpoint's venue"

    def _times_broker(self, bus: Bus, t0: float, t_ready: float) -> None:
        self.res.detected_s = t_ready - t0
        self.res.detected_what = "stop → the restarted broker answers (services reconnect on their own)"
        self.res.recovered_s = self._fills_after(bus, t_ready)
        if self.res.recovered_s is not None:
            self.res.recovered_s += t_ready - t0
        self.res.recovered_what = "stop → the first fill after the broker is back"

    # --- the promises ----------------------------------------------------------------------------------
    def _check(self, bus: Bus) -> None:
        assignments = [
            d.message
            for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment)
            if d.message.parent.cl_ord_id in self.cl
        ]
        jobs = {a.job_id for a in assignments}
        assert self.client is not None
        h = History.read(
            bus,
            {a.parent.cl_ord_id: a.parent for a in assignments},
            jobs,
            fix_final={f[11]: int(f[14]) for f in self.client.reports() if f.get(39) in TERMINAL_ORD_STATUS},
        )
        checks, rows = evaluate(h)
        self.res.checks += checks
        # The client's TCA (FIX tag 20002 on its final report) survives the fault too: after an endpoint
        # restart it is rebuilt from the recorded ticks and fills.
        final_tca = {
            f[11]: Tag.SHORTFALL_BPS in f for f in self.client.reports() if f.get(39) in TERMINAL_ORD_STATUS
        }
        without = sorted(cl for cl, has in final_tca.items() if not has)
        self.res.checks.append(Check(
            "TCA on every final report", bool(final_tca) and not without,
            f"none on {', '.join(without)}" if without else f"{len(final_tca)} final reports",
        ))  # fmt: skip
        for row in rows:
            label, sym, q = self.cl[row.pop("cl_ord_id")]
            self.res.parents.append({"label": label, "symbol": sym, "qty": q, **row})
        if self.fault in ("worker-kill", "network-pause"):
            epochs = [
                d.message.epoch
                for d in bus.read_all(topics.ASSIGNMENTS, JobAssignment)
                if d.message.parent.cl_ord_id in self.cl
            ]
            self.res.checks.append(
                Check(
                    "lost worker's jobs reassigned",
                    max(epochs, default=1) >= 2,
                    f"highest epoch {max(epochs, default=1)}",
                )
            )
        if self.res.recovered_s is None:
            self.res.checks.append(
                Check("work resumed after the fault", False, "no fill or child order after the fault")
            )


@dataclass
class History:
    """What the broker (and the FIX client) hold of one drill's parents, read back after the run."""

    parents: dict[str, ParentOrder]  # ClOrdID -> the parent order
    reports: list[ExecutionReport]  # the reports topic, in order
    actions: list[ChildOrderAction]  # the jobs' actions, off their symbols' topics
    executions: list[tuple[int, Message]]  # the saga's executions topic: (publish ms, message)
    job_executions: list[tuple[str, int, Message]]  # what the workers were told: (job, publish ms, message)
    fix_final: dict[str, int]  # ClOrdID -> CumQty of the terminal report the FIX client received

    @classmethod
    def read(
        cls, bus: Bus, parents: dict[str, ParentOrder], jobs: set[str], fix_final: dict[str, int]
    ) -> History:
        """The history of ``parents`` (worked as ``jobs``) off the topics, and what their clients got."""
        symbols = sorted({p.symbol for p in parents.values()})
        answers = [d for s in symbols for d in bus.read_all(topics.job_executions(s), Message)]
        return cls(
            parents=parents,
            reports=[
                d.message
                for d in bus.read_all(topics.REPORTS, Message)
                if isinstance(d.message, ExecutionReport)
            ],
            actions=[
                d.message
                for s in symbols
                for d in bus.read_all(topics.job_actions(s), ChildOrderAction)
                if d.message.job_id in jobs
            ],
            executions=[(d.publish_time_ms, d.message) for d in bus.read_all(topics.EXECUTIONS, Message)],
            job_executions=[
                (j, d.publish_time_ms, d.message)
                for d in answers
                if (j := getattr(d.message, "job_id", None)) in jobs
            ],
            fix_final=fix_final,
        )


@dataclass
class Evidence:
    """A history indexed once for the promise checks: fills, venue answers, fences, child orders."""

    h: History
    jobs: set[str] = field(default_factory=set)
    reports: dict[str, list[ExecutionReport]] = field(default_factory=lambda: defaultdict(list))  # by ClOrdID
    fills: dict[str, Fill] = field(default_factory=dict)  # the saga's topic, first of each fill id
    fill_conflicts: int = 0  # a fill id seen with two different contents
    job_fill_ids: set[str] = field(default_factory=set)  # what the workers were told
    accepted: dict[tuple[str, AckStatus], set[int]] = field(default_factory=lambda: defaultdict(set))
    fence_at: dict[tuple[str, int], float] = field(default_factory=dict)  # (job, epoch) -> first FENCE ack
    late: list[str] = field(default_factory=list)  # trading of a fenced epoch after its fence
    child_epoch: dict[str, int] = field(default_factory=dict)
    child_qty: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reused: set[str] = field(default_factory=set)  # a child id sent for two different orders
    taken: set[str] = field(default_factory=set)  # child orders the venue acted on (a fill or an ack)
    by_parent: dict[str, list[Fill]] = field(default_factory=lambda: defaultdict(list))
    by_child: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, h: History) -> Evidence:
        e = cls(h, jobs={j for j, _, _ in h.job_executions} | {a.job_id for a in h.actions})
        pid_cl = {p.parent_id: cl for cl, p in h.parents.items()}
        for r in h.reports:
            if r.parent_id in pid_cl:
                e.reports[pid_cl[r.parent_id]].append(r)
        e._index_actions()
        e._index_executions()
        e._index_job_executions()
        for f in e.fills.values():
            e.by_parent[f.parent_id].append(f)
            e.by_child[f.child_id] += f.qty
        return e

    def _index_actions(self) -> None:
        new: dict[str, ChildOrderAction] = {}
        for a in self.h.actions:
            self.child_epoch[a.child_id] = a.epoch
            if a.action in (ChildAction.NEW, ChildAction.REPLACE):
                self.child_qty[a.child_id] = max(self.child_qty[a.child_id], a.quantity)
            if a.action is ChildAction.NEW:
                first = new.setdefault(a.child_id, a)
                if first.model_dump(exclude={"ts_init"}) != a.model_dump(exclude={"ts_init"}):
                    self.reused.add(a.child_id)

    def _index_executions(self) -> None:
        for at_ms, m in self.h.executions:
            if isinstance(m, VenueCommandAck) and m.op is VenueOp.FENCE and m.job_id in self.jobs:
                self.fence_at.setdefault((m.job_id, m.epoch), at_ms)
            elif isinstance(m, Fill) and m.job_id in self.jobs:
                if m.fill_id in self.fills and self.fills[m.fill_id] != m:
                    self.fill_conflicts += 1
                self.fills.setdefault(m.fill_id, m)

    def _index_job_executions(self) -> None:
        """What each worker was told on its job's topic, and what of it came after its epoch's fence."""
        for job, at_ms, m in self.h.job_executions:
            if isinstance(m, Fill):
                self.job_fill_ids.add(m.fill_id)
                self.taken.add(m.child_id)
                ep = self.child_epoch.get(m.child_id, 0)
                if self.fenced(job, ep, at_ms):
                    self.late.append(f"fill {m.fill_id} of epoch {ep}")
            elif isinstance(m, ChildOrderAck) and m.status in (AckStatus.ACCEPTED, AckStatus.DONE):
                self.accepted[(m.child_id, m.status)].add(m.ts_init)
                self.taken.add(m.child_id)
                if self.fenced(job, m.epoch, at_ms):
                    self.late.append(f"child {m.child_id} of epoch {m.epoch} accepted after its fence")

    def fenced(self, job_id: str, epoch: int, at_ms: int) -> bool:
        return any(j == job_id and e > epoch and at_ms > t for (j, e), t in self.fence_at.items())

    def last_report(self, cl: str) -> ExecutionReport | None:
        rs = self.reports.get(cl)
        return rs[-1] if rs else None


def _every_parent_finished(e: Evidence) -> Check:
    parents, fix_final = e.h.parents, e.h.fix_final
    unfinished = [cl for cl in parents if (r := e.last_report(cl)) is None or not r.ord_status.terminal]
    at_fix = [cl for cl in parents if cl in fix_final]
    return Check(
        "every parent finished",
        not unfinished and len(at_fix) == len(parents),
        f"{len(parents) - len(unfinished)}/{len(parents)} terminal on the topic, "
        f"{len(at_fix)} at the FIX client",
    )


def _no_over_execution(e: Evidence) -> Check:
    over = [
        f"{cl}: {q} > {p.quantity}"
        for cl, p in e.h.parents.items()
        if (q := sum(f.qty for f in e.by_parent[p.parent_id])) > p.quantity
    ]
    over += [
        f"child {ch}: {q} > {e.child_qty.get(ch, 0)}"
        for ch, q in e.by_child.items()
        if q > e.child_qty.get(ch, 0)
    ]
    fine = f"{len(e.fills)} fills, none past a parent's or a child's quantity"
    return Check("no over-execution", not over, "; ".join(over) or fine)


def _no_duplicate_child_order(e: Evidence) -> Check:
    dup = [ch for (ch, _), ts in e.accepted.items() if len(ts) > 1] + sorted(e.reused)
    text = (
        f"{len(e.taken)} child orders taken once each, {e.fill_conflicts} conflicting fill ids"
        if not dup
        else f"accepted twice: {dup[:5]}"
    )
    return Check("no duplicate child order", not dup and not e.fill_conflicts, text)


def _no_lost_fill(e: Evidence) -> Check:
    lost = []
    for cl, p in e.h.parents.items():
        last = e.last_report(cl)
        qty, notional = traded(e.by_parent[p.parent_id])
        avg = vwap(notional, qty) or 0.0
        if last is not None and (last.cum_qty != qty or (qty and abs(last.avg_px - avg) > 1e-4 * avg)):
            lost.append(f"{cl}: reported {last.cum_qty} @ {last.avg_px:.4f}, fills {qty} @ {avg:.4f}")
    if e.job_fill_ids != set(e.fills):
        lost.append(f"{len(e.job_fill_ids ^ set(e.fills))} fills on one of the job and saga topics only")
    return Check("no lost fill", not lost, "; ".join(lost) or "final CumQty and AvgPx = the fills")


def _consistent_reports(e: Evidence) -> Check:
    incons = []
    for cl, p in e.h.parents.items():
        rs, fs = e.reports.get(cl, []), e.by_parent[p.parent_id]
        if not rs:
            continue
        qty, _ = traded(fs)
        if any(b.cum_qty < a.cum_qty for a, b in itertools.pairwise(rs)):
            incons.append(f"{cl}: CumQty went down")
        terminal = [i for i, r in enumerate(rs) if r.ord_status.terminal]
        if len(terminal) != 1 or terminal[0] != len(rs) - 1:
            incons.append(f"{cl}: {len(terminal)} terminal reports, last at {terminal[-1:]} of {len(rs)}")
        trades = [r for r in rs if r.exec_type is ExecType.TRADE]
        if len(trades) != len(fs) or sum(r.last_qty for r in trades) != qty:
            incons.append(f"{cl}: {len(trades)} TRADE reports for {len(fs)} fills")
        fix = e.h.fix_final.get(cl)
        if fix is not None and fix != rs[-1].cum_qty:
            incons.append(f"{cl}: FIX CumQty {fix} != {rs[-1].cum_qty}")
    return Check(
        "consistent execution reports",
        not incons,
        "; ".join(incons[:4]) or "CumQty monotone, one terminal report last, one TRADE per fill, FIX agrees",
    )


def _fenced_epochs_stay_fenced(e: Evidence) -> Check:
    fine = f"{len(e.fence_at)} fences, nothing of a fenced epoch after its confirmation"
    return Check("fenced epochs stay fenced", not e.late, "; ".join(e.late[:4]) or fine)


PROMISES: tuple[Callable[[Evidence], Check], ...] = (
    _every_parent_finished,
    _no_over_execution,
    _no_duplicate_child_order,
    _no_lost_fill,
    _consistent_reports,
    _fenced_epochs_stay_fenced,
)


def _longest(times: list[float], lo: float, hi: float) -> float:
    """The longest gap between messages received in [lo, hi] (from lo, to the last one)."""
    xs = [t for t in times if lo <= t <= hi]
    return max((b - a for a, b in itertools.pairwise([lo, *xs])), default=hi - lo)


def evaluate(h: History) -> tuple[list[Check], list[dict[str, Any]]]:
    """The brief's promises checked on a history (one function each, ``PROMISES``); also a row per parent
    for the table."""
    e = Evidence.of(h)
    rows = [
        {
            "cl_ord_id": cl,
            "cum_qty": last.cum_qty,
            "status": last.ord_status.value,
            "fills": len(e.by_parent[p.parent_id]),
        }
        for cl, p in h.parents.items()
        if (last := e.last_report(cl)) is not None
    ]
    return [promise(e) for promise in PROMISES], rows


def run_drill(
    fault: str,
    settings: Settings,
    *,
    speed: float = 10.0,
    window_s: int = 480,
    seed: int = 3,
    out_dir: Path | None = None,
    cfg: broker.BrokerConfig | None = None,
) -> DrillResult:
    """Run one drill; on a fresh broker of its own unless ``cfg`` names one it may restart. A cluster's
    drill runs on the cluster ``paceline cluster start`` brought up (or one of its own when none runs)."""
    out = out_dir or settings.home / "drills" / f"{fault}-{time.strftime('%Y%m%d-%H%M%S')}"
    if fault in CLUSTER_FAULTS:
        return _run_cluster_drill(fault, settings, out, speed=speed, window_s=window_s, seed=seed)
    own = cfg is None
    tmp = tempfile.TemporaryDirectory(prefix="paceline-drill-") if own else None
    if cfg is None:
        assert tmp is not None
        cfg = start_scratch_broker(Path(tmp.name), settings.cache_dir, auth=True)
    try:
        return Drill(fault, settings, cfg, out, speed=speed, window_s=window_s, seed=seed).execute()
    finally:
        if own:
            broker.stop(cfg)
            if tmp is not None:
                tmp.cleanup()


def _run_cluster_drill(
    fault: str, settings: Settings, out: Path, *, speed: float, window_s: int, seed: int
) -> DrillResult:
    running = cluster.ClusterConfig.load(settings.home / "cluster", settings.cache_dir)
    if running is not None and all(cluster.status(running)["brokers_ready"]):
        return Drill(fault, settings, running, out, speed=speed, window_s=window_s, seed=seed).execute()
    with tempfile.TemporaryDirectory(prefix="paceline-cluster-drill-") as tmp:
        cfg = cluster.ClusterConfig.new(Path(tmp), settings.cache_dir, auth=True)
        broker.provision(settings.cache_dir)
        took = cluster.start(cfg)
        try:
            res = Drill(fault, settings, cfg, out, speed=speed, window_s=window_s, seed=seed).execute()
        finally:
            cluster.stop(cfg)
        res.notes.insert(0, f"a cluster of its own, up in {took['ready']:.1f} s")
        return res
