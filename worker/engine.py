"""The worker's decision engine: per-job state, decisions on event time, child-order actions. No I/O.

- Jobs on the same symbol share its ticks; each job decides every ``decision_s`` seconds of *event* time
  (the ticks' clock, never the wall clock), so a replay at 100x behaves exactly like live.
- A tick costs O(1) in the number of jobs on its symbol: the market's part of the observations is kept
  once per symbol (``worker.features.Tape``), and jobs wait in a heap by their next decision time, so only
  the jobs due are touched. Jobs due at the same tick are decided together: one forward pass per policy
  file for all of them, and from ``COLUMNAR_FROM`` of them from the jobs' numbers held as columns
  (``_Columns``): their observations, action sizes, next decision times and, for a job with at most one
  open child and no limit, its child orders, equal bit for bit to the per-job path.
- Jobs that start together do not decide together all day. A job decides at its start (a client's order
  starts working at once), then on the grid its assignment gives (``JobAssignment.grid``: the
  health-checker places every live job among all workers' jobs, ``models.grid``). Without one, a job whose
  grid would fall within a second of another of the engine's jobs' (parents sent for one start time, jobs
  re-taken on one tick) moves to a grid in the widest gap between theirs (``Engine._own_grid``). Twenty
  child orders at one instant queue behind each other through the whole pipeline (docs/PERFORMANCE.md); a
  lone job, as in the backtest and the RL environment, decides from its start as before.
- Each action carries the assignment's epoch and a deterministic child id ``<job>.<epoch>.<n>``: a re-send
  is recognised downstream, and an action from a stale epoch is refused by the endpoint.
- The engine never asks for more than the job's quantity less what is filled and what is still open.
- This is the one decision path: the RL environment and the backtest (``worker.sim``) run this engine
  against the shared venue, so what a policy is trained and measured on is what the live worker sends.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from pydantic import TypeAdapter

from market.prices import to_units, to_units_array
from market.session import day_frac
from models import (
    DEFAULT_RL_POLICY,
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    JobAssignment,
    Liquidity,
    Message,
    OrdType,
    Side,
    Strategy,
    Tick,
    now_ns,
)
from models.codec import ChildActionEncoder
from models.grid import widest_gap_point
from worker.baselines import POV, TWAP, VWAP, AlmgrenChriss, volume_curve
from worker.features import Features, Tape, observe_columns
from worker.policy import (
    KINDS,
    Action,
    Agent,
    JobContext,
    Observation,
    Policy,
    PriceKind,
    observation_values,
    scale_rows,
    shared_action,
    sized_columns,
)
from worker.policy_files import LoadedPolicy, PolicyRegistry

TICK = 0.01
_CHILDREN: TypeAdapter[list[ChildOrderAction]] = TypeAdapter(list[ChildOrderAction])
COLUMNAR_FROM = 16  # jobs of one policy file due on one tick, from which they are decided as columns
# A job whose grid would fall this close (event time) to another's is moved: grids a few ticks apart still
# decide within milliseconds of each other (jobs re-taken after a failover start on their symbols' last
# ticks, not on one instant). A second is small against the interval (30 s by default).
SPREAD_WITHIN_NS = 1_000_000_000
_serials = itertools.count()
_NEW, _CANCEL = ChildAction.NEW, ChildAction.CANCEL
_MKT, _LIMIT, _BUY = OrdType.MARKET, OrdType.LIMIT, Side.BUY
_HOLD, _MARKET = PriceKind.HOLD, PriceKind.MARKET
_TOUCH, _INSIDE = PriceKind.LIMIT_TOUCH, PriceKind.LIMIT_INSIDE


def _band(policy: Policy | LoadedPolicy | Agent) -> float | None:
    """A policy's band around the TWAP schedule: a policy file's manifest's, or a rule's own."""
    if isinstance(policy, LoadedPolicy):
        return policy.manifest.band
    band = getattr(policy, "band", None)
    return float(band) if isinstance(band, int | float) else None


def slice_qty(quantity: int, window_ns: int, decision_ns: int) -> int:
    """The TWAP slice: the job's quantity over its decisions, in whole lots (at least one)."""
    n_decisions = max(1, window_ns // decision_ns)
    return max(100, round(quantity / n_decisions / 100) * 100)


# A tick's child orders as the live worker sends them: their specs (``ChildSpec``: the job gives the topic
# and the key, the action is counted) and, in the same order, their payloads, byte for byte what
# ``codec.encode`` writes for each ``ChildOrderAction``. Two lists, not another tuple built per child. Plain
# tuples in ``ChildSpec``: a NamedTuple costs ~0.37 µs to build against ~0.05.
Wire = tuple[list["ChildSpec"], list[bytes]]


# A child order still open: (its id, its leaves, a limit order's price or None, whether its cancel went out).
# A plain tuple, replaced when it changes: tuples come from CPython's free list, and one of atoms leaves
# the garbage collector's sight at its first pass. An object per open child (1,000 a tick with 1,000 jobs
# due together) brought the collector once or twice a tick (docs/PERFORMANCE.md).
OpenChild = tuple[str, int, float | None, bool]


@dataclass
class Job:
    assignment: JobAssignment
    features: Features
    policy: Policy | LoadedPolicy | Agent
    context: JobContext
    slice_qty: int
    next_decision_ns: int
    wire: str  # its children's run of job fields on the wire (``ChildActionEncoder.job_part``)
    child_prefix: str  # ``<job>.<epoch>.``: its children's ids are this and a count
    decisions: int = 0
    filled: int = 0
    open: dict[str, OpenChild] = field(default_factory=dict)
    finished: bool = False
    fills_seen: set[str] = field(default_factory=set)
    canceling: set[str] = field(default_factory=set)  # cancels sent at the end of the window
    serial: int = field(default_factory=lambda: next(_serials))  # tells this job from a later re-take
    dropped: bool = False  # no longer the engine's (dropped, or re-taken under a newer epoch)
    row: int = -1  # its row in the engine's columns (``_Columns``)

    @property
    def next_event_ns(self) -> int:
        return min(self.next_decision_ns, self.assignment.parent.end_ns)

    @property
    def job_id(self) -> str:
        return self.assignment.job_id

    @property
    def quantity(self) -> int:
        return self.assignment.quantity

    @property
    def open_qty(self) -> int:
        return sum(c[1] for c in self.open.values()) if self.open else 0

    def sent(self, child_id: str) -> bool:
        """Whether this assignment sent ``child_id``: its children's ids are its prefix and a count below
        ``decisions``, written as ``str`` writes it (no set of them kept: one per child, all day long)."""
        n = child_id.removeprefix(self.child_prefix)
        if n == child_id or not (n.isascii() and n.isdigit()):
            return False
        return int(n) < self.decisions and str(int(n)) == n


# A child order decided on this tick, before it is written as a model or a payload:
# (job, action, child id, quantity, order type, limit price or None).
ChildSpec = tuple["Job", ChildAction, str, int, OrdType, float | None]


_SERIAL = operator.attrgetter("serial")
_WIRE: Callable[[Job], str] = operator.attrgetter("wire")  # a job's run of fields (``Job.wire``)


@dataclass
class _Symbol:
    """A symbol's tape and its jobs' timetable. A job dropped or re-taken since it was entered is skipped
    when it comes up (``Job.dropped``). Jobs decide on a grid from their start, so many share an event time:
    the timetable is a heap of distinct times, each with its jobs (1,000 jobs due together cost one heap
    operation, not 2,000), taken in the order ``(time, serial)``."""

    tape: Tape = field(default_factory=Tape)
    starts: list[tuple[int, int, Job]] = field(default_factory=list)  # jobs not begun: a heap by start
    times: list[int] = field(default_factory=list)  # a heap of the event times below
    events: dict[int, list[Job]] = field(default_factory=dict)  # next decision or window end
    ending: dict[str, None] = field(default_factory=dict)  # past their window until finished, in order
    jobs: int = 0  # jobs on the symbol not dropped: at none, ``Engine.release`` may forget it

    def schedule(self, jobs: Iterable[Job]) -> None:
        """Enter jobs at their next event time. Jobs decided together mostly share the next one too: the
        slot is looked up again only when the time changes."""
        at, slot = -1, None
        for job in jobs:
            ns = job.next_event_ns
            if ns != at or slot is None:
                at, slot = ns, self._slot(ns)
            slot.append(job)

    def schedule_at(self, ns: int, jobs: list[Job]) -> None:
        """Enter jobs whose next event time is ``ns``, all of them."""
        self._slot(ns).extend(jobs)

    def _slot(self, ns: int) -> list[Job]:
        """The jobs entered at ``ns``: a new time goes on the heap once."""
        slot = self.events.get(ns)
        if slot is None:
            slot = self.events[ns] = []
            heapq.heappush(self.times, ns)
        return slot

    def take(self, ts: int) -> list[Job]:
        """The jobs due at ``ts``, by time, then serial."""
        out: list[Job] = []
        while self.times and self.times[0] <= ts:
            slot = self.events.pop(heapq.heappop(self.times))
            slot.sort(key=_SERIAL)
            out += slot
        return out


def _price(kind: PriceKind, buy: bool, limit_px: float | None, tick: Tick) -> tuple[OrdType, float | None]:
    """Where an action of ``kind`` goes on this tick: its order type and limit price (None: market, or
    nothing to price), within the parent's limit."""
    # Enum members as module constants: a class attribute lookup costs ~80 ns, and this runs per job.
    ord_type, px = _LIMIT, None
    if kind is _MARKET:
        ord_type = _MKT if limit_px is None else _LIMIT
        px = limit_px
    elif kind is _TOUCH:
        px = tick.bid_px if buy else tick.ask_px
    elif kind is _INSIDE:
        inside = round((tick.bid_px + TICK) if buy else (tick.ask_px - TICK), 2)
        px = inside if tick.bid_px < inside < tick.ask_px else (tick.bid_px if buy else tick.ask_px)
    if px is not None and limit_px is not None:
        px = min(px, limit_px) if buy else max(px, limit_px)
    return ord_type, px


class _TickPrices:
    """``_price`` on one tick, worked out once per (kind, side, limit): a tick's jobs share a few."""

    def __init__(self, tick: Tick) -> None:
        self.tick = tick
        self._memo: dict[tuple[PriceKind, bool, float | None], tuple[OrdType, float | None]] = {}

    def __call__(self, kind: PriceKind, buy: bool, limit_px: float | None) -> tuple[OrdType, float | None]:
        spot = (kind, buy, limit_px)
        if (price := self._memo.get(spot)) is None:
            price = self._memo[spot] = _price(kind, buy, limit_px, self.tick)
        return price


class _Columns:
    """The engine's jobs' numbers as arrays, a row per job (``Job.row``): a batch of jobs due together reads
    them with one fancy index each instead of one attribute per job. A cache: ``Job`` and its ``Features``
    stay the truth, and the engine writes through wherever a number changes (a job's start, its fills, its
    acks, a new child), so the columns equal what the per-job path reads (tests/unit/worker/test_columnar.py
    decides both ways). Rows of dropped jobs are reused."""

    def __init__(self, size: int = 64) -> None:
        self._free: list[int] = []
        self._next = 0
        # Integers as int64 (the per-job path's Python ints are exact there); sign and arrival as float64.
        self.quantity, self.start, self.end = (np.zeros(size, np.int64) for _ in range(3))
        self.slice, self.lot, self.filled = (np.zeros(size, np.int64) for _ in range(3))
        self.open = np.zeros(size, np.int64)  # the leaves of its open children
        self.children = np.zeros(size, np.int64)  # how many open children it has
        # Its one open child, where it has one (``children`` 1) and ``one_known``: its id, its limit price
        # (NaN: none) and whether its cancel went out. A job decided as columns reads them here, not in its
        # dict. Written where the job's children change off the tick (a fill, an ack): a tick's own new
        # children only mark their jobs unknown, to be read from the dict if still alone at the next
        # decision (the venue's ack of a new child mostly comes first).
        self.one_id = np.full(size, None, object)
        self.one_px = np.zeros(size, np.float64)
        self.one_sent = np.zeros(size, np.bool_)
        self.one_known = np.zeros(size, np.bool_)
        self.buy = np.zeros(size, np.int64)  # 1: a buy
        self.limit = np.zeros(size, np.float64)  # the parent's limit price (NaN: none)
        self.offset = np.zeros(size, np.int64)  # ``Features.volume_offset``
        self.begun = np.zeros(size, np.bool_)
        self.sign = np.zeros(size, np.float64)
        self.arrival = np.zeros(size, np.float64)  # NaN: not set yet

    def _grow(self) -> None:
        """Twice the rows (``add`` sets every field of a row it hands out)."""
        for name, old in list(vars(self).items()):
            if isinstance(old, np.ndarray):
                setattr(self, name, np.concatenate([old, np.empty_like(old)]))

    def add(self, job: Job) -> None:
        """Hands the job a row (``Job.row``) holding its numbers."""
        if self._free:
            row = self._free.pop()
        else:
            row, self._next = self._next, self._next + 1
            if row >= len(self.quantity):
                self._grow()
        f = job.features
        self.quantity[row], self.start[row], self.end[row] = f.quantity, f.start_ns, f.end_ns
        self.slice[row], self.lot[row], self.sign[row] = job.slice_qty, job.context.lot, f.sign
        p = job.assignment.parent
        self.buy[row], self.limit[row] = p.side is _BUY, np.nan if p.limit_px is None else p.limit_px
        self.filled[row], self.one_known[row] = job.filled, False  # a reused row's lone child is not its
        job.row = row
        self.began([job])
        self.opened(job)

    def began(self, jobs: list[Job]) -> None:
        """After the jobs' start (``Features.begin``): jobs of one grid begin on one tick, written at once."""
        rows = [j.row for j in jobs]
        fs = [j.features for j in jobs]
        self.begun[rows] = [f.begun for f in fs]
        self.offset[rows] = [f.volume_offset for f in fs]
        self.arrival[rows] = [np.nan if f.arrival_mid is None else f.arrival_mid for f in fs]

    def opened(self, job: Job) -> None:
        """After a change to the job's open children (a cancel sent, too)."""
        self.open[job.row], self.children[job.row] = job.open_qty, len(job.open)
        self.one(job)

    def one(self, job: Job) -> None:
        """A job's one open child, where it has one."""
        if len(job.open) == 1:
            ((child_id, _, px, sent),) = job.open.values()
            row = job.row
            self.one_id[row], self.one_sent[row], self.one_known[row] = child_id, sent, True
            self.one_px[row] = np.nan if px is None else px

    def free(self, row: int) -> None:
        self._free.append(row)


class Engine:
    def __init__(
        self,
        worker_id: str,
        registry: PolicyRegistry | None = None,
        *,
        decision_s: int = 30,
        default_rl: str = DEFAULT_RL_POLICY,
        on_fallback: Callable[[str], None] | None = None,
        spread: bool = True,
    ) -> None:
        """``spread`` False: jobs that start together decide together (the benches and tests of that case)."""
        self.worker_id = worker_id
        self.spread = spread
        self.registry = registry
        self.decision_ns = decision_s * 1_000_000_000
        self.default_rl = default_rl
        self.on_fallback = on_fallback
        self.jobs: dict[str, Job] = {}
        self._symbols: dict[str, _Symbol] = {}
        self.awaiting: dict[str, Tick] = {}  # agent jobs due, by job id, with the tick they are due on
        # Called with each decision the engine makes itself (the backtest compares a policy with a rule).
        self.audit: Callable[[Job, Observation, Action], None] | None = None
        self._received_ns: int | None = None  # the tick being decided on: when it reached the process
        self.columnar_from = COLUMNAR_FROM
        self._moved: dict[str, int] = {}  # job id -> its own grid's first time, until it decides there
        self._phases: dict[str, int] = {}  # job id -> its grid's times modulo the interval, while it works
        self._cols = _Columns()

    # --- assignments ----------------------------------------------------------------------------------
    def resolve_policy(self, a: JobAssignment) -> Policy | LoadedPolicy:
        """The job's policy; a policy file is loaded (and cached) on first use, which takes seconds: the
        service calls this before taking its lock, so heartbeats and ticks never wait for a load."""
        return self._policy_for(a)

    def _policy_for(self, a: JobAssignment) -> Policy | LoadedPolicy:
        p = a.parent
        if p.strategy is Strategy.RL or p.policy:
            if self.registry is None:
                raise ValueError("no policy folder configured for an RL job")
            return self.registry.load(p.policy or self.default_rl)
        start, end = day_frac(p.start_ns), day_frac(p.end_ns)
        if p.strategy is Strategy.VWAP:
            return VWAP(curve=volume_curve(start, end))
        if p.strategy is Strategy.POV:
            return POV(rate=p.participation_rate or 0.1)
        if p.strategy is Strategy.IS:
            return AlmgrenChriss(kappa_t=2.0)
        return TWAP()

    def assign(self, a: JobAssignment, policy: Policy | LoadedPolicy | Agent | None = None) -> bool:
        """Take (or re-take under a newer epoch) a job; False if the assignment is stale or not ours.
        ``policy`` overrides the one the parent names (the backtest pins versions; the RL environment
        passes an ``Agent``)."""
        current = self.jobs.get(a.job_id)
        if a.worker_id != self.worker_id or (current is not None and a.epoch <= current.assignment.epoch):
            return False
        if a.revoked:
            self.drop(a.job_id)
            return True
        p = a.parent
        start = max(p.start_ns, current.features.last.ts_event if current and current.features.last else 0)
        sym = self._symbols.setdefault(p.symbol, _Symbol())
        job = Job(
            assignment=a,
            features=Features(
                p.side,
                a.quantity,
                start,
                p.end_ns,
                tape=sym.tape,
                curve=volume_curve(day_frac(start), day_frac(p.end_ns)),
            ),
            policy=policy if policy is not None else self._policy_for(a),
            context=JobContext(quantity=a.quantity, participation_rate=p.participation_rate),
            slice_qty=slice_qty(a.quantity, p.end_ns - start, self.decision_ns),
            next_decision_ns=start,
            wire=self._job_part(a),
            child_prefix=f"{a.job_id}.{a.epoch}.",
        )
        self.drop(a.job_id)
        if self.spread:
            grid = (
                self._own_grid(a.job_id, start, p.end_ns)
                if a.grid is None
                else self._given_grid(a.grid, start, p.end_ns)
            )
            if grid is not None:
                self._moved[a.job_id] = grid
            self._phases[a.job_id] = (start if grid is None else grid) % self.decision_ns
        self.jobs[a.job_id] = job
        sym.jobs += 1
        self._cols.add(job)
        heapq.heappush(sym.starts, (start, job.serial, job))
        sym.schedule((job,))
        return True

    def _own_grid(self, job_id: str, start: int, end: int) -> int | None:
        """None, unless another working job of the engine decides within ``SPREAD_WITHIN_NS`` of this one's
        grid from ``start``. Then the job still decides at its start (a client's order starts working at
        once, a re-taken one catches up at once), and from the next decision on, on a grid of its own: in
        the widest gap between the other jobs' grids (their times modulo the interval,
        ``models.grid.widest_gap_point``). Returns that grid's first time. One worker's jobs so fall evenly
        over the interval; for assignments without a grid only (the health-checker places every live job
        among all workers' jobs: ``_given_grid``)."""
        step, phases = self.decision_ns, self._phases
        others = np.unique(np.fromiter(phases.values(), dtype=np.int64, count=len(phases)))  # sorted
        if not others.size:
            return None
        apart = (others - start % step) % step
        if np.minimum(apart, step - apart).min() >= SPREAD_WITHIN_NS:
            return None
        return self._grid_from(widest_gap_point(others, step, job_id), start, end)

    def _given_grid(self, grid: float, start: int, end: int) -> int | None:
        """The first time of the grid the health-checker gave (``JobAssignment.grid``, a fraction of the
        interval), from one to two intervals after ``start``; the job decides at its start first."""
        return self._grid_from(int(grid * self.decision_ns), start, end)

    def _grid_from(self, phase: int, start: int, end: int) -> int | None:
        after = start + self.decision_ns  # never two decisions less than an interval apart
        first = after + (phase - after) % self.decision_ns
        return first if first < end else None

    def _job_part(self, a: JobAssignment) -> str:
        p = a.parent
        ids = {"job_id": a.job_id, "parent_id": p.parent_id, "worker_id": self.worker_id}
        return ChildActionEncoder.job_part(epoch=a.epoch, symbol=p.symbol, side=p.side, **ids)

    def drop(self, job_id: str) -> None:
        job = self.jobs.pop(job_id, None)
        self.awaiting.pop(job_id, None)
        self._moved.pop(job_id, None)
        self._phases.pop(job_id, None)
        if job is not None:
            job.dropped = True
            self._cols.free(job.row)
            sym = self._symbols[job.assignment.parent.symbol]
            sym.ending.pop(job_id, None)
            sym.jobs -= 1

    def release(self, symbol: str) -> bool:
        """Forget ``symbol`` if none of its jobs is left (all dropped): its tape and timetable go, and its
        ticks change nothing from now on. A later job on it starts a fresh tape, as on a symbol never
        followed. True if forgotten, or never followed: the caller may stop reading its ticks."""
        sym = self._symbols.get(symbol)
        if sym is None:
            return True
        if sym.jobs:
            return False
        del self._symbols[symbol]
        return True

    # --- market data and decisions --------------------------------------------------------------------
    def on_tick(self, tick: Tick, *, received_ns: int | None = None) -> list[ChildOrderAction]:
        """The child orders this tick causes, as validated models. ``received_ns``: when the tick reached
        this process (stamped on the child orders it causes)."""
        return self._models(self._step(tick, received_ns), tick)

    def on_tick_wire(self, tick: Tick, *, received_ns: int | None = None) -> Wire:
        """The same child orders as ``on_tick``, as payloads written in one pass (the live worker's path)."""
        return self._wire(self._step(tick, received_ns), tick)

    def _step(self, tick: Tick, received_ns: int | None) -> list[ChildSpec]:
        self._received_ns = received_ns
        sym = self._symbols.get(tick.symbol)
        if sym is None:
            return []
        ts = tick.ts_event
        begun: list[Job] = []
        while sym.starts and sym.starts[0][0] <= ts:
            job = heapq.heappop(sym.starts)[2]
            if not job.dropped:
                job.features.begin(tick)
                begun.append(job)
        if begun:
            self._cols.began(begun)
        sym.tape.on_tick(tick)
        due: list[Job] = []
        for job in sym.take(ts):
            if job.dropped or job.finished:
                continue
            if ts >= job.features.end_ns:
                sym.ending[job.assignment.job_id] = None
            else:
                due.append(job)
        out: list[ChildSpec] = []
        if sym.ending:
            self._finish(sym, tick, out)
        if due:  # on most ticks no job is due
            self._decide(due, tick, out, sym)
        return out

    def _decide(self, due: list[Job], tick: Tick, out: list[ChildSpec], sym: _Symbol) -> None:
        """Decides the jobs due, and enters each at its next event time."""
        first = due[0].policy
        if isinstance(first, LoadedPolicy) and not [j for j in due if j.policy is not first]:
            self._decide_file(due, tick, out, sym)  # all of one policy file, as jobs on one grid mostly are
            return
        by_file: dict[int, list[Job]] = defaultdict(list)
        each: list[Job] = []  # the jobs of a policy file are timed by ``_decide_file``
        for job in due:
            if isinstance(job.policy, LoadedPolicy):
                by_file[id(job.policy)].append(job)
                continue
            each.append(job)
            if isinstance(job.policy, Agent):
                self.awaiting[job.job_id] = tick
            else:
                obs = job.features.observe(tick.ts_event, job.filled, job.open_qty)
                action = job.policy.decide(obs, job.context)
                if self.audit is not None:
                    self.audit(job, obs, action)
                self._act(job, action, tick, out)
        if each:
            self._advance(each, tick.ts_event)
            sym.schedule(each)
        for jobs in by_file.values():
            self._decide_file(jobs, tick, out, sym)

    def _advance(self, jobs: list[Job], ts: int) -> None:
        """Each job's next decision time: the first slot of its grid after ``ts`` (gaps in the data skip
        slots). One at a time, where numpy's per-call cost is most of the work (a job or a few)."""
        step = self.decision_ns
        for job, ahead in zip(jobs, self._ahead(jobs), strict=True):
            job.next_decision_ns = ahead + step * max(1, (ts - ahead) // step + 1)

    def _ahead(self, jobs: list[Job]) -> list[int]:
        """The grid slot each job decided on, for ``_advance``: its own grid's first time less an interval
        for a job at its first decision after being moved off another's (``_own_grid``), so that the rule
        lands on that time, or on the first of that grid's slots after a gap in the data."""
        moved = self._moved
        if not moved:
            return [j.next_decision_ns for j in jobs]
        step = self.decision_ns
        return [moved.pop(j.job_id) - step if j.job_id in moved else j.next_decision_ns for j in jobs]

    def _advance_column(self, jobs: list[Job], ts: int) -> np.ndarray:
        """``_advance``'s rule for a batch at once, returned as an int64 column too (the columns' path;
        tests/unit/worker/test_columnar.py holds it to the per-job path's)."""
        step = self.decision_ns
        ahead = np.fromiter(self._ahead(jobs), dtype=np.int64, count=len(jobs))
        ahead += step * np.maximum(1, (ts - ahead) // step + 1)
        for job, ns in zip(jobs, ahead.tolist(), strict=True):
            job.next_decision_ns = ns
        return ahead

    def _decide_file(self, jobs: list[Job], tick: Tick, out: list[ChildSpec], sym: _Symbol) -> None:
        """The jobs of one policy file due on this tick, with one forward pass. From ``columnar_from`` jobs
        on, as columns (``_decide_columns``); below it numpy's per-call cost outweighs the loop it saves.
        Both decide the same, bit for bit (tests/unit/worker/test_columnar.py)."""
        pol = jobs[0].policy
        assert isinstance(pol, LoadedPolicy)
        if len(jobs) >= self.columnar_from and self._decide_columns(pol, jobs, tick, out, sym):
            return
        self._advance(jobs, tick.ts_event)
        sym.schedule(jobs)
        observed = [j.features.observe(tick.ts_event, j.filled, j.open_qty) for j in jobs]
        scores = pol.scores(scale_rows(np.array([observation_values(o) for o in observed])))
        usable, best = np.isfinite(scores).all(axis=1).tolist(), scores.argmax(axis=1).tolist()
        for job, ok, i, obs in zip(jobs, usable, best, observed, strict=True):
            action = pol.action_of(i, job.slice_qty, obs, job.context)
            if not ok:
                action = self._fallback(pol, obs, job)
            if self.audit is not None:
                self.audit(job, obs, action)
            self._act(job, action, tick, out)

    def _fallback(self, pol: LoadedPolicy, obs: Observation, job: Job) -> Action:
        """A policy file's scores were not all finite: its rule decides, and it is counted."""
        pol.fallbacks += 1
        if self.on_fallback:
            self.on_fallback(pol.name)
        action: Action = pol.fallback.decide(obs, job.context)
        return action

    def _decide_columns(
        self, pol: LoadedPolicy, jobs: list[Job], tick: Tick, out: list[ChildSpec], sym: _Symbol
    ) -> bool:
        """The jobs' observations, actions and children from their numbers as columns (``_Columns``):
        observations in one array (``observe_columns``), actions sized at once (``sized_columns``), each
        price worked out once per (kind, side, limit), and each job's room from the columns. A job with at
        most one open child and no limit is placed from the columns too; what is left of it in Python is
        writing its cancel and its new child. Any other job goes through ``_place``. Their next decision
        times (``_advance``) too: jobs decided together mostly share the next one. False (nothing done) if
        a job has not begun, which a due job always has."""
        c, ts, n = self._cols, tick.ts_event, len(jobs)
        rows = np.fromiter([j.row for j in jobs], dtype=np.intp, count=n)
        if not c.begun[rows].all():
            return False
        ahead = self._advance_column(jobs, ts)
        at = np.minimum(ahead, c.end[rows])  # ``Job.next_event_ns``
        if at.min() == at.max():
            sym.schedule_at(int(at[0]), jobs)
        else:
            sym.schedule(jobs)
        tape = jobs[0].features.tape
        view = tape.view()
        arrival = c.arrival[rows]
        unset = np.flatnonzero(np.isnan(arrival))
        if unset.size:
            mids = []
            for k in unset.tolist():
                f = jobs[k].features
                if f.arrival_mid is None:
                    f.arrival_mid = view.mid  # the mid prevailing when the job starts
                mids.append(f.arrival_mid)
            arrival[unset] = c.arrival[rows[unset]] = mids
        quantity, filled, open_qty = c.quantity[rows], c.filled[rows], c.open[rows]
        obs = observe_columns(
            view, ts, sign=c.sign[rows], quantity=quantity, start=c.start[rows], end=c.end[rows],
            market_volume=tape.volume + c.offset[rows], arrival=arrival, filled=filled, open_qty=open_qty,
        )  # fmt: skip
        scores = pol.scores(scale_rows(obs))
        usable = np.isfinite(scores).all(axis=1)
        index = np.where(usable, scores.argmax(axis=1), 0)
        sizes = np.stack((c.slice[rows], quantity, c.lot[rows]), axis=1)
        codes, qtys = sized_columns(pol.actions, index, obs, sizes, band=pol.manifest.band)
        room = quantity - filled - open_qty
        n_open = c.children[rows]
        # Simple: no limit, and at most one open child: decided from the columns as ``_place`` decides (a
        # test compares). The action's price is its kind's for its side; a resting child is kept if its
        # cancel has not gone out, it fits the budget and it rests at that price, else it is cancelled; the
        # new child is the action's quantity (less what is kept) within the room.
        simple = (n_open <= 1) & np.isnan(c.limit[rows])
        every = self.audit is not None or not usable.all()
        if every:
            simple[:] = False  # an observation and an action built for each job
        buy = c.buy[rows]
        prices = [_price(k, b == 1, None, tick) for k in KINDS for b in (0, 1)]  # by kind * 2 + buy
        key = codes * 2 + buy
        units = np.array([np.nan if px is None else to_units(px) for _, px in prices])[key]
        # A job's one open child from the columns (``_Columns.one``): its leaves are the job's open leaves.
        at_one = np.flatnonzero(simple & (n_open == 1))
        leaves, sent = np.zeros(n, np.int64), np.zeros(n, bool)
        rest_units, ids_ = np.full(n, np.nan), []  # ids_: by job, its one open child's id (None: none)
        if at_one.size:
            on = rows[at_one]
            known = c.one_known[on]
            if not known.all():
                for k in at_one[~known].tolist():
                    c.one(jobs[k])
            one_ids = np.full(n, None, object)
            leaves[at_one], sent[at_one], one_ids[at_one] = open_qty[at_one], c.one_sent[on], c.one_id[on]
            rest_units[at_one] = to_units_array(c.one_px[on])  # NaN: none
            ids_ = one_ids.tolist()
        resting = (codes == PriceKind.LIMIT_TOUCH) | (codes == PriceKind.LIMIT_INSIDE)
        budget = np.where(resting, qtys, 0)
        # NaN (no price, or none asked) equals nothing: such a child is never kept.
        keep = (n_open == 1) & ~sent & (leaves <= budget) & (rest_units == units)
        size = np.minimum(np.where(resting, budget - np.where(keep, leaves, 0), qtys), room)
        new = simple & (codes != PriceKind.HOLD) & (size > 0)
        cancel = simple & (n_open == 1) & ~keep
        placed = np.where(new, size, 0)
        codes_, qtys_, room_, size_, key_ = (
            codes.tolist(),
            qtys.tolist(),
            room.tolist(),
            size.tolist(),
            key.tolist(),
        )
        simple_, new_, cancel_, ok = simple.tolist(), new.tolist(), cancel.tolist(), usable.tolist()
        general, open_child = _TickPrices(tick), self._open_child
        for k in np.flatnonzero(~simple | new | cancel).tolist():
            job = jobs[k]
            if simple_[k]:
                if cancel_[k]:
                    child_id = ids_[k]
                    _, left, rest_px, _ = job.open[child_id]
                    job.open[child_id] = (child_id, left, rest_px, True)
                    out.append((job, _CANCEL, child_id, 0, _MKT, None))
                if new_[k]:
                    open_child(job, size_[k], prices[key_[k]], out)
                continue
            kind, qty = KINDS[codes_[k]], qtys_[k]
            if every:
                seen = Observation(*obs[k].tolist())
                action = shared_action(kind, qty) if ok[k] else self._fallback(pol, seen, job)
                if self.audit is not None:
                    self.audit(job, seen, action)
                kind, qty = action.price, action.quantity
            p = job.assignment.parent
            price = general(kind, p.side is _BUY, p.limit_px)
            placed[k] = self._place(job, kind, qty, price, room=room_[k], out=out)
        c.open[rows] += placed
        c.children[rows] += placed > 0
        # The one open child's columns after this tick: a cancelled one's flag; unknown where the job's
        # children changed otherwise (a new child, or the general way).
        c.one_sent[rows[cancel & ~new]] = True
        c.one_known[rows[new | ~simple]] = False
        return True

    def observe(self, job_id: str) -> Observation:
        """The observation a job's policy sees now (at its latest tick)."""
        job = self.jobs[job_id]
        if job.features.last is None:
            raise ValueError(f"job {job_id} has no market data yet")
        return job.features.observe(job.features.last.ts_event, job.filled, job.open_qty)

    def act(self, job_id: str, action: Action) -> list[ChildOrderAction]:
        """The decision of an agent's job that is due (``awaiting``), turned into child orders exactly as
        the engine turns its own policies' decisions."""
        tick = self.awaiting.pop(job_id, None)
        if tick is None:
            raise ValueError(f"job {job_id} is not waiting for a decision")
        return self._models(self._act(self.jobs[job_id], action, tick, []), tick)

    def _finish(self, sym: _Symbol, tick: Tick, out: list[ChildSpec]) -> None:
        """End of the window, for the symbol's jobs past it: cancel what rests, and once the venue has
        confirmed, send what is left at market (as the RL environment does). Until then each tick only
        waits: cancels go out once. Jobs of one grid end on one tick, so this is one loop: each market
        price worked out once per (side, limit), the columns written once (that tick took 4.3-5.1 ms in the
        bench of 1,000 jobs, 2.0-3.2 after)."""
        prices = _TickPrices(tick)
        rows: list[int] = []
        lefts: list[int] = []
        done: list[str] = []
        for job_id in sym.ending:
            job = self.jobs[job_id]
            self.awaiting.pop(job_id, None)
            if job.open:
                pending = [c[0] for c in job.open.values() if c[0] not in job.canceling]
                job.canceling.update(pending)
                out += [(job, _CANCEL, child_id, 0, _MKT, None) for child_id in pending]
                continue  # cancels not confirmed yet: their leaves may still fill
            job.finished = True
            self._phases.pop(job_id, None)
            done.append(job_id)
            # ``_place`` of a market action for the whole quantity, nothing open: what is not filled.
            left = job.assignment.quantity - job.filled
            if left > 0:
                p = job.assignment.parent
                self._open_child(job, left, prices(_MARKET, p.side is _BUY, p.limit_px), out)
                rows.append(job.row)
                lefts.append(left)
        for job_id in done:
            del sym.ending[job_id]
        if rows:
            self._cols.open[rows] = lefts
            self._cols.children[rows] = 1
            self._cols.one_known[rows] = False

    def _act(self, job: Job, action: Action, tick: Tick, out: list[ChildSpec]) -> list[ChildSpec]:
        """Appends to ``out`` the children of ``action`` (and returns it)."""
        p = job.assignment.parent
        price = _price(action.price, p.side is _BUY, p.limit_px, tick)
        room = job.assignment.quantity - job.filled - job.open_qty
        self._place(job, action.price, action.quantity, price, room=room, out=out)
        self._cols.opened(job)  # a cancel alone, too: its child's flag
        return out

    def _place(
        self, job: Job, kind: PriceKind, quantity: int, price: tuple[OrdType, float | None], *, room: int,
        out: list[ChildSpec],
    ) -> int:  # fmt: skip
        """An action's children, at its price (``_price``), within ``room`` (what the job may still have
        open: its quantity less what is filled and what is open; cancels are requests, and until
        confirmed their leaves still count). Open orders are cancelled first, except a limit order already
        resting at the price this action asks for: it keeps its place in the queue (a cancel and re-post
        would join the back every decision) and counts toward the action's quantity. Returns the new child's
        quantity (0: none), which the caller adds to the job's open column."""
        px = price[1]
        resting = kind is _TOUCH or kind is _INSIDE
        budget = quantity if resting else 0
        if job.open:
            units = None if px is None else to_units(px)
            for child_id, leaves, rest_px, cancel_sent in job.open.values():
                keep = units is not None and not cancel_sent and leaves <= budget
                if (
                    keep and rest_px is not None and to_units(rest_px) == units
                ):  # resting there: keeps its place
                    budget -= leaves
                    continue
                job.open[child_id] = (child_id, leaves, rest_px, True)  # the same key: iterating goes on
                out.append((job, _CANCEL, child_id, 0, _MKT, None))
        qty = min(budget if resting else quantity, room)
        if kind is _HOLD or qty <= 0:
            return 0
        self._open_child(job, qty, price, out)
        return qty

    @staticmethod
    def _open_child(job: Job, qty: int, price: tuple[OrdType, float | None], out: list[ChildSpec]) -> None:
        """A new child order of ``qty`` at ``price``: its id, and the job's record of it."""
        ord_type, px = price
        child_id = f"{job.child_prefix}{job.decisions}"
        job.decisions += 1
        out.append((job, _NEW, child_id, qty, ord_type, px))
        job.open[child_id] = (child_id, qty, px if ord_type is _LIMIT else None, False)

    def _models(self, specs: list[ChildSpec], tick: Tick) -> list[ChildOrderAction]:
        """The children as models, validated as one list (half the cost of one model at a time). Stamped
        ``ts_init`` once: decided when the tick's decisions are."""
        if not specs:
            return []
        ts_init = now_ns()
        stamps = {"ts_event": tick.ts_event, "ts_init": ts_init, "tick_seq": tick.seq,
                  "tick_ts_init": tick.ts_init, "tick_recv_ns": self._received_ns}  # fmt: skip
        fields = []
        for job, action, child_id, qty, ord_type, px in specs:
            a = job.assignment
            p = a.parent
            fields.append({
                "action": action, "child_id": child_id, "job_id": a.job_id, "parent_id": p.parent_id,
                "worker_id": self.worker_id, "epoch": a.epoch, "symbol": p.symbol, "side": p.side,
                "quantity": qty, "ord_type": ord_type, "limit_px": px, **stamps,
            })  # fmt: skip
        return _CHILDREN.validate_python(fields)

    def _wire(self, specs: list[ChildSpec], tick: Tick) -> Wire:
        """The children as payloads: the job's fields written once per job, the tick's once per tick."""
        if not specs:
            return specs, []
        enc = ChildActionEncoder
        tail = enc.tick_part(tick.ts_event, now_ns(), tick.seq, tick.ts_init, self._received_ns)
        return specs, enc.payloads(specs, tail, _WIRE)

    # --- executions -----------------------------------------------------------------------------------
    def on_execution(self, m: Message) -> None:
        """What a job's executions topic carries: a fill or an ack (anything else is not the engine's)."""
        if isinstance(m, Fill):
            self.on_fill(m)
        elif isinstance(m, ChildOrderAck):
            self.on_ack(m)

    def on_fill(self, fill: Fill) -> None:
        job = self.jobs.get(fill.job_id)
        if job is None or fill.fill_id in job.fills_seen or not job.sent(fill.child_id):
            # Not ours any more, a redelivery (every fill counts once), or an earlier epoch's fill: the
            # assignment's quantity already excludes what earlier epochs filled.
            return
        job.fills_seen.add(fill.fill_id)
        job.filled += fill.qty
        cols, row = self._cols, job.row
        cols.filled[row] = job.filled
        if fill.liquidity is Liquidity.TAKER:
            # A passive fill is in a trade the data prints anyway; an aggressive one the data cannot know.
            job.features.add_own_fill(fill.qty, fill.px)
            cols.offset[row] = job.features.volume_offset
        child = job.open.get(fill.child_id)
        if child is not None:
            child_id, leaves, px, cancel_sent = child
            if (leaves := leaves - fill.qty) <= 0:
                del job.open[child_id]
            else:
                job.open[child_id] = (child_id, leaves, px, cancel_sent)
            cols.opened(job)

    def on_ack(self, ack: ChildOrderAck) -> None:
        job = self.jobs.get(ack.job_id)
        if job is None or ack.epoch != job.assignment.epoch:
            return
        if ack.status in (AckStatus.CANCELED, AckStatus.DONE, AckStatus.REJECTED):
            job.open.pop(ack.child_id, None)
        elif (child := job.open.get(ack.child_id)) is not None:
            job.open[ack.child_id] = (child[0], ack.leaves_qty, child[2], child[3])
        self._cols.opened(job)

    def refs(self) -> list[tuple[str, int, float | None]]:
        """Each job's id, epoch and its policy's band around the TWAP schedule (None: none)."""
        return [(j.job_id, j.assignment.epoch, _band(j.policy)) for j in self.jobs.values()]
