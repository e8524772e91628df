"""The worker's decision engine over the synthetic market, with the shared fill model as the venue."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from market.fills import FillModel
from market.prices import to_float, to_units
from market.session import SESSION_OPEN_S
from market.synthetic import SymbolSim, SymbolSpec
from models import (
    DEFAULT_RL_POLICY,
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    JobAssignment,
    OrdType,
    ParentOrder,
    Side,
    Strategy,
    Tick,
)
from models.grid import GRID_SPAN, widest_gap_point
from tests import factories
from worker import policy_files
from worker.engine import ChildSpec, Engine, Job
from worker.nets import PolicyNet
from worker.policy_files import PolicyRegistry

S = 1_000_000_000


def _market(minutes: int, symbol: str = "AAPL", seed: int = 1) -> Iterator[Tick]:
    start = SESSION_OPEN_S + 3600
    yield from SymbolSim(
        SymbolSpec(symbol), seed, depth=3, start_s=start - 60, close_s=start + minutes * 60 + 120
    )


def _assignment(
    job: str,
    qty: int,
    t0: int,
    minutes: int,
    strategy: Strategy = Strategy.TWAP,
    *,
    epoch: int = 1,
    worker: str = "w1",
    **kw: object,
) -> JobAssignment:
    parent = ParentOrder(
        parent_id=f"P-{job}",
        client_id="C1",
        cl_ord_id=f"c-{job}",
        symbol=str(kw.pop("symbol", "AAPL")),
        side=Side(str(kw.pop("side", "BUY"))),
        quantity=qty,
        start_ns=t0,
        end_ns=t0 + minutes * 60 * S,
        strategy=strategy,
        ts_init=t0,
        **kw,  # type: ignore[arg-type]
    )
    return JobAssignment(job_id=job, worker_id=worker, epoch=epoch, parent=parent, quantity=qty, ts_init=t0)


def _ack_of(a: ChildOrderAction, status: AckStatus, leaves: int, tick: Tick) -> ChildOrderAck:
    ts = tick.ts_event
    return factories.ack(
        child_id=a.child_id,
        job_id=a.job_id,
        epoch=a.epoch,
        status=status,
        leaves_qty=leaves,
        ts_event=ts,
        ts_init=ts,
    )


class Venue:
    """Executes child actions with market.fills and reports fills back to the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.fm, self.n = engine, FillModel(), 0
        self.owner: dict[str, ChildOrderAction] = {}
        self.filled: dict[str, int] = {}

    def _fill(self, a: ChildOrderAction, price: int, qty: int, tick: Tick) -> None:
        self.n += 1
        self.filled[a.job_id] = self.filled.get(a.job_id, 0) + qty
        self.engine.on_fill(factories.fill_for(a, f"F{self.n}", qty, to_float(price), tick.ts_event))

    def handle(self, actions: list[ChildOrderAction], tick: Tick) -> None:
        for a in actions:
            if a.action is ChildAction.CANCEL:
                left = self.fm.cancel(a.child_id)
                self.engine.on_ack(_ack_of(a, AckStatus.CANCELED, left, tick))
                continue
            self.owner[a.child_id] = a
            if a.ord_type is OrdType.MARKET:
                execs = self.fm.market(a.child_id, a.side, a.quantity, tick)
            else:
                execs = self.fm.limit(a.child_id, a.side, a.quantity, to_units(a.limit_px or 0), tick)
            for e in execs:
                self._fill(a, e.price, e.qty, tick)
            if a.ord_type is OrdType.MARKET:
                done = sum(e.qty for e in execs)
                self.engine.on_ack(_ack_of(a, AckStatus.DONE, 0, tick))
                assert done <= a.quantity

    def on_tick(self, tick: Tick) -> None:
        for e in self.fm.on_tick(tick):
            self._fill(self.owner[e.order_id], e.price, e.qty, tick)


def _run(engine: Engine, ticks: Iterator[Tick], venue: Venue | None = None) -> list[ChildOrderAction]:
    venue = venue or Venue(engine)
    sent: list[ChildOrderAction] = []
    for tick in ticks:
        venue.on_tick(tick)
        actions = engine.on_tick(tick)
        sent += actions
        venue.handle(actions, tick)
    return sent


def _first_tick(minutes: int = 20) -> tuple[int, Iterator[Tick]]:
    ticks = _market(minutes)
    first = next(ticks)
    return first.ts_event + 30 * S, ticks


@pytest.mark.parametrize("strategy", [Strategy.TWAP, Strategy.VWAP, Strategy.IS, Strategy.POV])
def test_a_baseline_job_completes_exactly(strategy: Strategy) -> None:
    t0, ticks = _first_tick()
    eng = Engine("w1")
    kw = {"participation_rate": 0.5} if strategy is Strategy.POV else {}
    assert eng.assign(_assignment("J1", 5_000, t0, 15, strategy, **kw))
    venue = Venue(eng)
    sent = _run(eng, ticks, venue)
    job = eng.jobs["J1"]
    assert job.filled == venue.filled["J1"] == 5_000 and job.finished
    news = [a for a in sent if a.action is ChildAction.NEW]
    assert len({a.child_id for a in news}) == len(news)  # deterministic, unique ids
    assert all(a.epoch == 1 and a.child_id.startswith("J1.1.") for a in news)
    # Event-time decisions: never two decisions for one job within one decision interval
    times = sorted({a.ts_event for a in news})
    assert all(b - a >= 29 * S for a, b in pairwise(times)) or strategy is Strategy.POV


def test_twap_sends_even_slices_in_event_time() -> None:
    t0, ticks = _first_tick()
    eng = Engine("w1")
    eng.assign(_assignment("J1", 3_000, t0, 10))
    news = [a for a in _run(eng, ticks) if a.action is ChildAction.NEW]
    # 3,000 over twenty 30-second decisions: 150 a decision, sent in whole lots as the schedule allows.
    assert sum(a.quantity for a in news) == 3_000
    assert all(a.quantity in (100, 200) for a in news)
    assert all(a.ts_event >= t0 for a in news)
    cum = 0
    for a in news:
        cum += a.quantity
        elapsed = (a.ts_event - t0) / (10 * 60 * S)
        assert cum <= 3_000 * min(1.0, elapsed) + 200


def test_never_asks_for_more_than_is_left() -> None:
    t0, ticks = _first_tick()
    eng = Engine("w1")
    eng.assign(_assignment("J1", 2_000, t0, 10))
    working = 0
    for tick in ticks:  # a venue that never fills: open quantity must cap new orders
        for a in eng.on_tick(tick):
            if a.action is ChildAction.NEW:
                working += a.quantity
            assert working <= 2_000


def test_stale_epochs_and_other_workers_are_refused_and_revocation_drops() -> None:
    eng = Engine("w1")
    t0 = 10**18
    assert eng.assign(_assignment("J1", 1_000, t0, 10, epoch=2))
    assert not eng.assign(_assignment("J1", 1_000, t0, 10, epoch=2))
    assert not eng.assign(_assignment("J1", 1_000, t0, 10, epoch=1))
    assert not eng.assign(_assignment("J2", 1_000, t0, 10, worker="w2"))
    assert eng.assign(_assignment("J1", 600, t0, 10, epoch=3))
    assert eng.jobs["J1"].quantity == 600
    revoke = _assignment("J1", 600, t0, 10, epoch=4).model_copy(update={"revoked": True})
    assert eng.assign(revoke) and "J1" not in eng.jobs


def test_a_redelivered_fill_counts_once() -> None:
    eng = Engine("w1")
    eng.assign(_assignment("J1", 1_000, 10**18, 10))
    eng.jobs["J1"].decisions = 1  # as if it had sent its first child order, J1.1.0
    fill = factories.fill(child_id="J1.1.0", job_id="J1", parent_id="P-J1")
    eng.on_fill(fill)
    eng.on_fill(fill)
    assert eng.jobs["J1"].filled == 100


def test_a_job_knows_the_child_ids_it_sent_by_their_count() -> None:
    eng = Engine("w1")
    eng.assign(_assignment("J1", 1_000, 10**18, 10, epoch=2))
    job = eng.jobs["J1"]
    job.decisions = 11  # it sent J1.2.0 to J1.2.10
    assert all(job.sent(f"J1.2.{n}") for n in range(11))
    refused = [
        "J1.2.11",
        "J1.2.01",
        "J1.2.",
        "J1.2.-1",
        "J1.2.1x",
        "J1.2.\u00b2",
        "J1.1.0",
        "J10.2.0",
        "J1.2",
    ]
    assert not any(job.sent(c) for c in refused)


def test_a_fill_of_another_epochs_child_is_not_counted() -> None:
    """A reassigned job's quantity already excludes what earlier epochs filled."""
    eng = Engine("w1")
    eng.assign(_assignment("J1", 1_000, 10**18, 10))
    eng.on_fill(factories.fill(fill_id="F9", child_id="J1.0.3", job_id="J1", parent_id="P-J1"))
    assert eng.jobs["J1"].filled == 0


def _policy_dir(tmp_path: Path) -> PolicyRegistry:
    torch.manual_seed(0)
    policy_files.save(PolicyNet(), tmp_path, DEFAULT_RL_POLICY, 1)  # what an RL parent gets
    return PolicyRegistry(tmp_path)


def test_rl_jobs_are_decided_in_one_batch(tmp_path: Path) -> None:
    reg = _policy_dir(tmp_path)
    t0, ticks = _first_tick()
    eng = Engine("w1", reg, spread=False)  # as when fifty jobs still share a grid (1,000: bench worker)
    for i in range(50):
        eng.assign(_assignment(f"J{i}", 2_000, t0, 10, Strategy.RL))
    pol = reg.load(DEFAULT_RL_POLICY)
    calls: list[int] = []
    original = pol.scores
    pol.scores = lambda batch: calls.append(len(batch)) or original(batch)  # type: ignore[method-assign]
    venue = Venue(eng)
    _run(eng, ticks, venue)
    assert calls and max(calls) == 50  # all fifty jobs decided in one forward pass
    assert all(venue.filled.get(f"J{i}") == 2_000 for i in range(50))


def test_a_nan_policy_falls_back_to_twap_and_is_counted(tmp_path: Path) -> None:
    reg = _policy_dir(tmp_path)
    seen: list[str] = []
    eng = Engine("w1", reg, on_fallback=seen.append)
    t0, ticks = _first_tick()
    eng.assign(_assignment("J1", 2_000, t0, 10, Strategy.RL))
    pol = reg.load(DEFAULT_RL_POLICY)
    pol.scores = lambda batch: batch[:, :6] * float("nan")  # type: ignore[method-assign]
    venue = Venue(eng)
    _run(eng, ticks, venue)
    assert pol.fallbacks > 0 and seen and seen[0] == f"{DEFAULT_RL_POLICY}@1"
    assert venue.filled["J1"] == 2_000


def test_at_the_window_end_rests_are_cancelled_first_then_the_remainder_goes_at_market() -> None:
    eng = Engine("w1")
    t0 = factories.T0
    eng.assign(_assignment("J1", 1_000, t0, 10))
    # Ending on the same ticks: a sell with a limit (its remainder goes as a limit order at that limit),
    # and one already filled (nothing left to send).
    eng.assign(_assignment("J2", 500, t0, 10, side="SELL", ord_type=OrdType.LIMIT, limit_px=99.0))
    eng.assign(_assignment("J3", 200, t0, 10))
    job, limited, full = eng.jobs["J1"], eng.jobs["J2"], eng.jobs["J3"]
    job.open["J1.1.0"] = ("J1.1.0", 300, 100.0, False)  # a resting limit order (``OpenChild``)
    job.decisions = 1  # it sent J1.1.0
    limited.filled, full.filled = 100, 200
    for j in (job, limited, full):
        eng._cols.filled[j.row] = j.filled
        eng._cols.opened(j)
    end = job.assignment.parent.end_ns
    first = eng.on_tick(factories.tick(ts_event=end, seq=2))
    assert [(a.job_id, a.action) for a in first] == [("J1", ChildAction.CANCEL), ("J2", ChildAction.NEW)]
    assert first[1].ord_type is OrdType.LIMIT and first[1].limit_px == 99.0 and first[1].quantity == 400
    assert limited.finished and full.finished and not job.finished
    assert eng.on_tick(factories.tick(ts_event=end + S, seq=3)) == []  # waits for the confirmation
    eng.on_ack(factories.ack(child_id="J1.1.0", job_id="J1", status=AckStatus.CANCELED, leaves_qty=0))
    last = eng.on_tick(factories.tick(ts_event=end + 2 * S, seq=4))
    assert len(last) == 1 and last[0].action is ChildAction.NEW and last[0].quantity == 1_000
    assert last[0].ord_type is OrdType.MARKET and job.finished
    assert eng.on_tick(factories.tick(ts_event=end + 3 * S, seq=5)) == []  # finished: nothing more
    cols = eng._cols  # the columns follow the children the window's end sent
    for j in (job, limited, full):
        assert (cols.open[j.row], cols.children[j.row]) == (j.open_qty, len(j.open)), j.job_id


@pytest.mark.parametrize("strategy", [Strategy.TWAP, Strategy.VWAP, Strategy.POV, Strategy.IS])
def test_decisions_depend_on_event_time_only(strategy: Strategy, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay at any speed is the live path: the same ticks give the same child orders whatever the wall
    clock does (here: frozen in one run, leaping hours per call in the other). Only ts_init differs."""
    import worker.engine as engine_mod

    def run(clock: Iterator[int]) -> list[dict[str, object]]:
        monkeypatch.setattr(engine_mod, "now_ns", lambda: next(clock))
        t0, ticks = _first_tick(12)
        eng = Engine("w1")
        rate = {"participation_rate": 0.1} if strategy is Strategy.POV else {}
        eng.assign(_assignment("J1", 4_000, t0, 10, strategy, **rate))
        return [a.model_dump(exclude={"ts_init", "tick_ts_init"}) for a in _run(eng, ticks)]

    frozen = iter(lambda: 1, None)
    leaping = (i * 3_600 * S for i in range(1, 10**9))
    live, replay = run(frozen), run(leaping)
    assert live and live == replay


def test_a_limit_order_resting_at_the_price_asked_for_again_keeps_its_place_in_the_queue() -> None:
    """Cancel-and-repost would join the back of the queue every decision; an order already resting where
    the new decision wants it stays, counts toward the quantity asked for, and only the rest goes out."""
    from worker.policy import Action, Agent, PriceKind

    eng = Engine("w1")
    t0 = factories.T0
    eng.assign(_assignment("J1", 2_000, t0, 10, Strategy.RL), policy=Agent())
    assert eng.on_tick(factories.tick(ts_event=t0, seq=1)) == [] and "J1" in eng.awaiting
    first = eng.act("J1", Action(PriceKind.LIMIT_TOUCH, 300))
    assert [(a.action, a.quantity, a.limit_px) for a in first] == [(ChildAction.NEW, 300, 100.00)]
    # Next decision, same bid: the order stays and 200 more join it.
    eng.on_tick(factories.tick(ts_event=t0 + 30 * S, seq=2))
    second = eng.act("J1", Action(PriceKind.LIMIT_TOUCH, 500))
    assert [(a.action, a.quantity) for a in second] == [(ChildAction.NEW, 200)]
    # Asked for less than rests: the newer order (it no longer fits) is cancelled, the older one stays.
    eng.on_tick(factories.tick(ts_event=t0 + 60 * S, seq=3))
    third = eng.act("J1", Action(PriceKind.LIMIT_TOUCH, 300))
    assert [(a.action, a.child_id) for a in third] == [(ChildAction.CANCEL, "J1.1.1")]
    # The bid moves: what rests at the old price is cancelled and the order goes out at the new touch.
    eng.on_ack(factories.ack(child_id="J1.1.1", job_id="J1", status=AckStatus.CANCELED, leaves_qty=0))
    eng.on_tick(factories.tick(ts_event=t0 + 90 * S, seq=4, bid_px=100.01, ask_px=100.02))
    fourth = eng.act("J1", Action(PriceKind.LIMIT_TOUCH, 300))
    assert [(a.action, a.child_id, a.quantity, a.limit_px) for a in fourth] == [
        (ChildAction.CANCEL, "J1.1.0", 0, None),
        (ChildAction.NEW, "J1.1.2", 300, 100.01),
    ]
    # A market decision cancels whatever rests.
    eng.on_tick(factories.tick(ts_event=t0 + 120 * S, seq=5, bid_px=100.01, ask_px=100.02))
    fifth = eng.act("J1", Action(PriceKind.MARKET, 100))
    assert [a.action for a in fifth[:-1]] == [ChildAction.CANCEL] * (len(fifth) - 1)
    assert fifth[-1].ord_type is OrdType.MARKET


def test_child_orders_carry_the_stamps_of_their_path() -> None:
    t0, ticks = _first_tick()
    eng = Engine("w1")
    eng.assign(_assignment("J1", 2_000, t0, 10))
    for tick in ticks:
        received = tick.ts_init + 3_000_000  # the worker got it 3 ms after it was published
        if out := eng.on_tick(tick, received_ns=received):
            break
    a = out[0]
    assert a.tick_ts_init == tick.ts_init and a.tick_recv_ns == received and a.ts_init >= received
    to_worker, decide, onward = a.stage_seconds(a.ts_init + 2_000_000)
    assert to_worker == pytest.approx(0.003) and decide is not None and decide >= 0
    assert onward == pytest.approx(0.002)
    assert a.model_copy(update={"tick_recv_ns": None}).stage_seconds(a.ts_init)[:2] == (None, None)


def test_jobs_sharing_a_symbol_see_the_market_as_if_each_had_its_own() -> None:
    """One tape per symbol: a job assigned later, or starting later, gets the arrival mid and the market
    volume of its own start, exactly what a job alone on a fresh engine sees."""
    ticks = list(_market(12))
    t0 = ticks[0].ts_event
    early, late = _assignment("E", 1_000, t0, 10), _assignment("L", 1_000, t0 + 95 * S, 5)
    shared = Engine("w1")
    shared.assign(early)
    alone = Engine("w1")
    for i, tick in enumerate(ticks):
        if i == 40:  # assigned mid-way, before its start
            shared.assign(late)
            alone.assign(late)
        shared.on_tick(tick)
        alone.on_tick(tick)
    for attr in ("arrival_mid", "market_volume", "interval_vwap"):
        assert getattr(shared.jobs["L"].features, attr) == getattr(alone.jobs["L"].features, attr)
    first = next(t for t in ticks if t.ts_event >= t0 + 95 * S)
    assert shared.jobs["L"].features.arrival_mid == first.mid
    traded = sum(t.trade_sz for t in ticks if t.ts_event >= t0 + 95 * S and t.trade_px is not None)
    assert shared.jobs["L"].features.market_volume == traded > 0
    assert shared.jobs["E"].features.market_volume > traded


def test_a_tick_touches_only_the_jobs_that_are_due(monkeypatch: pytest.MonkeyPatch) -> None:
    t0, ticks = _first_tick()
    eng = Engine("w1", decision_s=30)
    for i in range(200):  # staggered over the 30 s interval, as jobs arriving through the day are
        eng.assign(_assignment(f"J{i}", 10_000, t0 + i * 150_000_000, 10))
    decided: list[int] = []
    original = eng._decide
    monkeypatch.setattr(
        eng, "_decide", lambda due, tick, out, sym: decided.append(len(due)) or original(due, tick, out, sym)
    )
    tape = eng.jobs["J0"].features.tape
    assert all(j.features.tape is tape for j in eng.jobs.values())  # the market's state, once
    taken: list[int] = []
    monkeypatch.setattr(tape, "on_tick", lambda t, f=tape.on_tick: taken.append(t.seq) or f(t))
    market = list(ticks)
    _run(eng, iter(market))
    assert len(taken) == len(market)  # once per tick, not once per job
    per_interval = 200 * 10 * 60 // 30
    # Each job once per 30 s of its window, never more. Jobs 150 ms apart are moved onto grids of their own
    # after their first decision (``Engine._own_grid``), one to two intervals on: one decision fewer at most.
    assert per_interval - 200 <= sum(decided) <= per_interval
    assert max(decided) <= 25  # a tick decides only the jobs due on it: ~20 after the longest gap (2.9 s)


def test_the_columns_hand_each_live_job_its_own_row_and_reuse_a_dropped_ones() -> None:
    """Past the first 64 rows the columns grow; a dropped job's row goes to the next job, with its numbers."""
    eng = Engine("w1")
    t0 = factories.T0
    for i in range(100):
        side = "BUY" if i % 2 else "SELL"
        limit = {"ord_type": OrdType.LIMIT, "limit_px": 101.5} if i % 3 == 0 else {}
        eng.assign(_assignment(f"J{i}", 1_000 + 100 * i, t0, 10, side=side, **limit))
    freed = {eng.jobs[f"J{i}"].row for i in range(0, 100, 7)}
    for i in range(0, 100, 7):
        eng.drop(f"J{i}")
    for i in range(100, 100 + len(freed)):
        eng.assign(_assignment(f"J{i}", 500, t0, 10))
    rows = [j.row for j in eng.jobs.values()]
    assert len(set(rows)) == len(rows) == 100 and max(rows) == 99
    assert {eng.jobs[f"J{i}"].row for i in range(100, 100 + len(freed))} == freed
    cols = eng._cols
    for job in eng.jobs.values():
        p, r = job.assignment.parent, job.row
        assert (cols.quantity[r], cols.buy[r], cols.filled[r], cols.open[r]) == (
            job.quantity,
            p.side is Side.BUY,
            0,
            0,
        )
        assert cols.limit[r] == p.limit_px if p.limit_px is not None else np.isnan(cols.limit[r])


def _decisions_on_aapl(eng: Engine, ticks: Iterable[Tick]) -> tuple[dict[str, list[int]], list[int], Venue]:
    """The engine run over the AAPL ticks: when each job decided (event time), the ticks' times, the venue."""
    when: dict[str, list[int]] = {job_id: [] for job_id in eng.jobs}
    original = eng._decide

    def decide(due: list[Job], tick: Tick, out: list[ChildSpec], sym: object) -> None:
        for job in due:
            when[job.job_id].append(tick.ts_event)
        original(due, tick, out, sym)  # type: ignore[arg-type]

    eng._decide = decide  # type: ignore[method-assign]
    venue = Venue(eng)
    market = [t for t in ticks if t.symbol == "AAPL"]
    _run(eng, iter(market), venue)
    return when, [t.ts_event for t in market], venue


def test_jobs_that_start_together_decide_at_their_start_then_apart() -> None:
    """Parents sent for one start time would otherwise decide on the same ticks all day, and their child
    orders queue behind each other through the pipeline (docs/PERFORMANCE.md)."""
    t0, ticks = _first_tick()
    step = 30 * S
    eng = Engine("w1", decision_s=30)
    for i in range(20):
        eng.assign(_assignment(f"J{i}", 10_000, t0, 10, symbol=("AAPL", "MSFT")[i % 2]))
    assert {j.next_decision_ns for j in eng.jobs.values()} == {t0}  # each starts working at its start
    grids = {f"J{i}": eng._moved.get(f"J{i}", t0 + step) - t0 for i in range(20)}
    assert grids["J0"] == step  # the first keeps the grid from its start
    assert all(step <= g < 2 * step for g in grids.values())  # never two decisions within an interval
    gaps = [b - a for a, b in pairwise(sorted([*(g % step for g in grids.values()), step]))]
    assert min(gaps) >= step // 80 and max(gaps) <= step // 8, gaps  # even: 20 at random would clump
    again = Engine("w1", decision_s=30)  # the same jobs in the same order: the same grids (a replay)
    for i in range(20):
        again.assign(_assignment(f"J{i}", 10_000, t0, 10, symbol=("AAPL", "MSFT")[i % 2]))
    assert again._moved == eng._moved

    when, times, venue = _decisions_on_aapl(eng, ticks)
    end = t0 + 10 * 60 * S
    for i in range(0, 20, 2):  # the AAPL jobs: at the start, then on the first tick of each slot of its grid
        slots = [t0, *range(t0 + grids[f"J{i}"], end, step)]
        assert when[f"J{i}"] == [times[bisect.bisect_left(times, slot)] for slot in slots], i
        assert venue.filled.get(f"J{i}") == 10_000
    assert set(eng._moved) == {f"J{i}" for i in range(1, 20, 2)}  # the MSFT jobs, still before their first


def test_jobs_given_grids_decide_at_their_start_then_on_them_across_workers() -> None:
    """The health-checker places every live job's grid among all workers' jobs (``JobAssignment.grid``):
    each worker then moves even its first job there, and two workers' jobs do not meet."""
    t0, ticks = _first_tick()
    step = 30 * S
    engines = (Engine("w1", decision_s=30), Engine("w2", decision_s=30))
    points = np.empty(0, dtype=np.int64)
    grids: dict[str, float] = {}
    for i in range(20):  # as the coordinator places them, one after another
        at = widest_gap_point(points, GRID_SPAN, f"J{i}")
        points = np.sort(np.append(points, at))
        grids[f"J{i}"] = at / GRID_SPAN
        a = _assignment(f"J{i}", 10_000, t0, 10, worker=f"w{i % 2 + 1}", symbol=("AAPL", "MSFT")[i // 2 % 2])
        engines[i % 2].assign(a.model_copy(update={"grid": grids[f"J{i}"]}))
    for eng in engines:
        assert {j.next_decision_ns for j in eng.jobs.values()} == {t0}  # each starts working at its start
        assert set(eng._moved) == set(eng.jobs)  # every one moved, the first too
        for job_id, first in eng._moved.items():
            assert t0 + step <= first < t0 + 2 * step and first % step == int(grids[job_id] * step)
    phases = sorted(first % step for eng in engines for first in eng._moved.values())
    gaps = [b - a for a, b in pairwise([*phases, phases[0] + step])]
    assert min(gaps) >= step // 80 and max(gaps) <= step // 8, gaps  # even over both workers' jobs
    eng = engines[0]
    grid_of = dict(eng._moved)
    when, times, _ = _decisions_on_aapl(eng, ticks)
    aapl = [j for j, job in eng.jobs.items() if job.assignment.parent.symbol == "AAPL"]
    assert aapl
    for job_id in aapl:  # at the start, then on the first tick of each slot of the grid it was given
        slots = [t0, *range(grid_of[job_id], t0 + 10 * 60 * S, step)]
        assert when[job_id] == [times[bisect.bisect_left(times, slot)] for slot in slots], job_id


def test_a_lone_job_or_one_on_a_grid_of_its_own_keeps_its_grid() -> None:
    t0, _ = _first_tick()
    eng = Engine("w1", decision_s=30)
    eng.assign(_assignment("A", 1_000, t0, 10))
    eng.assign(_assignment("B", 1_000, t0 + 7 * S, 10))  # another grid
    eng.assign(_assignment("C", 1_000, t0 + 60 * S, 10))  # A's grid: moved
    eng.assign(_assignment("E", 1_000, t0 + 37 * S + S // 2, 10))  # half a second off B's: moved
    d = _assignment("D", 1_000, t0, 1)  # a 10 s window, over before a grid of its own would begin
    eng.assign(d.model_copy(update={"parent": d.parent.model_copy(update={"end_ns": t0 + 10 * S})}))
    assert set(eng._moved) == {"C", "E"}
    assert t0 + 90 * S <= eng._moved["C"] < t0 + 120 * S
    assert t0 + 67 * S + S // 2 <= eng._moved["E"] < t0 + 97 * S + S // 2
    eng.drop("C")
    assert set(eng._moved) == {"E"}
    aligned = Engine("w1", decision_s=30, spread=False)
    for job in "XYZ":
        aligned.assign(_assignment(job, 1_000, t0, 10))
    assert not aligned._moved


def test_rl_jobs_that_start_together_decide_as_columns_at_their_start_then_apart(tmp_path: Path) -> None:
    """Their first decision is one batch (from ``COLUMNAR_FROM`` jobs, as columns), whose next decision
    times are the grids of their own (``Engine._advance_column``)."""
    reg = _policy_dir(tmp_path)
    t0, ticks = _first_tick()
    eng = Engine("w1", reg)
    for i in range(20):
        eng.assign(_assignment(f"J{i}", 2_000, t0, 10, Strategy.RL))
    grids = {f"J{i}": eng._moved.get(f"J{i}", t0 + 30 * S) for i in range(20)}
    assert len(eng._moved) == 19
    pol = reg.load(DEFAULT_RL_POLICY)
    calls: list[int] = []
    original = pol.scores
    pol.scores = lambda batch: calls.append(len(batch)) or original(batch)  # type: ignore[method-assign]
    venue = Venue(eng)
    market = list(ticks)
    first = next(k for k, t in enumerate(market) if t.ts_event >= t0)
    _run(eng, iter(market[: first + 1]), venue)
    assert calls == [20] and not eng._moved
    assert {j: eng.jobs[j].next_decision_ns for j in grids} == grids
    _run(eng, iter(market[first + 1 :]), venue)
    assert max(calls[1:]) <= 3  # apart from then on
    assert all(venue.filled.get(f"J{i}") == 2_000 for i in range(20))
