"""The pipeline part of ``paceline demo``: every service as its own process, a FIX client working parent
orders, a live view, and a TCA table with a PNG report at the end.

Processes: ``paceline health-checker``, ``paceline endpoint`` (FIX on a free port), two ``paceline worker``.
This process publishes the synthetic market (the Receiver) and is the FIX client (QuickFIX initiator). The
parents (TWAP, VWAP, POV, implementation shortfall, RL) start a minute into the published window and end a
minute before its close, on the market's clock.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixclient import FixClient
from models import topics
from paceline.ops.stack import Proc, free_port, wait_for_workers, write_endpoint_config
from runtime.bus import Bus
from runtime.settings import Settings

S = 1_000_000_000
STRATEGIES: tuple[tuple[str, int, dict[str, float]], ...] = (  # (label, FIX TargetStrategy, extra tags)
    ("TWAP", 1001, {}),
    ("VWAP", 1, {}),
    ("POV", 2, {"rate": 0.05}),
    ("IS", 1002, {}),
    ("RL", 1003, {}),
)


@dataclass
class Parent:
    cl: str
    label: str
    symbol: str
    qty: int
    start_ns: int
    end_ns: int
    filled: int = 0
    status: str = "sent"
    avg_px: float = 0.0
    shortfall: float | None = None
    vwap_slip: float | None = None
    fills: list[tuple[int, int]] = field(default_factory=list)  # (event ns, cum qty)
    order_id: str | None = None  # the desk's parent id (OrderID 37), once a report names it

    @property
    def done(self) -> bool:
        return self.status in ("FILLED", "CANCELED", "DONE_FOR_DAY", "EXPIRED", "REJECTED")

    def off_schedule(self) -> tuple[float, float]:
        """Most ahead of and most behind the linear schedule, as fractions of the parent, seen at its fills
        (just before and after each); the RL policy's band bounds the second."""
        ahead = behind = 0.0
        prev = 0
        for t, cum in self.fills:
            frac = min(1.0, max(0.0, (t - self.start_ns) / (self.end_ns - self.start_ns)))
            if t >= self.end_ns:
                break  # the end-of-window sweep
            ahead = max(ahead, cum / self.qty - frac)
            behind = max(behind, frac - prev / self.qty)
            prev = cum
        return ahead, behind


STATUS = {"0": "NEW", "1": "WORKING", "2": "FILLED", "3": "DONE_FOR_DAY", "4": "CANCELED", "8": "REJECTED",
          "C": "EXPIRED"}  # fmt: skip


class PipelineDemo:
    def __init__(
        self, settings: Settings, symbols: list[str], out_dir: Path | None, *, auth_dir: Path | None = None
    ) -> None:
        """``auth_dir``: the broker's token folder; each service runs under its own role."""
        self.settings = settings
        self.auth_dir = auth_dir
        self.symbols = symbols
        self.run = uuid.uuid4().hex[:6]
        self.state = settings.home / "demo" / self.run
        self.out_dir = out_dir or self.state
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.procs: list[Proc] = []
        self.metrics_ports: dict[str, int] = {}
        self.dashboard_port = 8765 if _free(8765) else free_port()
        self.client: FixClient | None = None
        self.parents: dict[str, Parent] = {}
        self.market_ns = 0
        self._lock = threading.Lock()

    # --- services --------------------------------------------------------------------------------------
    def start_services(self, bus: Bus) -> None:
        cfg = write_endpoint_config(self.state / "endpoint.toml", name=f"demo-ep-{self.run}",
                                    fix_port=self.port, state_dir=self.state / "endpoint",
                                    symbols=self.symbols)  # fmt: skip
        self._log = (self.state / "services.log").open("w")
        workers = {f"demo-w1-{self.run}", f"demo-w2-{self.run}"}
        services = {"health-checker": ["health-checker", "--name", f"demo-hc-{self.run}"],
                    "endpoint": ["endpoint", "--config", str(cfg)],
                    **{w: ["worker", "--id", w] for w in sorted(workers)},
                    "dashboard": ["dashboard", "--port", str(self.dashboard_port)]}  # fmt: skip
        for name, args in services.items():
            self.metrics_ports[name] = free_port()
            self.procs.append(Proc(*args, service_url=self.settings.pulsar_url,
                                   admin_url=self.settings.pulsar_admin_url, log=self._log,
                                   env={"PACELINE_METRICS_PORT": str(self.metrics_ports[name])},
                                   auth_dir=self.auth_dir))  # fmt: skip
        try:
            wait_for_workers(bus, workers)  # both workers are up (torch imported)
        except RuntimeError as exc:
            raise RuntimeError(f"the workers did not start; see {self.state / 'services.log'}") from exc
        self.client = FixClient(self.state / "client", self.port).start(timeout_s=90)
        print(f"services up: health-checker, endpoint (FIX on {self.port}), 2 workers; logs in {self.state}")
        print(f"live page: http://127.0.0.1:{self.dashboard_port}/   Prometheus metrics: "
              + ", ".join(f"{n} :{p}" for n, p in self.metrics_ports.items()))  # fmt: skip

    def observed(self) -> None:
        """What the live page and the endpoint's metrics saw, printed and kept in the run folder."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.dashboard_port}/snapshot.json", timeout=5
            ) as r:
                snap = json.loads(r.read())
            (self.state / "dashboard.json").write_text(json.dumps(snap, indent=1))
            listed = {p["cl_ord_id"] for p in snap["parents"]} & self.parents.keys()
            # The list holds 60, live ones first: on a broker other parents are live on, the demo's finished
            # ones fall off it. The page still knows each one: its chart is served.
            rest = [p.order_id for c, p in self.parents.items() if c not in listed]
            known = len(listed) + sum(self._charted(parent_id) for parent_id in rest)
            print(
                f"live page: {known} of the demo's parents known to it ({len(listed)} in its list of 60, "
                f"live ones first; the rest by their charts), {snap['fills']['count']} fills seen"
            )
            url = f"http://127.0.0.1:{self.metrics_ports['endpoint']}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
            q = histogram_quantiles(text, "paceline_endpoint_tick_to_child_seconds", (0.5, 0.99))
            if q:
                print(f"endpoint metrics: tick -> child order p50 <= {q[0.5] * 1e3:.1f} ms, "
                      f"p99 <= {q[0.99] * 1e3:.1f} ms (histogram bucket bounds)")  # fmt: skip
        except (OSError, ValueError, KeyError) as exc:
            print(f"live page or metrics not readable: {exc}")

    def _charted(self, parent_id: str | None) -> bool:
        if parent_id is None:
            return False
        url = f"http://127.0.0.1:{self.dashboard_port}/chart.json?parent={urllib.parse.quote(parent_id)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return bool(r.status == 200)
        except OSError:  # 404: the page does not know it
            return False

    def stop_services(self) -> None:
        if self.client is not None:
            self.client.stop()
        for p in self.procs:
            p.signal(signal.SIGTERM)
        for p in self.procs:
            p.stop(timeout_s=20)
        if hasattr(self, "_log"):
            self._log.close()

    # --- orders ----------------------------------------------------------------------------------------
    def send_parents(self, start_ns: int, end_ns: int, qty: int) -> None:
        assert self.client is not None
        for i, (label, strategy, extra) in enumerate(STRATEGIES):
            symbol = self.symbols[i % len(self.symbols)]
            cl = f"D{self.run}-{label}"
            self.parents[cl] = Parent(cl, label, symbol, qty, start_ns, end_ns)
            self.client.new_order(cl, symbol, qty, start_ns=start_ns, end_ns=end_ns, strategy=strategy,
                                  rate=extra.get("rate"))  # fmt: skip

    def poll_reports(self) -> None:
        assert self.client is not None
        for f in self.client.reports(f"D{self.run}-"):
            p = self.parents.get(f[11])
            if p is None:
                continue
            p.status = STATUS.get(f[39], f[39])
            if f.get(37, "NONE") != "NONE":
                p.order_id = f[37]
            if p.status in ("NEW", "WORKING") and f[150] == "8":
                p.status = "REJECTED"
            cum = int(f[14])
            if cum > p.filled:
                p.fills.append((self.market_ns, cum))
            p.filled = max(p.filled, cum)
            p.avg_px = float(f.get(6, 0) or 0)
            if 20002 in f:
                p.shortfall = float(f[20002])
            if 20003 in f:
                p.vwap_slip = float(f[20003])
            if f[150] == "8" and 58 in f:
                p.status = f"REJECTED: {f[58]}"

    def view(self) -> str:
        lines = [f"market {time.strftime('%H:%M:%S', time.gmtime(self.market_ns / 1e9))}  "
                 f"{'parent':16s} {'symbol':6s} {'filled':>13s} {'schedule':>9s} status"]  # fmt: skip
        for p in self.parents.values():
            frac = min(1.0, max(0.0, (self.market_ns - p.start_ns) / (p.end_ns - p.start_ns)))
            lines.append(f"{'':15s}{p.label:16s} {p.symbol:6s} {p.filled:6d}/{p.qty:<6d} {frac * 100:8.0f}% "
                         f"{p.status}")  # fmt: skip
        return "\n".join(lines)

    def report(self) -> Path:
        """The TCA table on stdout, and a PNG of each parent's fills against its schedule."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        print(f"\n{'policy':6s} {'symbol':6s} {'filled':>13s} {'avg px':>9s} {'IS bps':>8s} "
              f"{'vs VWAP bps':>11s} {'ahead/behind schedule':>21s} status")  # fmt: skip
        for p in self.parents.values():
            ahead, behind = p.off_schedule()
            print(f"{p.label:6s} {p.symbol:6s} {p.filled:6d}/{p.qty:<6d} {p.avg_px:9.4f} "
                  f"{_bps(p.shortfall):>8s} {_bps(p.vwap_slip):>11s} {f'+{ahead:.1%} / -{behind:.1%}':>21s} "
                  f"{p.status}")  # fmt: skip
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(9, 5))
        for p in self.parents.values():
            xs = [(p.start_ns - p.start_ns) / 60e9] + [(t - p.start_ns) / 60e9 for t, _ in p.fills]
            ys = [0.0] + [c / p.qty * 100 for _, c in p.fills]
            ax.step(xs, ys, where="post", label=f"{p.label} {p.symbol} (IS {p.shortfall} bps)")
        span = (
            max(p.end_ns for p in self.parents.values()) - min(p.start_ns for p in self.parents.values())
        ) / 60e9
        ax.plot([0, span], [0, 100], "k--", lw=1, label="linear schedule")
        ax.set_xlabel("minutes of market time since the start")
        ax.set_ylabel("% of the parent filled")
        ax.set_title("Paceline demo: parents worked by each policy")
        ax.legend(fontsize=8)
        path = self.out_dir / "demo.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        (self.out_dir / "demo.json").write_text(
            json.dumps([p.__dict__ for p in self.parents.values()], indent=1)
        )
        return path


def _bps(v: float | None) -> str:
    return "   n/a" if v is None else f"{v:+8.2f}"


def follow_clock(bus: Bus, symbol: str, on_time: Callable[[int], None]) -> Any:
    return bus.tail_event_times(topics.ticks(symbol), on_time)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def histogram_quantiles(text: str, name: str, qs: tuple[float, ...]) -> dict[float, float]:
    """Upper bucket bounds holding each quantile of a histogram in Prometheus text (summed over labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == name:
            for smp in fam.samples:
                if smp.name == f"{name}_bucket":
                    le = float(smp.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + smp.value
    if not buckets or max(buckets.values()) == 0:
        return {}
    total = buckets[max(buckets)]
    return {q: next(le for le in sorted(buckets) if buckets[le] >= q * total) for q in qs}
