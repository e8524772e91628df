"""An in-memory desk for fast saga tests: the real Coordinator and parent saga, the real simulated venue, a
memory log and outbox (the outbox de-duplicates like the broker), and scripted workers. Messages move only
when ``pump`` is called, so a test controls every interleaving."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

from health_checker.coordinator import Config, Coordinator
from health_checker.parent_saga import ParentSaga
from market.venue import Venue
from models import (
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    ExecutionReport,
    Fill,
    JobAssignment,
    JobRequest,
    Message,
    OrdType,
    VenueCommand,
    VenueCommandAck,
    WorkerHeartbeat,
)
from saga import MemoryLog, MemoryOutbox, MemorySnapshots, Orchestrator, effect_message
from tests.factories import T0, parent, tick

S = 1_000_000_000


@dataclass
class SimJob:
    epoch: int
    quantity: int
    parent_id: str
    symbol: str
    side: object
    n: int = 0
    filled: int = 0
    revoked: bool = False
    grid: float | None = None  # where in the decision interval the assignment placed it


@dataclass
class SimWorker:
    worker_id: str
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    alive: bool = True  # sends heartbeats
    jobs: dict[str, SimJob] = field(default_factory=dict)
    child_ids: list[str] = field(default_factory=list)


class Desk:
    def __init__(self, workers: tuple[str, ...] = ("w1", "w2"), config: Config | None = None) -> None:
        self.now = T0
        self.market_now = T0
        self.config = config or Config(
            heartbeat_timeout_s=3, assign_wait_s=30, venue_retry_s=2, close_grace_s=5
        )
        self.log = MemoryLog()
        self.outbox = MemoryOutbox()  # outlives orchestrators, like the broker's topics
        self.snapshots = MemorySnapshots()
        self.from_snapshot = False  # a restarted coordinator starts from the latest snapshot
        self.venue = Venue()
        self.workers = {w: SimWorker(w) for w in workers}
        self.reports: list[ExecutionReport] = []
        self.to_hc: deque[Message] = deque()
        self.all_fills: list[Fill] = []
        self.delivered = 0
        self.cut_off = False  # True: nothing reaches the health-checker (a broker outage)
        self.coord = self._coordinator()
        self.market(0)

    def _coordinator(self) -> Coordinator:
        orch: Orchestrator[ParentSaga] = Orchestrator(self.log, self.outbox, ParentSaga)
        c = Coordinator(orch, self.config, wall=lambda: self.now)
        c.recover(self.snapshots if getattr(self, "from_snapshot", False) else None)
        for sym, ts in getattr(self, "_market", {}).items():
            c.on_market_time(sym, ts)
        return c

    def restart_orchestrator(self) -> None:
        """A new coordinator rebuilt from the log (inputs not yet handled are redelivered to it)."""
        self.coord = self._coordinator()
        self.heartbeats()

    # --- the outside world -----------------------------------------------------------------------------
    def market(self, dt_s: float, symbol: str = "AAPL") -> None:
        self.market_now += round(dt_s * S)
        self._market = {symbol: self.market_now}
        self.to_hc.extend(self.venue.on_tick(self._tick(symbol)))
        self.coord.on_market_time(symbol, self.market_now)

    def _tick(self, symbol: str) -> object:
        return tick(
            symbol=symbol, ts_event=self.market_now, ts_init=self.market_now, bid_sz=5_000, ask_sz=5_000
        )

    def submit(self, pid: str = "P-1", qty: int = 1_000, **kw: object) -> str:
        p = parent(
            parent_id=pid, quantity=qty, start_ns=self.market_now, end_ns=self.market_now + 600 * S, **kw
        )
        self.coord.handle(JobRequest(job_id=f"J{pid}", parent=p, ts_init=self.now))
        self.pump()
        return f"J{pid}"

    def heartbeats(self) -> None:
        for w in self.workers.values():
            if w.alive:
                self.coord.handle(WorkerHeartbeat(
                    worker_id=w.worker_id, incarnation=w.incarnation, seq=1, capacity=10,
                    policies=("twap", "vwap", "pov", "is"), ts_init=self.now,
                ))  # fmt: skip

    def advance(self, seconds: float) -> None:
        """Wall time passes (market time with it); live workers heartbeat; the coordinator polls."""
        self.now += round(seconds * S)
        if not self.cut_off:
            self.market(seconds)
            self.heartbeats()
        self.coord.poll()
        self.pump()

    # --- workers ---------------------------------------------------------------------------------------
    def trade(self, worker_id: str, qty: int, *, limit: bool = False, zombie: bool = False) -> list[Message]:
        """The worker sends a child order for each of its jobs (as its own view of the job allows).
        A ``zombie`` never received its revocation and trades on."""
        w = self.workers[worker_id]
        out: list[Message] = []
        for job_id, j in w.jobs.items():
            if j.revoked and not zombie:
                continue
            q = min(qty, j.quantity - j.filled)
            if q <= 0:
                continue
            child_id = f"{job_id}.{j.epoch}.{j.n}"
            j.n += 1
            w.child_ids.append(child_id)
            a = ChildOrderAction(
                action=ChildAction.NEW, child_id=child_id, job_id=job_id, parent_id=j.parent_id,
                worker_id=worker_id, epoch=j.epoch, symbol=j.symbol, side=j.side, quantity=q,  # type: ignore[arg-type]
                ord_type=OrdType.LIMIT if limit else OrdType.MARKET, limit_px=99.0 if limit else None,
                ts_event=self.market_now, ts_init=self.market_now,
            )  # fmt: skip
            out += self._to_venue(a)
        self.pump()
        return out

    def resend(self, a: ChildOrderAction) -> list[Message]:
        out = self._to_venue(a)
        self.pump()
        return out

    def _to_venue(self, a: ChildOrderAction) -> list[Message]:
        out = self.venue.action(a)
        for m in out:
            self._worker_sees(m)
            if isinstance(m, Fill):
                self.to_hc.append(m)
        return out

    def _worker_sees(self, m: Message) -> None:
        if isinstance(m, Fill):
            self.all_fills.append(m)
            for w in self.workers.values():
                j = w.jobs.get(m.job_id)
                if j is not None and m.child_id.startswith(f"{m.job_id}.{j.epoch}."):
                    j.filled += m.qty

    # --- delivery --------------------------------------------------------------------------------------
    def pump(self, limit: int = 10_000) -> None:
        """Deliver published effects and venue output until nothing moves."""
        for _ in range(limit):
            if self.delivered < len(self.outbox.sent):
                _, e = self.outbox.sent[self.delivered]
                self.delivered += 1
                self._deliver(effect_message(e))
            elif self.to_hc:
                self.coord.handle(self.to_hc.popleft())
            else:
                return
        raise AssertionError("the desk did not settle")

    def _deliver(self, m: Message) -> None:
        if isinstance(m, VenueCommand):
            for out in self.venue.command(m):
                if isinstance(out, ChildOrderAck):
                    self._worker_sees(out)
                else:
                    self.to_hc.append(out)
        elif isinstance(m, JobAssignment):
            w = self.workers.get(m.worker_id)
            if w is None:
                return
            cur = w.jobs.get(m.job_id)
            if cur is not None and m.epoch <= cur.epoch and not m.revoked:
                return
            if m.revoked:
                if cur is not None and m.epoch > cur.epoch:
                    cur.revoked = True
                return
            w.jobs[m.job_id] = SimJob(
                m.epoch, m.quantity, m.parent.parent_id, m.parent.symbol, m.parent.side, grid=m.grid
            )
        elif isinstance(m, ExecutionReport):
            self.reports.append(m)
        elif isinstance(m, VenueCommandAck):
            self.to_hc.append(m)

    def saga(self, pid: str = "P-1") -> ParentSaga:
        return self.coord.orch.sagas[pid]


def check_reports(reports: list[ExecutionReport], order_qty: dict[str, int]) -> None:
    """The client's view is consistent: ids unique, CumQty never decreases, nothing after a terminal one."""
    ids = [r.report_id for r in reports]
    assert len(ids) == len(set(ids)), "a report was published twice"
    by_parent: dict[str, list[ExecutionReport]] = {}
    for r in reports:
        by_parent.setdefault(r.parent_id, []).append(r)
    for pid, rs in by_parent.items():
        cum = 0
        for i, r in enumerate(rs):
            assert r.cum_qty >= cum, f"{pid}: CumQty went down"
            assert r.cum_qty <= order_qty[pid]
            cum = r.cum_qty
            if r.ord_status.terminal:
                assert i == len(rs) - 1, f"{pid}: a report after the terminal {r.ord_status}"
