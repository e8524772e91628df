"""Helpers for tests that run the pipeline on the real broker: a paced synthetic tick feed, parent orders,
service subprocesses and readers of what the services published."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from market.synthetic import SESSION_OPEN_S, SymbolSim, SymbolSpec
from models import ExecutionReport, JobRequest, ParentOrder, SagaEvent, Side, Strategy, Tick, topics
from paceline import broker
from receiver.service import Receiver
from runtime.bus import Bus

S = 1_000_000_000


def session_ticks(
    symbol: str, minutes: float, *, lead_s: int = 20, tail_s: int = 40
) -> tuple[int, list[Tick]]:
    """Synthetic ticks from ``lead_s`` before a start one hour into the session to ``tail_s`` after its end;
    returns (start in ns, ticks)."""
    start_s = SESSION_OPEN_S + 3600
    sim = SymbolSim(SymbolSpec(symbol), 3, depth=2, start_s=start_s - lead_s,
                    close_s=start_s + round(minutes * 60) + tail_s)  # fmt: skip
    ticks = list(sim)
    day = ticks[0].ts_event - ticks[0].ts_event % (86_400 * S)
    return day + start_s * S, ticks


def parent_order(tag: str, symbol: str, qty: int, start_ns: int, minutes: float) -> ParentOrder:
    return ParentOrder(
        parent_id=f"P{tag}", client_id="C1", cl_ord_id=f"c{tag}", symbol=symbol, side=Side.BUY,
        quantity=qty, start_ns=start_ns, end_ns=start_ns + round(minutes * 60 * S), strategy=Strategy.TWAP,
        ts_init=start_ns,
    )  # fmt: skip


def submit(bus: Bus, p: ParentOrder) -> str:
    job_id = f"J{p.parent_id}"
    prod = bus.producer(topics.JOB_REQUESTS)
    prod.send(JobRequest(job_id=job_id, parent=p, ts_init=p.ts_init), key=p.parent_id)
    prod.close()
    return job_id


class Feed:
    """Publishes ticks paced at ``speed`` times event time on a thread; ``on_tick`` runs before each."""

    def __init__(self, bus: Bus, name: str, ticks: list[Tick], speed: float,
                 on_tick: Callable[[Tick], None] | None = None) -> None:  # fmt: skip
        self.rx = Receiver(bus, name=name)
        self.ticks = ticks
        self.speed = speed
        self.on_tick = on_tick
        self.done = threading.Event()
        self.last: Tick | None = None
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feed:
        self._th.start()
        return self

    def _run(self) -> None:
        wall0, ev0 = time.perf_counter(), self.ticks[0].ts_event
        for t in self.ticks:
            if self._stop.is_set():
                break
            delay = wall0 + (t.ts_event - ev0) / 1e9 / self.speed - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if self.on_tick:
                self.on_tick(t)
            self.last = t
            self.rx.publish(t)
        self.rx.flush()
        self.done.set()

    def stop(self) -> None:
        self._stop.set()
        self._th.join(timeout=10)
        self.rx.close()


def reports_of(bus: Bus, parent_id: str) -> list[ExecutionReport]:
    return [
        d.message for d in bus.read_all(topics.REPORTS, ExecutionReport) if d.message.parent_id == parent_id
    ]


def saga_events(bus: Bus, saga_id: str) -> list[SagaEvent]:
    events = bus.read_all(topics.SAGA_LOG, SagaEvent)
    return [d.message for d in events if d.message.saga_id == saga_id]


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``cond()`` held; raises AssertionError after ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Service:
    """A ``paceline`` subprocess with JSON logs collected from its stdout."""

    def __init__(self, pulsar: broker.BrokerConfig, *args: str) -> None:
        env = {**os.environ, "PACELINE_PULSAR_URL": pulsar.service_url, "PACELINE_LOG_FORMAT": "json",
               "PACELINE_PULSAR_ADMIN_URL": pulsar.admin_url}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paceline", *args], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    def saw(self, event: str, **fields: object) -> dict[str, object] | None:
        """The first log line with this event (and these field values)."""
        return next((ln for ln in self.lines if ln.get("event") == event
                     and all(ln.get(k) == v for k, v in fields.items())), None)  # fmt: skip

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
