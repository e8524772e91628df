"""The Worker service: takes job assignments, runs the decision engine on live ticks, publishes child-order
actions on their symbol's actions topic, reads the acks and fills on its executions topic, and sends
heartbeats.

Threads: assignments are handled on a thread of their own (opening a symbol's tick reader, actions producer
and executions reader is a blocking call; they are closed with the symbol's last job); ticks and
executions arrive on the Pulsar client's single listener thread, so the engine sees one message at a time;
heartbeats have their own thread. A lock guards the engine between them. Reading the ticks' non-persistent
twins, a watch thread checks that a silent twin's record is silent too, and reads the record instead where
it is not (a receiver not publishing the twins).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from models import (
    RULE_POLICIES,
    JobAssignment,
    JobRef,
    Message,
    Tick,
    WorkerHeartbeat,
    now_ns,
    topics,
)
from runtime.bus import Bus, BusError, Delivery, Producer, SubscriptionKind
from runtime.logs import bind_order, get_logger
from runtime.metrics import LATENCY_BUCKETS
from worker.engine import Engine
from worker.policy_files import PolicyError, PolicyRegistry

log = get_logger("paceline.worker")

DECISIONS = Counter("paceline_worker_child_actions_total", "Child-order actions published", ["action"])
FALLBACKS = Counter(
    "paceline_worker_policy_fallbacks_total", "Unusable policy outputs replaced by TWAP", ["policy"]
)
JOBS = Gauge("paceline_worker_jobs", "Jobs this worker is working")
SYMBOLS = Gauge("paceline_worker_symbols", "Symbols whose ticks this worker reads (those of its jobs)")
REFUSED = Counter("paceline_worker_assignments_refused_total", "Assignments refused", ["reason"])
TWIN_FALLBACKS = Counter(
    "paceline_worker_live_twin_fallbacks_total",
    "Symbols whose non-persistent tick twin was silent while the record moved; read from the record since",
    ["symbol"],
)
DECISION_LATENCY = Histogram(
    "paceline_worker_tick_to_action_seconds",
    "Tick received until its actions are sent",
    buckets=LATENCY_BUCKETS,
)


_UNSEEN = "unseen"  # not a message id token (``Bus.id_token``), nor "" (an empty record)


@dataclass
class _Twin:
    """What the watch thread knows of a symbol's twin: when it last looked, and the record's last message
    then (``_UNSEEN``: no baseline, since the twin spoke or nothing was looked at yet)."""

    checked_ns: int
    record_at: str = _UNSEEN
    quiet: int = 0  # looks in a row that found the record as quiet as its twin: each doubles the wait, to 16x


@dataclass
class _Feed:
    """A symbol's ticks as this worker reads them: a non-durable reader (``Bus.tail``) on ``topic``."""

    topic: str
    reader: Any

    def close(self) -> None:
        self.reader.close()


@dataclass
class _SymbolIO:
    """A symbol's child orders out and their answers in, shared by this worker's jobs on it. The answers are
    read from now on (a non-durable reader): the venue answers only what this worker sends after it opened,
    and on a reconnect the client resumes after the last message read."""

    actions: Producer
    executions: Any
    sequence: int

    def close(self) -> None:
        self.executions.close()
        self.actions.close()


class WorkerService:
    def __init__(
        self,
        bus: Bus,
        worker_id: str,
        registry: PolicyRegistry | None,
        *,
        capacity: int = 1_000,
        decision_s: int = 30,
        heartbeat_s: float = 1.0,
        live_ticks: bool = False,
        twin_silence_s: float = 5.0,
    ) -> None:
        """``live_ticks``: read each symbol's non-persistent twin (``PACELINE_LIVE_TICKS``; the Receiver
        must publish it), not the persistent record. A twin that carries nothing for ``twin_silence_s``
        while its record moves is given up for the record (counted and logged as an error): a worker reads
        a topic nobody may be publishing, and it must not stop deciding for that."""
        self.bus = bus
        self._tick_topic = topics.live_ticks if live_ticks else topics.ticks
        self._live = live_ticks
        self._twin_silence_ns = int(twin_silence_s * 1e9)
        self._twins: dict[str, _Twin] = {}  # the symbols read from their twins, as the watch thread sees them
        self._heard: dict[str, int] = {}  # symbol -> when its last tick arrived (ns)
        self.worker_id = worker_id
        self.registry = registry
        self.capacity = capacity
        self.heartbeat_s = heartbeat_s
        self.incarnation = uuid.uuid4().hex[:12]
        self.engine = Engine(
            worker_id, registry, decision_s=decision_s, on_fallback=lambda p: FALLBACKS.labels(p).inc()
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticks: dict[str, _Feed] = {}
        # ``_ticks`` and ``_twins`` change on the assignment thread (a symbol followed, let go) and on the
        # twin watch's (a twin given up for its record); never held across a broker call.
        self._feeds = threading.Lock()
        self._io: dict[str, _SymbolIO] = {}  # by symbol: changed on the assignment thread, under ``_lock``
        self._threads: list[threading.Thread] = []
        self._hb_seq = 0

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._assignments = self.bus.subscribe(
            topics.ASSIGNMENTS, f"worker-{self.worker_id}", JobAssignment, kind=SubscriptionKind.EXCLUSIVE
        )
        self._heartbeats = self.bus.producer(
            topics.HEARTBEATS, name=f"hb-{self.worker_id}-{self.incarnation}"
        )
        if self.registry is not None and self.engine.default_rl in self.registry.names():
            with contextlib.suppress(PolicyError):  # warm: the first RL job then starts at once
                self.registry.load(self.engine.default_rl)
        loops = [self._assignment_loop, self._heartbeat_loop]
        for target in [*loops, self._twin_watch_loop] if self._live else loops:
            th = threading.Thread(target=target, name=f"{self.worker_id}-{target.__name__}", daemon=True)
            th.start()
            self._threads.append(th)
        log.info("worker started", worker_id=self.worker_id, incarnation=self.incarnation)

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=5)
        for c in self._ticks.values():
            c.close()
        for io in self._io.values():
            io.close()
        self._assignments.close()
        self._heartbeats.close()

    # --- assignments ----------------------------------------------------------------------------------
    def _assignment_loop(self) -> None:
        while not self._stop.is_set():
            d = self._assignments.receive(timeout_ms=200)
            if d is None:
                continue
            with bind_order(d.message):
                try:
                    self._on_assignment(d.message)
                except (PolicyError, BusError, ValueError) as exc:
                    REFUSED.labels(type(exc).__name__).inc()
                    log.error("assignment refused", error=str(exc))
            self._assignments.ack(d)

    def _on_assignment(self, a: JobAssignment) -> None:
        if a.worker_id != self.worker_id:
            return
        symbol = a.parent.symbol
        if not a.revoked:
            # Loading a policy file takes seconds on first use: outside the lock, or the heartbeat waits
            # behind it and the health-checker declares a busy worker lost (seen in the demo at start).
            self.engine.resolve_policy(a)
            self._open_symbol(symbol)  # before the job can decide: its first child has a way out
        with self._lock:
            refusal: str | None = None
            if not a.revoked and a.job_id not in self.engine.jobs and len(self.engine.jobs) >= self.capacity:
                refusal = "capacity"
                log.warning("at capacity; assignment ignored", job_id=a.job_id)
            elif not self.engine.assign(a):
                refusal = "stale"
            JOBS.set(len(self.engine.jobs))
        if refusal is not None:
            REFUSED.labels(refusal).inc()
            self._let_go(symbol)  # opened above for nothing, unless another job is on it
            return
        if a.revoked:
            log.info("job revoked", job_id=a.job_id, epoch=a.epoch)
            self._let_go(symbol)
            return
        if symbol not in self._ticks:
            feed = self._read_ticks(self._tick_topic(symbol))
            with self._feeds:
                self._ticks[symbol] = feed
                if self._live:
                    self._twins[symbol] = _Twin(checked_ns=now_ns())
                SYMBOLS.set(len(self._ticks))
        log.info("job assigned", job_id=a.job_id, epoch=a.epoch, symbol=symbol, quantity=a.quantity,
                 strategy=a.parent.strategy.value)  # fmt: skip

    def _read_ticks(self, topic: str) -> _Feed:
        # One reader per symbol, shared by every job on it; live ticks from now on. Non-durable: a durable
        # subscription kept its place while the worker was down, and a worker restarted under its id was
        # handed every tick since, decided on as if live; it also had the broker keep a backlog for it.
        return _Feed(topic, self.bus.tail(topic, Tick, self._on_tick))

    def _open_symbol(self, symbol: str) -> None:
        """The symbol's actions producer and executions reader, shared by this worker's jobs on it. The
        topics exist after their first day (one each per equity), so opening them costs the broker no
        topic's creation. The producer's sequence goes on from the broker's last one for its name (its
        de-duplication would drop a restarted count)."""
        if symbol in self._io:
            return
        actions = self.bus.producer(topics.job_actions(symbol), name=f"{self.worker_id}.{symbol}")
        # Keyed by job: other workers' answers on the symbol are passed over undecoded.
        jobs = self.engine.jobs
        executions = self.bus.tail(
            topics.job_executions(symbol), Message, self._on_execution, wanted_key=jobs.__contains__
        )
        with self._lock:
            self._io[symbol] = _SymbolIO(actions, executions, max(0, actions.last_sequence_id))

    def _let_go(self, symbol: str) -> None:
        """Stop reading ``symbol``'s ticks once none of this worker's jobs is on it: else a worker reads every
        symbol it ever had a job on, all day, each tick a wake-up and a decode for nothing."""
        with self._lock:
            if not self.engine.release(symbol):
                return
            io = self._io.pop(symbol, None)
        if io is not None:
            io.close()
        with self._feeds:
            feed = self._ticks.pop(symbol, None)
            self._twins.pop(symbol, None)
            SYMBOLS.set(len(self._ticks))
        self._heard.pop(symbol, None)
        if feed is not None:
            feed.close()
            log.info("symbol let go: no job on it", symbol=symbol)

    # --- the hot path ---------------------------------------------------------------------------------
    def _on_tick(self, d: Delivery[Tick]) -> None:
        t0 = now_ns()
        self._heard[d.message.symbol] = t0
        with self._lock:
            specs, payloads = self.engine.on_tick_wire(d.message, received_ns=t0)
            io = self._io.get(d.message.symbol)
            sent: dict[str, int] = {}  # counted once per action per tick, not per child
            for spec, payload in zip(specs, payloads, strict=True):
                if io is None:  # a job's first tick can only come after its symbol's IO is open
                    break
                io.sequence += 1
                io.actions.send_async(payload, key=spec[0].job_id, sequence_id=io.sequence)
                sent[spec[1].value] = sent.get(spec[1].value, 0) + 1
        for value, n in sent.items():
            DECISIONS.labels(value).inc(n)
        if specs:
            DECISION_LATENCY.observe((now_ns() - t0) / 1e9)

    def _on_execution(self, d: Delivery[Message]) -> None:
        msg = d.message
        with self._lock, bind_order(msg):
            self.engine.on_execution(msg)

    # --- the twins' watch ------------------------------------------------------------------------------
    def _twin_watch_loop(self) -> None:
        """Every ``twin_silence_s``: a twin that carried nothing since the last look has its record looked
        at (its last message); if the record has moved since the look before, the symbol is read from the
        record from now on. A live twin costs a dict read; a quiet market (record and twin silent alike)
        one read of the record's last message per period, the period doubled after each such look up to
        16 times (80 s by default), and back to one once the twin speaks."""
        while not self._stop.wait(self._twin_silence_ns / 1e9):
            for symbol, twin in list(self._twins.items()):
                try:
                    self._watch(symbol, twin)
                except BusError as exc:
                    log.warning("could not look at a tick record", symbol=symbol, error=str(exc))

    def _watch(self, symbol: str, twin: _Twin) -> None:
        now, heard = now_ns(), self._heard.get(symbol, 0)
        spoke = heard > twin.checked_ns
        if spoke:
            twin.checked_ns, twin.record_at, twin.quiet = now, _UNSEEN, 0
            return
        # A quiet market: fewer looks (hundreds of symbols before the open). 0.9: the loop's own jitter.
        if now - twin.checked_ns < (self._twin_silence_ns << min(twin.quiet, 4)) * 0.9:
            return
        twin.checked_ns = now
        last = self.bus.read_at(topics.ticks(symbol), Tick)
        at = "" if last is None else self.bus.id_token(last.message_id)
        if twin.record_at in (_UNSEEN, at):
            twin.quiet += twin.record_at == at
            twin.record_at = at  # a baseline, or the record is as quiet as its twin
            return
        with self._feeds:
            if self._twins.pop(symbol, None) is None:
                return  # let go meanwhile: no job on it any more
            twin_feed = self._ticks[symbol]
        TWIN_FALLBACKS.labels(symbol).inc()
        log.error(
            "no ticks on the non-persistent twin while the record moves: reading the record from now on "
            "(the receiver must run with PACELINE_LIVE_TICKS=non-persistent too)", symbol=symbol,
        )  # fmt: skip
        # The twin first, then the record: a tick is missed rather than seen twice (the twin is silent).
        twin_feed.close()
        record = self._read_ticks(topics.ticks(symbol))
        with self._feeds:
            if self._ticks.get(symbol) is twin_feed:
                self._ticks[symbol] = record
                return
        record.close()  # let go while it opened

    # --- heartbeats -----------------------------------------------------------------------------------
    def heartbeat(self) -> WorkerHeartbeat:
        with self._lock:
            jobs = tuple(JobRef(job_id=j, epoch=e, band=b) for j, e, b in self.engine.refs())
        policies = (*RULE_POLICIES, *(self.registry.names() if self.registry else ()))
        self._hb_seq += 1
        return WorkerHeartbeat(
            worker_id=self.worker_id, incarnation=self.incarnation, seq=self._hb_seq, capacity=self.capacity,
            policies=policies, jobs=jobs, ts_init=now_ns(),
        )  # fmt: skip

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._heartbeats.send_async(self.heartbeat(), key=self.worker_id)
            except BusError as exc:
                log.warning("heartbeat failed", error=str(exc))
            self._stop.wait(self.heartbeat_s)
