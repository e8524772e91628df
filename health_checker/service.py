"""The Health-checker service: a leader that drives the parent-order sagas, and any number of standbys.

- Leadership is the saga log's exclusive producer (``saga.PulsarLog``): a standby polls for it and, once
  granted (the leader's connection closed), replays the log, re-sends what its predecessor decided and
  did not publish (the outbox), and only then subscribes to the inputs. Nothing is sent twice: the
  broker de-duplicates the outbox by sequence id.
- Inputs (job requests and cancels, heartbeats, executions) arrive on the Pulsar client's single listener
  thread; each is acknowledged after its decision is appended and published, so a crash redelivers it
  to the successor, which handles it idempotently (fills by id, requests by parent id).
- A poll thread detects silent workers, fires timers and retries waiting jobs. A lock serialises it with
  the handlers.
- A leader that loses the lease (an append or a publish refused) steps down: it closes its inputs,
  forgets its state and goes back to waiting for the lease.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

from prometheus_client import Gauge, Histogram

from health_checker.coordinator import Config, Coordinator
from health_checker.parent_saga import ParentSaga
from models import Message, WorkerHeartbeat, topics
from runtime.bus import Bus, BusError, Consumer, Delivery
from runtime.logs import bind_order, get_logger
from runtime.metrics import LATENCY_BUCKETS
from saga import LeaseLostError, Orchestrator, PulsarLog, PulsarOutbox

log = get_logger("paceline.health_checker")

LEADER = Gauge("paceline_hc_leader", "1 while this health-checker holds the lease")
TAKEOVER = Histogram(
    "paceline_hc_takeover_seconds", "Lease granted until the log is replayed and inputs are open",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
DECISION = Histogram(
    "paceline_hc_decision_seconds",
    "Input received until its decision is appended and published",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
SUBSCRIPTION = "health-checker"


class HealthChecker:
    def __init__(self, bus: Bus, name: str, config: Config | None = None, *, poll_s: float = 0.05) -> None:
        self.bus = bus
        self.name = name
        self.config = config or Config()
        self.poll_s = poll_s
        self.coordinator: Coordinator | None = None
        self.is_leader = threading.Event()
        self.leader_since: float | None = None
        self.recovered: tuple[int, int] = (0, 0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._inputs: list[Consumer[Any]] = []
        self._tails: dict[str, Any] = {}
        self._heartbeats: Any = None

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"hc-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self) -> None:
        while not self._stop.is_set():
            plog = PulsarLog(self.bus)
            log.info("standing by for the lease", name=self.name)
            if not plog.acquire(self._stop):
                return
            try:
                self._lead(plog)
            except (LeaseLostError, BusError) as exc:
                log.error("stepping down", name=self.name, error=str(exc))
            finally:
                self._step_down(plog)

    def _lead(self, plog: PulsarLog) -> None:
        t0 = time.perf_counter()
        outbox = PulsarOutbox(self.bus)
        self._outbox = outbox
        orch: Orchestrator[ParentSaga] = Orchestrator(plog, outbox, ParentSaga)
        coord = Coordinator(orch, self.config)
        with self._lock:
            self.recovered = coord.recover()
            self.coordinator = coord
        for topic in (topics.JOB_REQUESTS, topics.EXECUTIONS):
            self._inputs.append(self.bus.subscribe(topic, SUBSCRIPTION, Message, handler=self._on_input))
        # Heartbeats only matter now: a non-durable reader from the present, so no backlog of old ones
        # (from while no health-checker ran) delays the fresh ones and makes live workers look silent.
        self._heartbeats = self.bus.tail(topics.HEARTBEATS, WorkerHeartbeat, self._on_input)
        took = time.perf_counter() - t0
        TAKEOVER.observe(took)
        LEADER.set(1)
        self.leader_since = time.monotonic()
        self.is_leader.set()
        log.info("leading", name=self.name, replayed=self.recovered[0], resent=self.recovered[1],
                 took_ms=round(took * 1000, 1))  # fmt: skip
        while not self._stop.is_set():
            with self._lock:
                if orch.broken is not None:
                    raise LeaseLostError(orch.broken)
                coord.poll()
                wanted = coord.symbols()
            self._follow_markets(coord, wanted)
            self._stop.wait(self.poll_s)

    def _step_down(self, plog: PulsarLog) -> None:
        self.is_leader.clear()
        LEADER.set(0)
        for c in self._inputs:
            c.close()
        self._inputs.clear()
        if self._heartbeats is not None:
            self._heartbeats.close()
            self._heartbeats = None
        for r in self._tails.values():
            r.close()
        self._tails.clear()
        if hasattr(self, "_outbox"):
            self._outbox.close()
        plog.release()
        with self._lock:
            self.coordinator = None

    # --- inputs (listener thread) ---------------------------------------------------------------------
    def _on_input(self, d: Delivery[Any]) -> None:
        t0 = time.perf_counter()
        with self._lock:
            coord = self.coordinator
            if coord is None:
                raise LeaseLostError("not leading")  # negatively acknowledged: the leader will get it
            with bind_order(d.message):
                coord.handle(d.message)
        DECISION.labels(getattr(d.message, "kind", "?")).observe(time.perf_counter() - t0)

    def _follow_markets(self, coord: Coordinator, wanted: set[str]) -> None:
        """Follow the event-time clock of every symbol a live parent trades (payloads never decoded)."""
        for sym in wanted - self._tails.keys():
            self._tails[sym] = self.bus.tail_event_times(
                topics.ticks(sym), partial(coord.on_market_time, sym)
            )
        for sym in self._tails.keys() - wanted:
            self._tails.pop(sym).close()
