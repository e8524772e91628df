"""Property-based: random interleavings of child orders, fills, duplicates, cancels, amendments, worker
deaths and restarts, and orchestrator restarts, driven through the saga, the coordinator and the venue.
Whatever happens: filled <= ordered, no child order id traded twice, every fill counted exactly once, the
client's reports consistent, and terminal states final."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import AmendRequest, CancelRequest, Fill
from tests.desk import Desk, SimWorker, check_reports

QTY = 2_000
PARENTS = ("P-1", "P-2")

step = st.one_of(
    st.tuples(
        st.just("trade"), st.sampled_from(["w1", "w2", "w3"]), st.integers(1, 12).map(lambda n: n * 100)
    ),
    st.tuples(st.just("rest"), st.sampled_from(["w1", "w2", "w3"]), st.integers(1, 6).map(lambda n: n * 100)),
    st.tuples(st.just("zombie"), st.sampled_from(["w1", "w2", "w3"]), st.just(100)),
    st.tuples(st.just("resend"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("dup_fill"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("kill"), st.sampled_from(["w1", "w2", "w3"]), st.just(0)),
    st.tuples(
        st.just("partition"), st.sampled_from(["w1", "w2", "w3"]), st.integers(1, 5).map(lambda n: n * 100)
    ),
    st.tuples(st.just("restart_worker"), st.sampled_from(["w1", "w2", "w3"]), st.just(0)),
    st.tuples(st.just("revive"), st.sampled_from(["w1", "w2", "w3"]), st.just(0)),
    st.tuples(st.just("advance"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("restart_hc"), st.just(""), st.just(0)),
    st.tuples(st.just("crash_hc_with_backlog"), st.just(""), st.just(0)),
    st.tuples(st.just("cancel"), st.sampled_from(PARENTS), st.just(0)),
    st.tuples(st.just("amend"), st.sampled_from(PARENTS), st.integers(1, 30).map(lambda n: n * 100)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
def test_invariants_hold_under_any_interleaving(steps: list[tuple[str, object, int]]) -> None:
    d = Desk(workers=("w1", "w2", "w3"))
    d.heartbeats()
    for pid in PARENTS:
        d.submit(pid, qty=QTY)
    for step_kind, arg, n in steps:
        kind = step_kind
        if kind == "partition":  # cut off past the timeout, then it trades on as a zombie
            d.workers[str(arg)].alive = False
            d.advance(4)
            kind = "zombie"
        if kind in ("trade", "rest", "zombie"):
            w = d.workers[str(arg)]
            # Jobs this worker holds under an epoch the venue has already fenced: they must not trade.
            # (the desk delivers everything at once, so a saga's fence is confirmed by now)
            fenced = {j for j, sj in w.jobs.items() if sj.epoch < d.saga(sj.parent_id).epoch}
            out = d.trade(w.worker_id, n, limit=kind == "rest", zombie=kind == "zombie")
            assert not [m for m in out if isinstance(m, Fill) and m.job_id in fenced], "a fenced epoch traded"
        elif kind == "resend" and d.venue.orders:
            orders = list(d.venue.orders.values())
            d.resend(orders[int(arg) % len(orders)].action)  # a re-sent child order: same id
        elif kind == "dup_fill" and d.all_fills:
            d.to_hc.append(d.all_fills[int(arg) % len(d.all_fills)])  # a redelivered fill
            d.pump()
        elif kind == "kill":
            d.workers[str(arg)].alive = False
        elif kind == "restart_worker":
            d.workers[str(arg)] = SimWorker(str(arg), incarnation=uuid.uuid4().hex[:8])
            d.heartbeats()
            d.pump()
        elif kind == "revive":
            d.workers[str(arg)].alive = True
        elif kind == "advance":
            d.advance(int(arg))
        elif kind == "restart_hc":
            d.restart_orchestrator()
            d.pump()
        elif kind == "crash_hc_with_backlog":
            d.restart_orchestrator()  # fills queued for the old one go to the new one
        elif kind == "amend":
            am = AmendRequest(request_id=uuid.uuid4().hex, parent_id=str(arg), client_id="CLIENT1",
                              cl_ord_id=uuid.uuid4().hex[:8], quantity=n, ts_init=d.now)  # fmt: skip
            d.coord.handle(am)
            d.pump()
        elif kind == "cancel":
            d.coord.handle(CancelRequest(request_id=uuid.uuid4().hex, parent_id=str(arg), client_id="CLIENT1",
                                         ts_init=d.now))  # fmt: skip
            d.pump()
        _check(d)
    # Let everything finish: workers come back and trade out, the windows end.
    for w in d.workers.values():
        w.alive = True
    for _ in range(70):
        d.advance(10)
        for w in list(d.workers):
            d.trade(w, 500)
    _check(d)
    for pid in PARENTS:
        s = d.saga(pid)
        assert s.terminal, f"{pid} did not finish: {s.phase} {s.stack}"
        job = d.venue.jobs[s.job_id]
        assert s.filled == job.filled, "a fill was lost or counted twice"
        assert job.closed and not job.open
        final = [r for r in d.reports if r.parent_id == pid][-1]
        assert final.ord_status.terminal and final.cum_qty == s.filled


def _check(d: Desk) -> None:
    # Each worker's load as the coordinator keeps it, transaction by transaction, is what the sagas hold.
    held: dict[str, int] = {}
    for saga in d.coord.orch.live():
        if saga.worker_id is not None:
            held[saga.worker_id] = held.get(saga.worker_id, 0) + 1
    assert d.coord.load == held
    # So are the grids in use (a new job's goes between them), and a job keeps its grid through every
    # reassignment: each assignment the workers received carries the grid its saga holds.
    assert d.coord.grids == {s.saga_id: s.grid for s in d.coord.orch.live() if s.grid is not None}
    for w in d.workers.values():
        for job in w.jobs.values():
            assert job.grid is not None and job.grid == d.saga(job.parent_id).grid
    fills_by_id: dict[str, Fill] = {}
    for f in d.all_fills:
        assert f.fill_id not in fills_by_id, "the venue issued one fill id twice"
        fills_by_id[f.fill_id] = f
    for pid in PARENTS:
        s = d.saga(pid)
        job = d.venue.jobs[s.job_id]
        qty = s.parent.quantity if s.parent else QTY
        assert job.filled <= qty and s.filled <= qty and s.over_executed == 0
        assert s.filled <= job.filled  # the saga never counts more than the venue executed
        assert s.filled == sum(fills_by_id[f].qty for f in s.fills)
    traded = [o.action.child_id for o in d.venue.orders.values()]
    assert len(traded) == len(set(traded))
    check_reports(d.reports, {pid: max(3_000, QTY) for pid in PARENTS})
