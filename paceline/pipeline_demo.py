"""The pipeline part of ``paceline demo``: every service as its own process, a FIX client working parent
orders, a live view, and a TCA table with a PNG report at the end.

Processes: ``paceline health-checker``, ``paceline endpoint`` (FIX on a free port), two ``paceline worker``.
This process publishes the synthetic market (the Receiver) and is the FIX client (QuickFIX initiator). The
parents (TWAP, VWAP, POV, implementation shortfall, RL) start a minute into the published window and end a
minute before its close, on the market's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import WorkerHeartbeat, topics
from paceline.fixclient import FixClient
from paceline.stack import free_port, write_endpoint_config
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

    @property
    def done(self) -> bool:
        return self.status in ("FILLED", "CANCELED", "DONE_FOR_DAY", "EXPIRED", "REJECTED")


STATUS = {"0": "NEW", "1": "WORKING", "2": "FILLED", "3": "DONE_FOR_DAY", "4": "CANCELED", "8": "REJECTED",
          "C": "EXPIRED"}  # fmt: skip


class PipelineDemo:
    def __init__(self, settings: Settings, symbols: list[str], out_dir: Path | None) -> None:
        self.settings = settings
        self.symbols = symbols
        self.run = uuid.uuid4().hex[:6]
        self.state = settings.home / "demo" / self.run
        self.out_dir = out_dir or self.state
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.client: FixClient | None = None
        self.parents: dict[str, Parent] = {}
        self.market_ns = 0
        self._lock = threading.Lock()

    # --- services --------------------------------------------------------------------------------------
    def start_services(self, bus: Bus) -> None:
        cfg = write_endpoint_config(self.state / "endpoint.toml", name=f"demo-ep-{self.run}",
                                    fix_port=self.port, state_dir=self.state / "endpoint",
                                    symbols=self.symbols)  # fmt: skip
        env = {**os.environ, "PACELINE_PULSAR_URL": self.settings.pulsar_url, "PACELINE_LOG_FORMAT": "json"}
        log = (self.state / "services.log").open("wb")
        heartbeats = bus.subscribe(
            topics.HEARTBEATS, f"demo-{self.run}", WorkerHeartbeat, from_earliest=False
        )
        services = (["health-checker", "--name", f"demo-hc-{self.run}"], ["endpoint", "--config", str(cfg)],
                    ["worker", "--id", f"demo-w1-{self.run}"],
                    ["worker", "--id", f"demo-w2-{self.run}"])  # fmt: skip
        for args in services:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "paceline", *args], env=env, stdout=log,
                                               stderr=subprocess.STDOUT))  # fmt: skip
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < 2 and time.monotonic() < deadline:  # both workers are up (torch imported)
            d = heartbeats.receive(timeout_ms=1000)
            if d is not None and d.message.worker_id.endswith(self.run):
                seen.add(d.message.worker_id)
        heartbeats.unsubscribe()
        if len(seen) < 2:
            raise RuntimeError(f"the workers did not start; see {self.state / 'services.log'}")
        self.client = FixClient(self.state / "client", self.port).start(timeout_s=90)
        print(f"services up: health-checker, endpoint (FIX on {self.port}), 2 workers; logs in {self.state}")

    def stop_services(self) -> None:
        if self.client is not None:
            self.client.stop()
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

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
              f"{'vs VWAP bps':>11s} status")  # fmt: skip
        for p in self.parents.values():
            print(f"{p.label:6s} {p.symbol:6s} {p.filled:6d}/{p.qty:<6d} {p.avg_px:9.4f} "
                  f"{_bps(p.shortfall):>8s} {_bps(p.vwap_slip):>11s} {p.status}")  # fmt: skip
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
