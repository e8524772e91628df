"""Running Paceline's services as processes: used by the demo, the drills, the benchmarks and the tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from models import Tick, WorkerHeartbeat, topics
from paceline.ops import broker
from paceline.ops.cluster import ClusterConfig
from receiver.service import Receiver
from runtime import auth
from runtime.bus import Bus
from runtime.secrets import hash_token

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOKEN = "demo-token-0123456789"


def keep_log_on_failure(stack: contextlib.ExitStack, log: Path, name: str) -> None:
    """If the block ``stack`` closes fails, the services' log is copied out of the temporary folder before
    that goes, and its place printed: a bench that failed otherwise took its only evidence with it. Push it
    after the folder and before the log is opened, so it runs once the services have stopped."""

    def _exit(kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if kind is not None and log.exists():
            kept = Path(tempfile.gettempdir()) / f"{name}.log"
            shutil.copyfile(log, kept)
            print(f"the services' log: {kept}", file=sys.stderr)
        return False

    stack.push(_exit)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_scratch_broker(
    run_dir: Path, cache_dir: Path, *, low_latency: bool = False, auth: bool = False
) -> broker.BrokerConfig:
    """A standalone of one's own in ``run_dir`` on free ports, started and ready (stop it with
    ``broker.stop``): drills and benchmarks measure and restart it without touching anyone else's.
    ``auth``: token authentication and authorisation on (``Proc(..., auth_dir=cfg.auth_dir)`` runs a
    service under its own role)."""
    cfg = broker.BrokerConfig(run_dir=run_dir, cache_dir=cache_dir, port=free_port(), web_port=free_port(),
                              bookie_port=free_port(), low_latency=low_latency, auth=auth)  # fmt: skip
    broker.provision(cache_dir)
    broker.start(cfg)
    try:
        broker.wait(cfg, timeout_s=300)
    except broker.BrokerError:
        broker.stop(cfg)
        raise
    return cfg


def demo_client(i: int) -> tuple[str, str]:
    """The i-th demo client (from 1): its id (also its FIX SenderCompID) and its native token."""
    return f"CLIENT{i}", DEMO_TOKEN if i == 1 else f"{DEMO_TOKEN}-{i}"


def write_endpoint_config(
    path: Path, *, name: str, fix_port: int, state_dir: Path, symbols: list[str], native_port: int = 0,
    clients: int = 1, request_twin: bool = True, early_new: bool = True, new_on_store: bool = True,
) -> Path:  # fmt: skip
    """An endpoint configuration with ``clients`` clients, CLIENT1 up (demo credentials: native tokens from
    ``demo_client``, no FIX password), whose limits never get in a demo's, a drill's or a benchmark's way.
    ``request_twin``, ``early_new``, ``new_on_store``: the endpoint's settings of those names."""
    docs = []
    for i in range(1, clients + 1):
        client_id, token = demo_client(i)
        docs.append({
            "client_id": client_id, "comp_id": client_id, "token_hash": hash_token(token), "demo": True,
            "limits": {"max_order_notional": 50_000_000.0, "max_open_notional": 1e12,
                       "max_position": 100_000_000, "max_child_notional": 5_000_000.0,
                       "max_orders_per_s": 1000.0, "max_children_per_s": 100_000.0},
        })  # fmt: skip
    doc = {"name": name, "fix_port": fix_port, "native_port": native_port, "state_dir": str(state_dir),
           "symbols": symbols, "clients": docs, "request_twin": request_twin,
           "early_new": early_new, "new_on_store": new_on_store}  # fmt: skip
    path.write_text(tomli_w.dumps(doc))
    return path


# The broker role each ``paceline`` service command runs under (``paceline.ops.broker.GRANTS``).
ROLE_OF = {"receiver": "receiver", "worker": "worker", "health-checker": "health-checker",
           "endpoint": "endpoint", "dashboard": "viewer", "kill": "operator"}  # fmt: skip


class Proc:
    """A ``paceline <args>`` subprocess. Its JSON log lines are parsed and kept with the wall time each was
    read (``lines``), and copied to ``log`` when given. ``auth_dir``: the broker's token folder; the process
    runs under the role of its command (``ROLE_OF``). Its ``/metrics`` endpoint (on a free port unless the
    environment names one) tells its state: ``metric`` and ``wait_for_metric``."""

    def __init__(
        self, *args: str, service_url: str, admin_url: str | None = None, log: IO[str] | None = None,
        env: dict[str, str] | None = None, auth_dir: Path | None = None,
    ) -> None:  # fmt: skip
        full_env = {**os.environ, "PACELINE_PULSAR_URL": service_url, "PACELINE_LOG_FORMAT": "json",
                    "PACELINE_METRICS_PORT": str(free_port())}  # fmt: skip
        if admin_url:
            full_env["PACELINE_PULSAR_ADMIN_URL"] = admin_url
        if auth_dir is not None:
            full_env.pop("PACELINE_PULSAR_TOKEN", None)  # it would win over the role's file
            full_env.update(auth.env_for(auth_dir / f"{ROLE_OF[args[0]]}.token"))
        full_env.update(env or {})
        self.metrics_port = int(full_env["PACELINE_METRICS_PORT"])
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paceline", *args], env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )  # fmt: skip
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._log = log
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def on(cls, cfg: broker.BrokerConfig | ClusterConfig, *args: str, log: IO[str] | None = None,
           env: dict[str, str] | None = None) -> Proc:  # fmt: skip
        """``paceline <args>`` on ``cfg``'s standalone or cluster, under its own role when auth is on."""
        return cls(*args, service_url=cfg.service_url, admin_url=cfg.admin_url, log=log, env=env,
                   auth_dir=cfg.auth_dir if cfg.auth else None)  # fmt: skip

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            if self._log is not None:
                with contextlib.suppress(ValueError):
                    self._log.write(line)
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entry["_read_at"] = time.time()
                    self.lines.append(entry)

    def saw(self, event: str, **fields: object) -> dict[str, object] | None:
        """The first log line with this event (and these field values)."""
        return next((ln for ln in self.lines if ln.get("event") == event
                     and all(ln.get(k) == v for k, v in fields.items())), None)  # fmt: skip

    def _samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]] | None:
        """The samples called ``name`` with ``labels`` on the process's /metrics (None: no answer)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                text = r.read().decode()
        except OSError:
            return None
        return [(s.labels, float(s.value))
                for family in text_string_to_metric_families(text) for s in family.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]  # fmt: skip

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample's value on the process's /metrics (None: not there, or no answer)."""
        found = self._samples(name, **labels)
        return found[0][1] if found else None

    def counter(self, name: str, **labels: str) -> float | None:
        """A counter's value: 0 where it is not there yet (a labelled counter appears when first touched),
        None where the process did not answer."""
        found = self._samples(name, **labels)
        return None if found is None else found[0][1] if found else 0.0

    def histogram(self, name: str, **labels: str) -> list[tuple[float, float]] | None:
        """A histogram's buckets on the process's /metrics: (upper bound, cumulative count), ascending
        (None: no answer)."""
        found = self._samples(f"{name}_bucket", **labels)
        return None if found is None else sorted((float(lab["le"]), v) for lab, v in found)

    def wait_for_metric(self, name: str, value: float, timeout_s: float, **labels: str) -> float:
        """Until the sample equals ``value``; returns the wall time (``time.time()``) it was seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.metric(name, **labels) == value:
                return time.time()
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = "".join(self.raw[-20:])
        raise RuntimeError(f"paceline {' '.join(self.args)}: {name}{labels or ''} never {value:g}\n{tail}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 15) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_workers(bus: Bus, worker_ids: set[str], timeout_s: float = 120) -> None:
    """Until every one of ``worker_ids`` has sent a heartbeat (a worker imports torch before its first)."""
    seen: set[str] = set()
    heartbeats = bus.tail(topics.HEARTBEATS, WorkerHeartbeat, lambda d: seen.add(d.message.worker_id))
    try:
        until(lambda: worker_ids <= seen, timeout_s, f"workers {sorted(worker_ids - seen)}")
    finally:
        heartbeats.close()


def until(
    cond: Callable[[], bool], timeout_s: float, what: str, *, error: type[Exception] = RuntimeError
) -> float:
    """Seconds until ``cond()`` held; raises ``error`` after ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise error(f"timed out after {timeout_s:g} s waiting for {what}")


class Feed:
    """Publishes ticks paced at ``speed`` times event time on a thread; ``on_tick`` runs before each.
    ``market_ns`` is the event time of the last tick published."""

    def __init__(self, bus: Bus, name: str, ticks: list[Tick], speed: float,
                 on_tick: Callable[[Tick], None] | None = None, *, live: bool = False) -> None:  # fmt: skip
        """``live``: also on the ticks' non-persistent twins (``Receiver``'s ``live``)."""
        self.rx = Receiver(bus, name=name, live=live)
        self.ticks = ticks
        self.speed = speed
        self.on_tick = on_tick
        self.done = threading.Event()
        self.last: Tick | None = None
        self._pace: float | None = None  # a new speed, taken up at the next tick
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    @property
    def market_ns(self) -> int:
        return self.last.ts_event if self.last is not None else 0

    def start(self) -> Feed:
        for sym in {t.symbol for t in self.ticks}:  # producers before the clock starts
            self.rx.prepare(sym)
        self._th.start()
        return self

    def set_speed(self, speed: float) -> None:
        """Pace at ``speed`` from the next tick on, the clock re-anchored where the market stands."""
        self._pace = speed

    def _run(self) -> None:
        try:
            self._publish_all()
            self.rx.flush()  # logs and goes on if the broker is slow: ``done`` must still be set
        finally:
            self.done.set()

    def _publish_all(self) -> None:
        wall0, ev0 = time.perf_counter(), self.ticks[0].ts_event
        for t in self.ticks:
            if self._stop.is_set():
                break
            if (pace := self._pace) is not None:
                self._pace, self.speed = None, pace
                wall0, ev0 = time.perf_counter(), self.market_ns or t.ts_event
            delay = wall0 + (t.ts_event - ev0) / 1e9 / self.speed - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if self.on_tick:
                self.on_tick(t)
            self.last = t
            self.rx.publish(t)

    def stop(self) -> None:
        self._stop.set()
        self._th.join(timeout=10)
        self.rx.close()
