"""The health-checker's decisions, without I/O: validates job requests, tracks the pool, detects lost
workers, fires timers and drives each parent's saga through the orchestrator.

The service calls ``handle`` for every input message and ``poll`` every few tens of milliseconds, from
one thread at a time. Wall-clock time comes from ``wall`` (liveness, retries, waiting bounds); trading
windows run on each symbol's market clock, fed by ``on_market_time`` from the ticks' event times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge, Histogram

from health_checker.parent_saga import FINAL, WORKER_LOST, ParentSaga, Phase, Placing, Timing, policy_of
from health_checker.pool import Pool
from health_checker.saga_events import Assigned, WorkerLost
from models import (
    START_TOLERANCE_S,
    AmendRequest,
    CancelRequest,
    Fill,
    JobRequest,
    Message,
    OrdStatus,
    RequestKind,
    RequestReject,
    SagaEvent,
    VenueCommandAck,
    WorkerHeartbeat,
    now_ns,
    topics,
    window_refusal,
)
from models.grid import GRID_SPAN, widest_gap_point
from runtime.logs import get_logger
from saga import WALL, CompensationStarted, Orchestrator, SagaCompleted, SnapshotStore, effect

log = get_logger("paceline.health_checker")

JOBS = Counter("paceline_hc_jobs_total", "Job requests by outcome", ["outcome"])
REJECTED = Counter("paceline_hc_jobs_rejected_total", "Job requests refused, by reason", ["reason"])
WORKERS = Gauge("paceline_hc_workers", "Live workers in the pool")
# The oldest heartbeat among live workers: near the heartbeat interval when healthy, climbing to the timeout
# just before a worker is declared lost.
HEARTBEAT_AGE = Gauge("paceline_hc_heartbeat_age_max_seconds", "Age of the stalest live worker's heartbeat")
LOST = Counter("paceline_hc_workers_lost_total", "Workers declared lost", ["cause"])
DETECTION = Histogram(
    "paceline_hc_detection_seconds", "Worker silence when declared lost",
    buckets=(0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 20, 60),
)  # fmt: skip
RECOVERY = Histogram(
    "paceline_hc_recovery_seconds", "Worker declared lost until its job is reassigned",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
TRANSITIONS = Counter("paceline_saga_transitions_total", "Saga events appended", ["name"])
COMPENSATIONS = Counter("paceline_saga_compensations_total", "Compensations started", ["name"])
DUPLICATE_FILLS = Counter("paceline_hc_duplicate_fills_total", "Fills seen again and not counted")
UNSUPPORTED = Counter("paceline_hc_unsupported_total", "Input messages of a kind not handled", ["kind"])
SNAPSHOT = Histogram(
    "paceline_hc_snapshot_seconds", "Taking a snapshot of the saga state (outbox receipts, dump, write)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)  # fmt: skip
SNAPSHOT_SAGAS = Gauge("paceline_hc_snapshot_sagas", "Sagas in the last snapshot, by state", ["state"])


@dataclass(frozen=True)
class Config:
    heartbeat_timeout_s: float = 3.0
    assign_wait_s: float = 30.0
    venue_retry_s: float = 2.0
    close_grace_s: float = 5.0  # market time after a window's end before what rests is cancelled
    stale_grace_s: float = 120.0  # wall time after a window's span before a stopped market ends it
    leader_beat_s: float = 0.5  # the leader's beat from its decision loop
    leader_timeout_s: float = 2.0  # a standby that hears no beat this long fences the leader out
    # How far in the past a window may start. An endpoint refuses by the default (it tells a New without
    # waiting for the saga): set it lower and the saga refuses some orders told New, which their client is
    # told as cancels.
    start_tolerance_s: float = START_TOLERANCE_S
    snapshot_every: int = 5_000  # log events between snapshots: the most a takeover replays
    # How long an ended saga's record answers late inputs: far past any redelivery (inputs are acknowledged
    # once decided; a takeover's redeliveries arrive in seconds). The endpoint answers its clients about
    # closed orders itself.
    ended_keep_s: float = 600.0
    symbols: frozenset[str] | None = None  # the tradable universe (None: any)

    @property
    def timing(self) -> Timing:
        s = 1_000_000_000
        return Timing(
            round(self.assign_wait_s * s),
            round(self.venue_retry_s * s),
            round(self.close_grace_s * s),
            round(self.stale_grace_s * s),
        )


class Coordinator:
    def __init__(
        self, orch: Orchestrator[ParentSaga], config: Config | None = None, wall: Callable[[], int] = now_ns
    ) -> None:
        self.orch = orch
        self.config = config or Config()
        self.t = self.config.timing
        self.wall = wall
        self.pool = Pool()
        self.market: dict[str, int] = {}
        self.lost_at: dict[str, int] = {}  # saga id -> wall time its worker was declared lost
        # When anything (a heartbeat, a tick) last arrived. Silence from *everything* at once says more
        # about our own link (a broker restart) than about the workers: while it lasts, nobody is judged.
        self.heard_ns: int | None = None
        self.deaf = False
        self._deaf_from = 0
        # Each live saga that holds a worker, and so each worker's load: a decision that picks a worker reads
        # it, rather than every saga, as each transaction leaves it (``_track``).
        self._holds: dict[str, str] = {}
        self._load: dict[str, int] = {}
        # The grids of the live sagas (``models.grid``, in parts of GRID_SPAN), sorted: a new job's grid goes
        # in the widest gap between them, across all workers.
        self._grids: dict[str, int] = {}
        self._grid_points: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._placing = Placing(self._pick, self._grid)
        orch.on_commit = self._committed
        orch.on_changed = self._track

    # --- recovery -------------------------------------------------------------------------------------
    def recover(self, snapshots: SnapshotStore | None = None) -> tuple[int, int]:
        replayed, resent = self.orch.recover(snapshots)
        now = self.wall()
        self._holds.clear()
        self._load.clear()
        self._grids.clear()
        self._grid_points = np.empty(0, dtype=np.int64)
        for s in self.orch.live():
            self._track(s)
            if s.worker_id is not None:
                self.pool.expect(s.worker_id, now)
        log.info("saga log replayed", events=replayed, effects_resent=resent, live=len(self.orch.live()),
                 from_snapshot=self.orch.snapshot_position, ended=len(self.orch.ended))  # fmt: skip
        return replayed, resent

    def checkpoint(self, snapshots: SnapshotStore) -> bool:
        """Every ``snapshot_every`` events: ended sagas leave memory, and the state is snapshotted."""
        if self.orch.position - self.orch.snapshot_position < self.config.snapshot_every:
            return False
        pruned = self.orch.prune(round(self.config.ended_keep_s * 1e9), self.wall())
        t0 = time.perf_counter()
        snap = self.orch.snapshot(snapshots)
        if snap is None:
            return False
        SNAPSHOT.observe(time.perf_counter() - t0)
        SNAPSHOT_SAGAS.labels("live").set(len(snap.sagas))
        SNAPSHOT_SAGAS.labels("ended").set(len(snap.ended))
        log.info("saga state snapshotted", position=snap.position, live=len(snap.sagas), pruned=pruned,
                 ended=len(snap.ended), took_ms=round((time.perf_counter() - t0) * 1000, 1))  # fmt: skip
        return True

    def symbols(self) -> set[str]:
        """Symbols whose market clock a live saga waits on."""
        return {s.parent.symbol for s in self.orch.live() if s.parent is not None}

    def on_market_time(self, symbol: str, ts_ns: int) -> None:
        if ts_ns > self.market.get(symbol, 0):
            self.market[symbol] = ts_ns
        self.heard_ns = self.wall()

    # --- inputs ---------------------------------------------------------------------------------------
    def handle(self, msg: Message) -> None:
        if isinstance(msg, Fill):
            self._fill(msg)
        elif isinstance(msg, VenueCommandAck):
            self._venue_ack(msg)
        elif isinstance(msg, WorkerHeartbeat):
            self._heartbeat(msg)
        elif isinstance(msg, JobRequest):
            self._request(msg)
        elif isinstance(msg, CancelRequest):
            self._cancel(msg)
        elif isinstance(msg, AmendRequest):
            self._amend(msg)
        else:
            UNSUPPORTED.labels(getattr(msg, "kind", type(msg).__name__)).inc()

    def _refusal(self, req: JobRequest) -> str | None:
        p = req.parent
        if self.config.symbols is not None and p.symbol not in self.config.symbols:
            return f"unknown symbol {p.symbol}"
        # The symbol's market clock if we follow it, else the client's: its ts_init is stamped on the
        # market clock the endpoint sees (a replay's clock is not the wall clock).
        return window_refusal(p, self.market.get(p.symbol, p.ts_init), self.config.start_tolerance_s)

    def _request(self, req: JobRequest) -> None:
        received_ns = now_ns()  # the real wall clock, for the acknowledgement's trace only
        pid = req.parent.parent_id
        if self.orch.known(pid):
            return  # a redelivered request: the saga exists (or ended)
        refusal = self._refusal(req)
        with self.orch.transaction(pid, create=True) as ctx:
            assert ctx is not None
            ctx.saga.start(
                ctx, req, refusal, self._placing, now=self.wall(), t=self.t, received_ns=received_ns
            )
        if refusal is None:
            JOBS.labels("accepted").inc()
            log.info("job accepted", parent_id=pid, job_id=req.job_id, symbol=req.parent.symbol,
                     quantity=req.parent.quantity, worker_id=self.orch.sagas[pid].worker_id)  # fmt: skip
        else:
            JOBS.labels("rejected").inc()
            REJECTED.labels(refusal.split(" ", 1)[0] if refusal.startswith("unknown") else refusal[:24]).inc()
            log.warning("job rejected", parent_id=pid, job_id=req.job_id, reason=refusal)

    def _live_saga_of(self, parent_id: str, client_id: str) -> ParentSaga | None:
        saga = self.orch.sagas.get(parent_id)
        if saga is None or saga.parent is None or saga.parent.client_id != client_id:
            return None
        return saga

    def _closed(self, parent_id: str, client_id: str) -> tuple[str, OrdStatus] | None:
        """A closed parent of this client's: its ClOrdID and final status (from memory or its record)."""
        saga = self._live_saga_of(parent_id, client_id)
        if saga is not None and saga.parent is not None:
            return saga.parent.cl_ord_id, saga.final_status
        e = self.orch.ended.get(parent_id)
        if e is not None and e.facts.get("client_id") == client_id and "ord_status" in e.facts:
            return e.facts["cl_ord_id"], OrdStatus(e.facts["ord_status"])
        return None

    def _refuse_closed(self, req: CancelRequest | AmendRequest, kind: RequestKind) -> None:
        """A request for a closed or unknown parent: answered by a one-event saga of its own (logged)."""
        closed = self._closed(req.parent_id, req.client_id)
        rej = RequestReject(
            parent_id=req.parent_id, client_id=req.client_id, cl_ord_id=req.cl_ord_id or req.request_id,
            orig_cl_ord_id=closed[0] if closed else "NONE", request=kind,
            ord_status=closed[1] if closed else OrdStatus.REJECTED,
            reason="the order is closed" if closed else "unknown order", too_late=closed is not None,
            ts_init=self.wall(),
        )  # fmt: skip
        log.warning("request refused", parent_id=req.parent_id, request=kind.value, reason=rej.reason)
        with self.orch.transaction(f"{req.parent_id}.req.{req.request_id}", create=True) as ctx:
            if ctx is not None and ctx.saga.seq == 0:  # a redelivered request is answered once
                ctx.complete("request_rejected", (effect(topics.REPORTS, rej, key=req.client_id),))

    def _cancel(self, req: CancelRequest) -> None:
        saga = self._live_saga_of(req.parent_id, req.client_id)
        if saga is None or saga.terminal:
            self._refuse_closed(req, RequestKind.CANCEL)
            return
        with self.orch.transaction(req.parent_id) as ctx:
            assert ctx is not None
            saga.on_cancel(ctx, req, self.wall(), self.t)

    def _amend(self, req: AmendRequest) -> None:
        saga = self._live_saga_of(req.parent_id, req.client_id)
        if saga is None or saga.terminal:
            self._refuse_closed(req, RequestKind.AMEND)
            return
        with self.orch.transaction(req.parent_id) as ctx:
            assert ctx is not None
            saga.on_amend(ctx, req, self.wall(), self.t)

    def _fill(self, f: Fill) -> None:
        with self.orch.transaction(f.parent_id) as ctx:
            if ctx is None:
                if f.parent_id in self.orch.ended:  # redelivered after its parent ended and left memory
                    DUPLICATE_FILLS.inc()
                else:
                    log.error("fill for an unknown parent", parent_id=f.parent_id, fill_id=f.fill_id)
                return
            if not ctx.saga.on_fill(ctx, f, self.wall(), self.t):
                DUPLICATE_FILLS.inc()

    def _venue_ack(self, ack: VenueCommandAck) -> None:
        with self.orch.transaction(ack.parent_id) as ctx:
            if ctx is None:
                return
            ctx.saga.on_venue_ack(ctx, ack, self._placing, self.wall(), self.t)

    def _heartbeat(self, hb: WorkerHeartbeat) -> None:
        now = self.wall()
        if now - hb.ts_init > self.config.heartbeat_timeout_s * 1e9:
            return  # stale (a backlog replayed after a takeover): says nothing about now
        self.heard_ns = now
        if self.pool.heartbeat(hb):
            LOST.labels("restarted").inc()
            log.warning(
                "worker restarted; its jobs are lost", worker_id=hb.worker_id, incarnation=hb.incarnation
            )
            self._worker_lost(hb.worker_id, 0)
        WORKERS.set(len(self.pool.workers))

    # --- time -----------------------------------------------------------------------------------------
    def _clock(self, name: str) -> int | None:
        if name == WALL:
            return self.wall()
        return self.market.get(name.removeprefix("market:"))

    def _hearing(self, now: int, timeout_ns: int) -> bool:
        """False while nothing at all has arrived for a timeout. On hearing again every worker is given as
        long as the silence lasted (up to a minute) plus a timeout to be heard: clients reconnect with a
        back-off that grows with the outage, so heartbeats come back later than the first input."""
        if self.heard_ns is not None and now - self.heard_ns > timeout_ns:
            if not self.deaf:
                log.warning("nothing heard from workers or markets; judging no worker until inputs resume",
                            silent_ms=(now - self.heard_ns) // 1_000_000)  # fmt: skip
                self._deaf_from = self.heard_ns
            self.deaf = True
            return False
        if self.deaf:
            self.deaf = False
            extra = min(now - self._deaf_from, 60 * 1_000_000_000)
            self.pool.grace(now + extra)
            log.info(
                "inputs resumed; workers get the outage's length to be heard", grace_ms=extra // 1_000_000
            )
        return True

    def poll(self) -> None:
        now = self.wall()
        timeout_ns = round(self.config.heartbeat_timeout_s * 1e9)
        hearing = self._hearing(now, timeout_ns)
        for worker_id, silent_ns in self.pool.expired(now, timeout_ns) if hearing else ():
            LOST.labels("silent").inc()
            DETECTION.observe(silent_ns / 1e9)
            log.warning("worker silent; declared lost", worker_id=worker_id, silent_ms=silent_ns // 1_000_000)
            self._worker_lost(worker_id, silent_ns)
        WORKERS.set(len(self.pool.workers))
        HEARTBEAT_AGE.set(
            max(((now - w.last_seen_ns) / 1e9 for w in self.pool.workers.values()), default=0.0)
        )
        for saga, timer in self.orch.due(self._clock):
            with self.orch.transaction(saga.saga_id) as ctx:
                assert ctx is not None
                saga.on_timer(ctx, timer, self.wall(), self.t)
        waiting = (
            [s for s in self.orch.live() if s.phase == Phase.WAITING and s.parent]
            if self.pool.workers
            else []
        )
        full: set[str] = set()  # policies no worker could take this poll: a worker's load only grows in it
        for saga in waiting:
            # Only when a worker could take it: a transaction per waiting job per poll would hold up inputs.
            policy = policy_of(saga.parent) if saga.parent else None
            if policy is None or policy in full:
                continue
            if self._pick(policy) is None:
                full.add(policy)
                continue
            with self.orch.transaction(saga.saga_id) as ctx:
                assert ctx is not None
                saga.try_assign(ctx, self._placing, self.wall(), self.t)

    def _worker_lost(self, worker_id: str, silent_ns: int) -> None:
        for saga in self.orch.live():
            if saga.worker_id != worker_id or saga.phase != Phase.WORKING:
                continue
            with self.orch.transaction(saga.saga_id) as ctx:
                assert ctx is not None
                ctx.emit(WorkerLost(worker_id=worker_id, silent_ms=silent_ns // 1_000_000))
                self.lost_at[saga.saga_id] = self.wall()
                saga.unwind(ctx, WORKER_LOST, self.wall(), self.t)

    @property
    def load(self) -> dict[str, int]:
        """Live sagas per worker that holds any."""
        return dict(self._load)

    @property
    def grids(self) -> dict[str, float]:
        """The grid of each live saga placed on one (``JobAssignment.grid``)."""
        return {k: v / GRID_SPAN for k, v in self._grids.items()}

    def _pick(self, policy: str) -> str | None:
        return self.pool.pick(policy, self._load)

    def _grid(self, job_id: str) -> float:
        return widest_gap_point(self._grid_points, GRID_SPAN, job_id) / GRID_SPAN

    def _track(self, saga: ParentSaga) -> None:
        """Count ``saga`` against the worker it holds now, if it is live (and no longer against another),
        and keep its grid among the grids in use while it is live (held while a lost worker's job waits
        for another, so that no new job takes its place meanwhile)."""
        sid, live = saga.saga_id, not saga.terminal
        worker = saga.worker_id if live else None
        held = self._holds.get(sid)
        if held != worker:
            if held is not None:
                del self._holds[sid]
                if (n := self._load[held] - 1) > 0:
                    self._load[held] = n
                else:
                    del self._load[held]
            if worker is not None:
                self._holds[sid] = worker
                self._load[worker] = self._load.get(worker, 0) + 1
        at = int(saga.grid * GRID_SPAN) if live and saga.grid is not None else None
        kept = self._grids.get(sid)
        if at != kept:
            if kept is not None:
                del self._grids[sid]
                self._grid_points = np.delete(self._grid_points, np.searchsorted(self._grid_points, kept))
            if at is not None:
                self._grids[sid] = at
                self._grid_points = np.insert(self._grid_points, np.searchsorted(self._grid_points, at), at)

    def _committed(self, events: list[SagaEvent]) -> None:
        for entry in events:
            TRANSITIONS.labels(entry.name).inc()
            match ParentSaga.decode(entry):
                case CompensationStarted(name=name):
                    COMPENSATIONS.labels(name).inc()
                case Assigned() if entry.saga_id in self.lost_at:
                    RECOVERY.observe((self.wall() - self.lost_at.pop(entry.saga_id)) / 1e9)
                case SagaCompleted(status=status):
                    self.lost_at.pop(entry.saga_id, None)
                    log.info("parent closed", parent_id=entry.saga_id, status=status)


__all__ = ["FINAL", "Config", "Coordinator"]
