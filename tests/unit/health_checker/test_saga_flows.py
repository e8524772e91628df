"""The parent-order saga through the real coordinator and venue on an in-memory desk."""

from __future__ import annotations

from models import ExecType, OrdStatus
from tests.desk import Desk, S, check_reports


def test_assigned_worked_and_filled() -> None:
    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    s = d.saga()
    assert s.phase == "working" and s.worker_id in ("w1", "w2") and s.epoch == 1
    w = s.worker_id
    assert w is not None and job in d.workers[w].jobs
    d.trade(w, 400)
    d.trade(w, 600)
    assert s.terminal and s.status == "filled" and s.filled == 1_000
    assert [r.exec_type for r in d.reports] == [ExecType.NEW, ExecType.TRADE, ExecType.TRADE]
    assert d.reports[-1].ord_status is OrdStatus.FILLED
    assert d.venue.jobs[job].closed
    check_reports(d.reports, {"P-1": 1_000})


def test_worker_lost_fences_cancels_and_reassigns_the_remainder() -> None:
    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    w1 = d.saga().worker_id
    assert w1 is not None
    d.trade(w1, 300)
    d.trade(w1, 200, limit=True)  # rests at the venue
    resting = [c for c in d.venue.jobs[job].open]
    assert len(resting) == 1
    d.workers[w1].alive = False
    d.advance(2)
    assert d.saga().worker_id == w1  # not yet past the timeout
    d.advance(2)
    s = d.saga()
    w2 = s.worker_id
    assert w2 is not None and w2 != w1 and s.epoch == 2
    assert d.venue.jobs[job].open == set() and d.venue.orders[resting[0]].leaves == 0
    assert d.workers[w2].jobs[job].quantity == 700
    # The zombie wakes up and tries to trade under its old epoch: refused at the venue.
    out = d.trade(w1, 100, zombie=True)
    assert out and all(getattr(m, "status", None) == "REJECTED" for m in out)
    assert "stale_epoch" in (out[0].reason or "")  # type: ignore[union-attr]
    d.trade(w2, 700)
    assert s.terminal and s.filled == 1_000 and d.venue.jobs[job].filled == 1_000
    check_reports(d.reports, {"P-1": 1_000})


def test_client_cancel_cancels_open_orders_and_closes_with_the_filled_quantity() -> None:
    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 300)
    d.trade(w, 200, limit=True)
    from models import CancelRequest

    d.coord.handle(CancelRequest(request_id="X1", parent_id="P-1", client_id="CLIENT1", ts_init=d.now))
    d.pump()
    s = d.saga()
    assert s.terminal and s.status == "cancel"
    assert d.reports[-1].exec_type is ExecType.CANCELED and d.reports[-1].cum_qty == 300
    assert d.venue.jobs[job].closed and not d.venue.jobs[job].open
    assert d.workers[w].jobs[job].revoked
    check_reports(d.reports, {"P-1": 1_000})


def test_window_end_cancels_what_rests_and_reports_done_for_day() -> None:
    d = Desk()
    d.heartbeats()
    d.submit(qty=1_000)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 100, limit=True)
    d.trade(w, 250)
    for _ in range(61):
        d.advance(10)  # 600 s window + 5 s grace, on the market clock
    s = d.saga()
    assert s.terminal and s.status == "window_end"
    last = d.reports[-1]
    assert last.exec_type is ExecType.DONE_FOR_DAY and last.cum_qty == 250 and last.leaves_qty == 0
    check_reports(d.reports, {"P-1": 1_000})


def test_no_worker_waits_bounded_and_the_client_is_told() -> None:
    d = Desk(workers=())
    d.submit(qty=500)
    s = d.saga()
    assert s.phase == "waiting"
    assert d.reports[-1].exec_type is ExecType.ORDER_STATUS and "waiting" in (d.reports[-1].text or "")
    d.advance(31)
    assert s.terminal and s.status == "no_worker"
    assert d.reports[-1].exec_type is ExecType.EXPIRED


def test_a_worker_that_joins_while_waiting_gets_the_job() -> None:
    d = Desk(workers=())
    d.submit(qty=500)
    from tests.desk import SimWorker

    d.workers["w9"] = SimWorker("w9")
    d.advance(1)
    assert d.saga().worker_id == "w9" and d.saga().phase == "working"


def test_invalid_requests_are_rejected_with_a_reason() -> None:
    from health_checker.coordinator import Config

    d = Desk(config=Config(symbols=frozenset({"AAPL"})))
    d.heartbeats()
    d.submit("P-1", symbol="ZZZZ")
    assert d.reports[-1].exec_type is ExecType.REJECTED and "unknown symbol" in (d.reports[-1].text or "")
    assert d.saga("P-1").terminal
    from models import JobRequest
    from tests.factories import parent

    old = parent(parent_id="P-2", start_ns=d.market_now - 3600 * S, end_ns=d.market_now + 60 * S)
    d.coord.handle(JobRequest(job_id="J2", parent=old, ts_init=d.now))
    d.pump()
    assert "in the past" in (d.reports[-1].text or "")
    over = parent(parent_id="P-3", start_ns=d.market_now - 7200 * S, end_ns=d.market_now - 3600 * S)
    d.coord.handle(JobRequest(job_id="J3", parent=over, ts_init=d.now))
    d.pump()
    assert "already over" in (d.reports[-1].text or "")


def test_orchestrator_restart_mid_job_loses_and_repeats_nothing() -> None:
    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 300)
    sent_before = len(d.outbox.sent)
    d.restart_orchestrator()
    d.pump()
    assert len(d.outbox.sent) == sent_before  # nothing re-published
    s = d.saga()
    assert s.filled == 300 and s.worker_id == w and s.epoch == 1
    d.trade(w, 700)
    assert s.terminal and s.filled == 1_000 == d.venue.jobs[job].filled
    check_reports(d.reports, {"P-1": 1_000})


def test_duplicate_fill_counts_once() -> None:
    d = Desk()
    d.heartbeats()
    d.submit(qty=1_000)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 300)
    d.to_hc.append(d.all_fills[0])
    d.pump()
    assert d.saga().filled == 300


def test_a_request_with_a_non_positive_quantity_never_reaches_the_saga() -> None:
    """Refused at decode with a countable reason (the bus quarantines it to the subscription's DLQ)."""
    import pytest

    from models import DecodeError, JobRequest, decode, encode
    from tests.factories import parent

    good = encode(JobRequest(job_id="J1", parent=parent(), ts_init=0))
    with pytest.raises(DecodeError) as err:
        decode(good.replace(b'"quantity":1000', b'"quantity":0'), JobRequest)
    assert err.value.reason == "invalid" and "quantity" in err.value.detail


def _amend(d: Desk, qty: int, cl: str = "C-2") -> None:
    from models import AmendRequest

    d.coord.handle(AmendRequest(request_id=f"A{qty}", parent_id="P-1", client_id="CLIENT1", cl_ord_id=cl,
                                quantity=qty, ts_init=d.now))  # fmt: skip
    d.pump()


def test_amend_below_filled_is_refused_and_above_is_applied_under_a_new_epoch() -> None:
    from models import RequestReject

    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 400)
    d.trade(w, 100, limit=True)
    _amend(d, 300)
    rejects = [m for _, e in d.outbox.sent if (m := e.message).get("kind") == "request_reject"]
    assert rejects and "below the 400" in str(rejects[-1]["reason"])
    assert d.saga().parent is not None and d.saga().parent.quantity == 1_000 and d.saga().epoch == 1  # type: ignore[union-attr]
    _amend(d, 1_500, "C-3")
    s = d.saga()
    assert s.parent is not None and s.parent.quantity == 1_500 and s.parent.cl_ord_id == "C-3"
    assert s.epoch == 2 and s.phase == "working" and not d.venue.jobs[job].open  # fenced, resting order gone
    rep = d.reports[-1]
    assert rep.exec_type is ExecType.REPLACED and rep.order_qty == 1_500 and rep.orig_cl_ord_id == "C-1"
    assert rep.cum_qty == 400 and rep.leaves_qty == 1_100
    w2 = s.worker_id
    assert w2 is not None and d.workers[w2].jobs[job].quantity == 1_100
    d.trade(w2, 1_100)
    assert s.terminal and s.filled == 1_500 == d.venue.jobs[job].filled
    check_reports(d.reports, {"P-1": 1_500})
    assert RequestReject  # the refusal above was a RequestReject


def test_cancel_of_a_closed_order_is_refused_too_late() -> None:
    from models import CancelRequest

    d = Desk()
    d.heartbeats()
    d.submit(qty=500)
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 500)
    assert d.saga().terminal
    d.coord.handle(CancelRequest(request_id="X9", parent_id="P-1", client_id="CLIENT1", cl_ord_id="C-9",
                                 ts_init=d.now))  # fmt: skip
    d.pump()
    rej = [e.message for _, e in d.outbox.sent if e.message.get("kind") == "request_reject"]
    assert rej and rej[-1]["too_late"] is True and rej[-1]["ord_status"] == "FILLED"


def test_silence_from_everything_at_once_judges_no_worker_then_grants_the_outage_to_reconnect() -> None:
    """A broker outage: no heartbeat and no tick reaches the health-checker. It cannot tell that from its
    own isolation, so it declares nobody lost while it hears nothing. Clients reconnect with a back-off that
    grows with the outage, so once inputs resume each worker gets the outage's length plus a timeout to be
    heard; after that, one silent worker among heard inputs is lost as usual."""
    d = Desk()
    d.heartbeats()
    d.submit(qty=1_000)
    s = d.saga()
    w1 = str(s.worker_id)
    d.cut_off = True  # nothing gets through: heartbeats and ticks wait with the broker
    d.advance(10)
    assert d.coord.deaf and s.worker_id == w1 and s.epoch == 1  # nobody judged while deaf
    d.cut_off = False
    d.workers[w1].alive = False  # its producer is still backing off; the market and the others are back
    d.advance(0.5)
    assert not d.coord.deaf and s.worker_id == w1 and s.epoch == 1
    d.advance(8)  # 8.5 s after: within the 10 s outage + 3 s timeout
    assert s.worker_id == w1 and s.epoch == 1
    d.advance(6)  # past it: lost, fenced, reassigned
    assert s.worker_id not in (None, w1) and s.epoch == 2


def test_a_market_that_stops_ends_the_parent_on_the_wall_clock_with_a_reason() -> None:
    """The window's end is a market-clock timer; a symbol whose data stops never reaches it. A wall-clock
    backstop (the window's span plus a grace, from the saga's start) ends the parent, and not before."""
    d = Desk()
    d.heartbeats()
    d.submit(qty=1_000)  # a 600 s window
    w = d.saga().worker_id
    assert w is not None
    d.trade(w, 300)
    d.advance(10)  # the market moves ten seconds, then its data stops

    def wall(seconds: float) -> None:  # wall time passes, workers heartbeat, no tick arrives
        for _ in range(int(seconds)):
            d.now += S
            d.heartbeats()
            d.coord.poll()
            d.pump()

    wall(600 + 5 + d.config.stale_grace_s - 20)
    assert not d.saga().terminal  # still inside the span and its grace: a slow market is not a dead one
    wall(20)
    s = d.saga()
    assert s.terminal and s.status == "stale_market"
    last = d.reports[-1]
    assert last.exec_type is ExecType.EXPIRED and last.ord_status is OrdStatus.EXPIRED
    assert last.cum_qty == 300 and last.text is not None and "no market data" in last.text
    check_reports(d.reports, {"P-1": 1_000})


def test_a_closed_job_leaves_the_venues_memory() -> None:
    from models import CancelRequest

    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    other = d.submit("P-2", qty=1_000)
    w, w2 = d.saga().worker_id, d.saga("P-2").worker_id
    assert w is not None and w2 is not None
    d.trade(w, 300)
    d.trade(w, 400, limit=True)  # rests until the close cancels it
    d.trade(w2, 100, limit=True)
    assert len(d.venue.orders) == 3
    d.coord.handle(CancelRequest(request_id="X1", parent_id="P-1", client_id="CLIENT1", cl_ord_id="C-X",
                                 ts_init=d.now))  # fmt: skip
    d.pump()
    assert d.saga().terminal and d.venue.jobs[job].closed and d.saga().filled == 300
    assert [o.action.job_id for o in d.venue.orders.values()] == [other]  # the open job's are kept


def test_a_reader_of_the_log_passes_over_only_events_without_client_reports() -> None:
    """The endpoint decodes only the saga-log events whose bytes name the reports topic
    (``may_carry_reports``): every event with a client report must pass, over fills, a worker lost and
    re-assigned, a cancel, a wait for a worker and a window's end; and most of the others are passed over."""
    from models import CancelRequest, codec
    from saga.core import client_reports, may_carry_reports

    events = []
    d = Desk()
    d.heartbeats()
    job = d.submit(qty=1_000)
    w1 = d.saga().worker_id
    assert w1 is not None and job
    d.trade(w1, 300)
    d.trade(w1, 200, limit=True)
    d.workers[w1].alive = False
    d.advance(4)
    w2 = d.saga().worker_id
    assert w2 is not None and w2 != w1
    d.coord.handle(CancelRequest(request_id="X1", parent_id="P-1", client_id="CLIENT1", ts_init=d.now))
    d.pump()
    events += d.log.events
    waiting = Desk(workers=())
    waiting.submit(qty=500)
    waiting.advance(31)
    events += waiting.log.events
    ending = Desk()
    ending.heartbeats()
    ending.submit(qty=1_000)
    w = ending.saga().worker_id
    assert w is not None
    ending.trade(w, 250)
    for _ in range(61):
        ending.advance(10)
    events += ending.log.events
    with_reports = [e for e in events if client_reports(e)]
    passed = [e for e in events if not may_carry_reports(codec.encode(e))]
    assert len(with_reports) >= 8
    assert all(may_carry_reports(codec.encode(e)) for e in with_reports)
    assert not any(client_reports(e) for e in passed)
    assert len(passed) >= (len(events) - len(with_reports)) * 3 // 4  # the point: most are never decoded


def test_a_new_told_before_a_commit_that_failed_is_decided_again_to_the_same_report() -> None:
    """The New told early (``Orchestrator.on_decided``): the leader fails at the append, and its successor,
    given the stored request, decides it again to a New with the same report id (the client's copy is then
    a duplicate). Had the window closed meanwhile, it decides a refusal, which the desk tells as a cancel
    (``OrderDesk._refused_after_new``)."""
    import pytest

    from models import ExecutionReport, JobRequest
    from saga import LeaseLostError
    from saga.core import client_reports
    from tests.factories import parent

    def early(d: Desk) -> list[ExecutionReport]:
        told: list[ExecutionReport] = []
        d.coord.orch.on_decided = lambda e: told.extend(client_reports(e, ExecType.NEW))
        return told

    for closed in (False, True):
        d = Desk()
        d.heartbeats()
        told = early(d)
        p = parent(start_ns=d.market_now, end_ns=d.market_now + 60 * S)
        req = JobRequest(job_id="JP-1", parent=p, ts_init=d.now)
        d.log.fenced = True
        with pytest.raises(LeaseLostError):
            d.coord.handle(req)
        assert [r.exec_type for r in told] == [ExecType.NEW] and d.reports == []
        d.log.fenced = False
        if closed:
            d.market(120)
        d.restart_orchestrator()
        d.coord.handle(req)  # the stored request, redelivered to the successor
        d.pump()
        first = d.reports[0]
        if closed:
            assert (first.exec_type, first.parent_id) == (ExecType.REJECTED, told[0].parent_id)
        else:
            assert first.exec_type is ExecType.NEW and first.report_id == told[0].report_id
            same = ("parent_id", "cl_ord_id", "ord_status", "order_qty", "cum_qty", "leaves_qty", "avg_px")
            assert all(getattr(first, f) == getattr(told[0], f) for f in same)


def test_parents_for_one_start_time_get_decision_grids_spread_over_all_workers() -> None:
    """Each worker would place its own jobs evenly, but two workers' sets would interleave at random and
    each one's first job keep the common start's grid: the health-checker places every live job's grid
    among all of them (``models.grid``), and a job keeps its grid when it is reassigned."""
    d = Desk(workers=("w1", "w2", "w3"))
    d.heartbeats()
    for i in range(20):
        d.submit(f"P-{i}", qty=1_000)
    grids = {pid: d.saga(pid).grid for pid in (f"P-{i}" for i in range(20))}
    assert None not in grids.values() and d.coord.grids == grids
    for w in d.workers.values():  # each assignment carries its saga's grid
        assert all(job.grid == grids[job.parent_id] for job in w.jobs.values())
    assert {d.saga(pid).worker_id for pid in grids} == {"w1", "w2", "w3"}
    points = sorted(g for g in grids.values() if g is not None)
    gaps = [b - a for a, b in zip(points, [*points[1:], points[0] + 1.0], strict=True)]
    # Each placed in the widest gap's middle half: never closer than a quarter of 1/19. Twenty points at
    # random are that far apart about once in 240 draws.
    assert min(gaps) >= 1 / 80 and max(gaps) <= 1 / 8, gaps
    lost = d.saga("P-0").worker_id
    assert lost is not None
    d.workers[lost].alive = False
    d.advance(4)
    again = d.saga("P-0")
    assert again.worker_id not in (None, lost) and again.epoch == 2
    assert again.grid == grids["P-0"] and d.coord.grids["P-0"] == grids["P-0"]
    assert d.workers[again.worker_id].jobs[again.job_id].grid == grids["P-0"]
    d.restart_orchestrator()  # recovery rebuilds the grids in use from the log
    assert d.coord.grids == grids
    for w in d.workers.values():  # no worker left: the jobs wait, and keep their places meanwhile
        w.alive = False
    d.advance(4)
    assert all(d.saga(pid).worker_id is None for pid in grids) and d.coord.grids == grids
