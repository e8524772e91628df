"""The Health-checker service: a leader that drives the parent-order sagas, and any number of standbys.

- Leadership is the saga log's exclusive producer (``saga.PulsarLog``): a standby polls for it and, once
  granted (the leader's connection closed), replays the log, re-sends what its predecessor decided and
  did not publish (the outbox), and only then subscribes to the inputs. Nothing is sent twice: the
  broker de-duplicates the outbox by sequence id.
- Inputs (job requests and cancels, heartbeats, executions) arrive on the Pulsar client's single listener
  thread, which queues them. A decision thread takes whatever has queued (for up to ``GROUP_BUDGET_S`` of
  decisions), decides each in turn and commits them together: one saga log append for all (group
  commit), so inputs that arrive while an append is on its way wait for one round trip, not one each.
  Each is acknowledged after that append and its publishing, so a crash redelivers it to the successor,
  which handles it idempotently (fills by id, requests by parent id).
- A poll thread detects silent workers, fires timers and retries waiting jobs. A lock serialises it with
  the handlers. Every ``snapshot_every`` events it prunes ended sagas and snapshots the state to
  ``saga/snapshots`` (``saga.snapshot``): a takeover reads the latest snapshot and replays only the log
  after it, so its time follows the parents running, not the log's length.
- A leader that loses the lease (an append or a publish refused) steps down: it closes its inputs,
  forgets its state and goes back to waiting for the lease.
- The leader beats on ``control/leader`` from its decision loop. A leader that hangs (SIGSTOP, a stuck
  process: its connection to the broker stays open, so the lease is not released) goes silent; a standby
  that hears no beat for ``leader_timeout_s`` takes the lease with a fencing producer, so the hung leader's
  next append is refused and it steps down when it wakes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from functools import partial
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from health_checker.coordinator import Config, Coordinator
from health_checker.parent_saga import ParentSaga
from models import ExecType, JobRequest, LeaderBeat, Message, SagaEvent, WorkerHeartbeat, now_ns, topics
from runtime import metrics
from runtime.bus import (
    Bus,
    BusError,
    Consumer,
    Delivery,
    Producer,
    ProducerBusyError,
    free_subscription,
    stream_of,
)
from runtime.logs import bind_order, get_logger
from runtime.metrics import LATENCY_BUCKETS
from saga import LeaseLostError, Orchestrator, PulsarLog, PulsarOutbox, PulsarSnapshots
from saga.core import client_reports

log = get_logger("paceline.health_checker")

LEADER = Gauge("paceline_hc_leader", "1 while this health-checker holds the lease")
FENCED_TAKEOVERS = Counter(
    "paceline_hc_fenced_takeovers_total", "Leases taken from a silent leader by fencing it out"
)
TAKEOVER = Histogram(
    "paceline_hc_takeover_seconds", "Lease granted until the log is replayed and inputs are open",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
DECISION = Histogram(
    "paceline_hc_decision_seconds",
    "Input received (queued) until its decision is appended and published",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
GROUP = Histogram(
    "paceline_hc_group_inputs", "Inputs decided and committed together (one saga log append)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)  # fmt: skip
REQUEST_COPIES = Counter(
    "paceline_hc_job_request_copies_total",
    "New orders' requests by the copy that brought them (record, twin) and whether the parent was new",
    ["copy", "parent"],
)
SUBSCRIPTION = "health-checker"
INPUTS = (topics.JOB_REQUESTS, topics.EXECUTIONS)  # subscribed exclusively by the leader
# A group takes more inputs while it has decided for less than this, and up to GROUP_MAX of them: it bounds
# the first one's wait behind the others' decisions (a new order's is ~1 ms here). Unbounded, the first of a
# burst of 500 waited 130-220 ms against 30-60 ms with an append each; 10 ms keeps it near that and still
# spreads one append over ~10 inputs.
GROUP_BUDGET_S = 0.010
GROUP_MAX = 256

# A queued input: the topic of the subscription to acknowledge it on (None: a heartbeat, or a new order's
# request from its twin; never acknowledged), the delivery, and when it was queued (perf_counter).
_Queued = tuple[str | None, Delivery[Any], float]


def _count_copy(acked_on: str | None, known: bool) -> None:
    """A new order's request by its copy: the record's is acknowledged on its subscription, the twin's not."""
    REQUEST_COPIES.labels("twin" if acked_on is None else "record", "known" if known else "new").inc()


class _Watchdog:
    """A thread that notes the time every 0.1 s: a gap longer than ``limit_s`` between two of its notes
    means the process itself was stopped (every thread stands still then), not that one thread waited."""

    def __init__(self, limit_s: float, every_s: float = 0.1) -> None:
        self.limit_s, self.every_s = limit_s, every_s
        self._gap: float | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hc-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopped.wait(self.every_s):
            now = time.monotonic()
            if now - last > self.limit_s:
                self._gap = now - last
            last = now

    def frozen(self) -> float | None:
        """The gap seen since the last call, if the process stood still longer than the limit."""
        gap, self._gap = self._gap, None
        return gap

    def stop(self) -> None:
        self._stopped.set()


class HealthChecker:
    def __init__(
        self, bus: Bus, name: str, config: Config | None = None, *, poll_s: float = 0.05,
        admin_url: str | None = None,
    ) -> None:  # fmt: skip
        """``admin_url``: the broker's admin API, to free a hung leader's input subscriptions on takeover."""
        self.bus = bus
        self.admin_url = admin_url
        self._fenced = False
        self._watchdog: _Watchdog | None = None
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
        self._inputs: dict[str, Consumer[Any]] = {}  # by topic
        self._inbox: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._tails: dict[str, Any] = {}
        self._heartbeats: Any = None
        self._requests_live: Any = None
        self._news: Producer | None = None  # the reports' twin (``_tell_new``)
        self._beats: Producer | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"hc-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self) -> None:
        decider = threading.Thread(target=self._decide_loop, name=f"hc-{self.name}-decide", daemon=True)
        decider.start()
        try:
            self._run()
        finally:
            self._stop.set()
            decider.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            plog = PulsarLog(self.bus)
            log.info("standing by for the lease", name=self.name)
            metrics.READY.labels("health-checker").set(1)
            if not self._acquire(plog):
                return
            try:
                self._lead(plog)
            except (LeaseLostError, BusError) as exc:
                log.error("stepping down", name=self.name, error=str(exc))
                if isinstance(exc, ProducerBusyError):
                    # A producer's name is still held at the broker (one of ours orphaned by a broker
                    # restart, or a hung predecessor's): the next lead frees the inputs first as well.
                    self._fenced = True
                    self._stop.wait(0.5)
            finally:
                self._step_down(plog)

    def _acquire(self, plog: PulsarLog) -> bool:
        """Wait for the lease; take it by fencing when the leader has been silent ``leader_timeout_s``
        (counted from now when no beat was heard yet). False if stopped first."""
        heard = [time.monotonic()]
        beats: Any = None
        try:
            while not self._stop.is_set():
                try:
                    if beats is None:
                        beats = self.bus.tail(topics.LEADER, LeaderBeat,
                                              lambda d: heard.__setitem__(0, time.monotonic()))  # fmt: skip
                    silent = time.monotonic() - heard[0]
                    # Only once the leader's beats pause: each refused attempt costs the client ~6 KB that
                    # it never gives back (measured: 4,000 refusals, +23 MB), and a standby polling ten
                    # times a second through a desk's day grew by 50 MB. A killed leader's beats stop at
                    # once, so this adds at most a beat and a half to a takeover.
                    if silent > 1.5 * self.config.leader_beat_s and plog.try_acquire():
                        return True
                    if silent > self.config.leader_timeout_s:
                        log.warning("the leader is silent: taking the lease by fencing it out",
                                    name=self.name, silent_s=round(silent, 2))  # fmt: skip
                        if plog.try_acquire(fence=True):
                            FENCED_TAKEOVERS.inc()
                            self._fenced = True
                            return True
                except BusError:
                    heard[0] = time.monotonic()  # the broker is away, not the leader: judge it once back
                self._stop.wait(0.1)
            return False
        finally:
            if beats is not None:
                beats.close()

    def _lead(self, plog: PulsarLog) -> None:
        t0 = time.perf_counter()
        if self._fenced and self.admin_url:
            # The hung leader's open connection still holds the inputs' exclusive subscriptions: resetting
            # each to where it stands disconnects it (live clients reconnect at once; it cannot). Its outbox
            # producers are fenced out below, as its saga log producer was.
            for topic in INPUTS:
                free_subscription(self.admin_url, topic, SUBSCRIPTION)
        self._fenced = False
        # Exclusive and fencing: a same-named producer of a hung leader would otherwise hold each output
        # until the broker's liveness check of its connection.
        outbox = PulsarOutbox(self.bus, fence=True)
        self._outbox = outbox
        orch: Orchestrator[ParentSaga] = Orchestrator(plog, outbox, ParentSaga)
        try:
            self._news = self.bus.producer(topics.LIVE_REPORTS)
            orch.on_decided = self._tell_new
        except BusError as exc:  # a broker whose grants predate the twin: News after their commit, as before
            log.warning("News after their commit only: cannot write the reports' twin", error=str(exc))
        coord = Coordinator(orch, self.config)
        snapshots = self._snapshots = PulsarSnapshots(self.bus)
        with self._lock:
            self.recovered = coord.recover(snapshots)
            self.coordinator = coord
        for topic in INPUTS:
            self._inputs[topic] = self._subscribe(topic)
        # New orders' requests from their twin as well: a new order starts one storage write sooner. The
        # record's copy, or the twin's when it comes second, finds the parent known and is passed over
        # (``Coordinator._request``).
        try:
            self._requests_live = self.bus.tail(topics.LIVE_JOB_REQUESTS, JobRequest, self._queue_unacked)
        except BusError as exc:  # a broker whose grants predate the twin: the record alone, as before it
            log.warning("new orders from the record only: cannot read the requests' twin", error=str(exc))
        # Heartbeats only matter now: a non-durable reader from the present, so no backlog of old ones
        # (from while no health-checker ran) delays the fresh ones and makes live workers look silent.
        self._heartbeats = self.bus.tail(topics.HEARTBEATS, WorkerHeartbeat, self._queue_unacked)
        took = time.perf_counter() - t0
        TAKEOVER.observe(took)
        LEADER.set(1)
        self.leader_since = time.monotonic()
        self.is_leader.set()
        log.info("leading", name=self.name, replayed=self.recovered[0], resent=self.recovered[1],
                 took_ms=round(took * 1000, 1))  # fmt: skip
        self._beats = self.bus.producer(topics.LEADER, name=None)
        watchdog = self._watchdog = _Watchdog(self.config.leader_timeout_s)
        beat, next_beat = 0, 0.0
        while not self._stop.is_set():
            if (frozen := watchdog.frozen()) is not None:
                # The whole process stood still longer than a standby waits (SIGSTOP, a VM pause): it may
                # have fenced us out. Step down and queue for the lease again (granted at once if nobody
                # took it) rather than act on it. A loop that waits on the broker or computes long is not
                # frozen: the watchdog thread runs on meanwhile.
                raise LeaseLostError(f"this leader was frozen {frozen:.1f} s: it may have been fenced out")
            with self._lock:
                orch.check()
                with orch.group():  # timers due together (a close) commit in one append
                    coord.poll()
                coord.checkpoint(snapshots)
                wanted = coord.symbols()
            self._follow_markets(coord, wanted)
            if time.monotonic() >= next_beat:  # from this loop: a leader that stops deciding stops beating
                beat += 1
                next_beat = time.monotonic() + self.config.leader_beat_s
                ms = round(self.config.leader_beat_s * 1000)
                self._beats.send_async(LeaderBeat(name=self.name, seq=beat, interval_ms=ms, ts_init=now_ns()))
            self._stop.wait(self.poll_s)

    def _tell_new(self, ev: SagaEvent) -> None:
        """Each new order's New as the saga emits it, before its transaction ends and before the commit, on
        the reports' twin, for an endpoint that waits for it (``new_on_store = false``). The endpoint that
        wrote the order's request tells its client once that request is stored: a leader that follows a
        crash here, or a handler that raises after the emit, leaves the stored request to be decided again,
        to the same New (``models.new_report``: its id is its parent's), or, if the order's window closed
        meanwhile, to a refusal, which the desk tells as a cancel. Refusals are never told early: decided
        again, the order could be accepted, and trade for a client told Rejected."""
        out = self._news
        if out is None:
            return
        for r in client_reports(ev, ExecType.NEW):
            out.send_async(r, key=r.client_id)

    def _queue_unacked(self, d: Delivery[Any]) -> None:
        """Queue an input from a non-durable reader (a heartbeat, a new order's twin copy): nothing to ack."""
        self._inbox.put((None, d, time.perf_counter()))

    def _subscribe(self, topic: str) -> Consumer[Any]:
        """Subscribe, retrying for a few seconds while an unloaded topic comes back."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                return self.bus.subscribe(
                    topic, SUBSCRIPTION, Message, auto_ack=False,
                    handler=lambda d: self._inbox.put((topic, d, time.perf_counter())),
                )  # fmt: skip
            except BusError:
                if time.monotonic() > deadline or self._stop.is_set():
                    raise
                time.sleep(0.1)

    def _step_down(self, plog: PulsarLog) -> None:
        self.is_leader.clear()
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        LEADER.set(0)
        for c in self._inputs.values():
            c.close()  # what was not acknowledged goes to the next leader
        self._inputs.clear()
        for reader in (self._heartbeats, self._requests_live):
            if reader is not None:
                reader.close()
        self._heartbeats = self._requests_live = None
        with contextlib.suppress(queue.Empty):
            while True:
                self._inbox.get_nowait()
        for r in self._tails.values():
            r.close()
        self._tails.clear()
        if hasattr(self, "_outbox"):
            self._outbox.close()
        if hasattr(self, "_snapshots"):
            self._snapshots.close()
        for prod in (self._beats, self._news):
            if prod is not None:
                prod.close()
        self._beats = self._news = None
        plog.release()
        with self._lock:
            self.coordinator = None

    # --- inputs (the decision thread) ----------------------------------------------------------------------
    def _decide_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._decide(first)
            except Exception:  # this thread must outlive any one group: the lead loop judges the lease
                log.exception("deciding a group of inputs failed")

    def _decide(self, first: _Queued) -> None:
        """Decide ``first`` and whatever queued behind it, in turn, for up to ``GROUP_BUDGET_S`` (or
        ``GROUP_MAX`` inputs), and commit them all in one append; then acknowledge them. An input whose
        handler fails is negatively acknowledged (redelivered) and the others go on. If the commit fails,
        none is acknowledged: the orchestrator is broken, the lead loop steps down, and the inputs go to the
        next leader."""
        group, decided = [first], []
        with self._lock:
            coord = self.coordinator
            if coord is None:  # not leading: the leader will get it
                self._settle(group, ok=False)
                return
            t0 = time.perf_counter()
            try:
                with coord.orch.group():
                    item: _Queued | None = first
                    while item is not None:
                        try:
                            msg = item[1].message
                            if isinstance(msg, JobRequest):
                                _count_copy(item[0], coord.orch.known(msg.parent.parent_id))
                            with bind_order(msg):
                                coord.handle(msg)
                        except LeaseLostError:
                            raise
                        except Exception:
                            metrics.BUS_HANDLER_ERRORS.labels(stream_of(item[1].topic)).inc()
                            log.exception("input failed; it will be redelivered", topic=item[1].topic)
                            self._settle([item], ok=False)
                        else:
                            decided.append(item)
                        item = None
                        if len(group) < GROUP_MAX and time.perf_counter() - t0 < GROUP_BUDGET_S:
                            with contextlib.suppress(queue.Empty):
                                item = self._inbox.get_nowait()
                                group.append(item)
            except (LeaseLostError, BusError) as exc:
                log.error("a group of inputs was not committed", inputs=len(group), error=str(exc))
                return
        now = time.perf_counter()
        GROUP.observe(len(group))
        for item in decided:
            DECISION.labels(getattr(item[1].message, "kind", "?")).observe(now - item[2])
        self._settle(decided, ok=True)

    def _settle(self, items: list[_Queued], *, ok: bool) -> None:
        for topic, d, _ in items:
            c = self._inputs.get(topic) if topic is not None else None
            if c is None:
                continue
            with contextlib.suppress(Exception):  # closed by a step-down meanwhile: it is redelivered
                c.ack(d) if ok else c.nack(d)

    def _follow_markets(self, coord: Coordinator, wanted: set[str]) -> None:
        """Follow the event-time clock of every symbol a live parent trades (payloads never decoded)."""
        for sym in wanted - self._tails.keys():
            self._tails[sym] = self.bus.tail_event_times(
                topics.ticks(sym), partial(coord.on_market_time, sym)
            )
        for sym in self._tails.keys() - wanted:
            self._tails.pop(sym).close()
