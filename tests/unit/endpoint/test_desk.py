"""The order desk on its own (no transport, no broker): what it refuses at once, and what it publishes."""

from __future__ import annotations

import math

from endpoint.config import Limits
from endpoint.desk import OrderDesk
from endpoint.risk import RiskGate
from models import ExecType, ExecutionReport, JobRequest, Message, OrdStatus, new_report
from tests.factories import T0, parent, report, tick


def _desk(*, new_on_store: bool = False) -> tuple[OrderDesk, list[Message]]:
    sent: list[Message] = []
    risk = RiskGate({"CLIENT1": Limits()})
    desk = OrderDesk(lambda topic, m, key: sent.append(m), risk, ("AAPL", "NVDA"), new_on_store=new_on_store)
    return desk, sent


def test_a_configured_symbol_that_has_never_ticked_is_refused_at_once() -> None:
    """Its saga's window runs on the symbol's market clock, which would never start: the parent would hang."""
    desk, sent = _desk()
    desk.tca.on_tick(tick(symbol="AAPL"))
    refusal = desk.submit(parent(symbol="NVDA", cl_ord_id="C-1", parent_id="CLIENT1.C-1"))
    assert refusal is not None and refusal.code == "no_market_data"
    assert refusal.text == "no market data for NVDA" and sent == []
    assert desk.submit(parent(symbol="AAPL", cl_ord_id="C-2", parent_id="CLIENT1.C-2")) is None
    assert [type(m) for m in sent] == [JobRequest]
    refused = desk.submit(parent(symbol="TSLA", cl_ord_id="C-3", parent_id="CLIENT1.C-3"))
    assert refused is not None and refused.code == "unknown_symbol"


def test_orders_from_many_threads_while_ticks_flow_keep_every_structure_consistent() -> None:
    """FIX and native threads submit and cancel while the listener thread moves the market, applies fills
    and checks child orders: no error from a structure changed under an iteration, nothing lost."""
    import threading

    from models import ChildAction, ChildOrderAction, OrdType, Side
    from tests.factories import T0

    desk, sent = _desk()
    desk.risk.limits["CLIENT1"] = Limits(max_orders_per_s=1e9, max_children_per_s=1e9,
                                         max_open_notional=1e15, max_position=10**9)  # fmt: skip
    desk.tca.on_tick(tick(symbol="AAPL"))
    errors: list[BaseException] = []
    stop = threading.Event()
    n_threads, per_thread = 4, 300

    def client(k: int) -> None:
        try:
            for i in range(per_thread):
                cl = f"T{k}-{i}"
                assert desk.submit(parent(symbol="AAPL", cl_ord_id=cl, parent_id=f"CLIENT1.{cl}",
                                          start_ns=T0 + i)) is None  # fmt: skip
                if i % 3 == 0:
                    desk.cancel("CLIENT1", f"X{k}-{i}", cl)
                desk.open_notional("CLIENT1")
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    def listener() -> None:
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                desk.tca.on_tick(
                    tick(symbol="AAPL", seq=seq, ts_event=T0 + seq, trade_px=100.0, trade_sz=100)
                )
                desk.risk.on_fill("CLIENT1", "AAPL", Side.BUY, 100)
                child = ChildOrderAction(
                    action=ChildAction.NEW, child_id=f"c{seq}", job_id="J", parent_id="P", worker_id="w",
                    epoch=1, symbol="AAPL", side=Side.BUY, quantity=100, ord_type=OrdType.MARKET,
                    ts_event=T0, ts_init=T0,
                )  # fmt: skip
                desk.risk.check_child("CLIENT1", child, desk.tca.mid("AAPL"))
                desk.tca.finish(f"CLIENT1.T0-{seq % per_thread}", 100.0, 0, 100)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_threads)]
    feed = threading.Thread(target=listener)
    feed.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    feed.join()
    assert errors == []
    assert len(desk.orders) == n_threads * per_thread
    assert sum(isinstance(m, JobRequest) for m in sent) == n_threads * per_thread


def test_reports_reach_the_client_once_and_a_closed_order_keeps_no_report_ids() -> None:
    """Redelivered reports are dropped; once an order's terminal report is delivered its ids are let go
    (a day of reports does not pile up) and anything later for it is a duplicate."""
    from models import ExecType, OrdStatus
    from tests.factories import report

    desk, _ = _desk()
    got: list[str] = []
    desk.attach("CLIENT1", lambda m: got.append(getattr(m, "report_id", "?")))
    r1 = report(report_id="P-1.1", parent_id="P-1")
    r2 = report(report_id="P-1.2", parent_id="P-1", exec_type=ExecType.TRADE, ord_status=OrdStatus.FILLED,
                cum_qty=1000, leaves_qty=0)  # fmt: skip
    other = report(report_id="P-2.1", parent_id="P-2", cl_ord_id="C-2")
    for m in (r1, r1, other, r2, r1, r2):
        desk.on_report(m)
    assert got == ["P-1.1", "P-2.1", "P-1.2"]
    assert "P-1" not in desk.seen_reports and desk.seen_reports["P-2"] == {"P-2.1"}
    assert "P-1" in desk.finished


def _scan(desk: OrderDesk, client_id: str) -> float:
    """The client's open notional by its definition: every live parent's leaves at its limit, else its mid."""
    total = 0.0
    for o in desk.orders.values():
        if o.live and o.parent.client_id == client_id:
            px = o.parent.limit_px or desk.tca.mid(o.parent.symbol) or 0.0
            total += px * (o.parent.quantity - o.cum_qty)
    return total


def test_open_notional_kept_as_orders_change_equals_a_scan_of_every_order() -> None:
    """The desk keeps each client's open notional as its orders change (new, partly filled, resized,
    finished, rebuilt after a restart); at every step it equals the sum over all orders, and a moving mid
    revalues the market parents."""
    import random

    from models import ExecType, OrdStatus, OrdType
    from tests.factories import T0, report

    rng = random.Random(7)
    desk, _ = _desk()
    desk.risk.limits["CLIENT1"] = Limits(max_orders_per_s=1e9, max_open_notional=1e15, max_position=10**9)
    desk.tca.on_tick(tick(symbol="AAPL"))
    desk.tca.on_tick(tick(symbol="NVDA"))
    reports = []
    for i in range(300):
        step = rng.random()
        live = [o for o in desk.orders.values() if o.live]
        if step < 0.4 or not live:
            limit = rng.choice([None, 99.5, 100.25])
            kind = OrdType.MARKET if limit is None else OrdType.LIMIT
            p = parent(symbol=rng.choice(["AAPL", "NVDA"]), cl_ord_id=f"C-{i}", parent_id=f"CLIENT1.C-{i}",
                       quantity=rng.randrange(100, 5_000, 100), start_ns=T0 + i, ord_type=kind,
                       limit_px=limit)  # fmt: skip
            assert desk.submit(p) is None
        elif step < 0.9:
            o = rng.choice(live)
            qty = o.parent.quantity + rng.choice([0, 0, 500, -o.parent.quantity // 2])
            cum = min(qty, o.cum_qty + rng.randrange(0, 400, 100))
            status = rng.choice(
                [OrdStatus.PARTIALLY_FILLED, OrdStatus.NEW, OrdStatus.FILLED, OrdStatus.CANCELED]
            )
            m = report(report_id=f"R-{i}", parent_id=o.parent.parent_id, cl_ord_id=o.cl_ord_id,
                       symbol=o.parent.symbol, exec_type=ExecType.TRADE, ord_status=status, order_qty=qty,
                       cum_qty=cum, leaves_qty=0 if status.terminal else qty - cum, is_bps=0.0)  # fmt: skip
            reports.append(m)
            desk.on_report(m)
        else:
            desk.tca.on_tick(tick(symbol=rng.choice(["AAPL", "NVDA"]), seq=i, ts_event=T0 + i,
                                  bid_px=100.0 + i / 100, ask_px=100.02 + i / 100))  # fmt: skip
        assert math.isclose(
            desk.open_notional("CLIENT1"), _scan(desk, "CLIENT1"), rel_tol=1e-12, abs_tol=1e-6
        )
    assert _scan(desk, "CLIENT1") > 0 and desk.open_notional("OTHER") == 0.0
    # A restarted desk rebuilt from the same reports sums what a scan of its rebuilt orders sums.
    again, _ = _desk()
    again.tca.on_tick(tick(symbol="AAPL"))
    again.tca.on_tick(tick(symbol="NVDA"))
    again.rebuild(reports)
    assert math.isclose(again.open_notional("CLIENT1"), _scan(again, "CLIENT1"), rel_tol=1e-12, abs_tol=1e-6)


# --- a New told before its commit (``early_new``) -----------------------------------------------------------
def _new(pid: str = "CLIENT1.C-1", rid: str = "S.1") -> ExecutionReport:
    return report(report_id=rid, parent_id=pid, cl_ord_id="C-1", exec_type=ExecType.NEW,
                  ord_status=OrdStatus.NEW, last_qty=0, last_px=None, cum_qty=0, leaves_qty=1000,
                  avg_px=0.0)  # fmt: skip


def _attached(*, new_on_store: bool = False) -> tuple[OrderDesk, list[Message]]:
    desk, _sent = _desk(new_on_store=new_on_store)
    got: list[Message] = []
    desk.attach("CLIENT1", got.append)
    desk.tca.on_tick(tick(symbol="AAPL"))
    assert desk.submit(parent(cl_ord_id="C-1", parent_id="CLIENT1.C-1")) is None
    return desk, got


def test_an_early_new_is_told_once_its_request_is_stored_whichever_comes_first() -> None:
    from prometheus_client import REGISTRY

    def waits(second: str) -> float:
        name = "paceline_endpoint_early_new_wait_seconds_count"
        return REGISTRY.get_sample_value(name, {"second": second}) or 0.0

    for order in ("new first", "stored first"):
        before = {s: waits(s) for s in ("decision", "store")}
        desk, got = _attached()
        if order == "new first":
            desk.early_new(_new())
            assert got == []  # the request is not stored yet: a crash now could lose the order
            desk.request_stored("CLIENT1.C-1", True)
        else:
            desk.request_stored("CLIENT1.C-1", True)
            assert got == []
            desk.early_new(_new())
        assert got == [_new()], order
        second = "store" if order == "new first" else "decision"  # which half of the rule it waited for
        assert {s: waits(s) - before[s] for s in before} == {s: float(s == second) for s in before}
        desk.on_report(_new())  # the commit's copy, from the log and again from the reports topic
        desk.on_report(_new())
        assert got == [_new()], order
        assert desk.orders["CLIENT1.C-1"].last == _new()


def test_an_early_new_whose_request_was_not_stored_is_never_told_early() -> None:
    desk, got = _attached()
    desk.early_new(_new())
    desk.request_stored("CLIENT1.C-1", False)
    assert got == []
    desk.on_report(_new())  # if the saga decided it from the twin, its commit tells it
    assert got == [_new()]


def test_an_early_new_for_another_endpoints_order_waits_for_its_commit_here() -> None:
    desk, got = _attached()
    other = _new(pid="CLIENT1.C-9", rid="T.1").model_copy(update={"cl_ord_id": "C-9"})
    desk.early_new(other)
    assert got == [] and "CLIENT1.C-9" in desk._held
    desk.on_report(other)  # its commit's copy
    assert got == [other] and "CLIENT1.C-9" not in desk._held
    desk.early_new(other)  # a copy after the commit's is a duplicate, and is not kept
    assert got == [other] and "CLIENT1.C-9" not in desk._held


def test_a_refusal_after_an_early_new_is_told_as_a_cancel() -> None:
    """The leader that told New failed before its commit, and its successor refused the stored request (the
    window closed meanwhile). Even a refusal with the New's own report id is told, as a cancel, id its own."""
    desk, got = _attached()
    desk.request_stored("CLIENT1.C-1", True)
    desk.early_new(_new())
    window = "the order's window is already over"
    refused = _new().model_copy(update={"exec_type": ExecType.REJECTED, "ord_status": OrdStatus.REJECTED,
                                        "leaves_qty": 0, "text": window})  # fmt: skip
    desk.on_report(refused)
    desk.on_report(refused)  # again from the reports topic
    assert len(got) == 2
    cancel = got[1]
    assert isinstance(cancel, ExecutionReport)
    assert (cancel.exec_type, cancel.ord_status) == (ExecType.CANCELED, OrdStatus.CANCELED)
    assert cancel.report_id == "S.1.cancel" and cancel.text == f"cancelled: {window}"
    assert not desk.orders["CLIENT1.C-1"].live


def test_a_refusal_with_no_new_before_it_stays_a_refusal() -> None:
    desk, got = _attached()
    refused = _new().model_copy(update={"exec_type": ExecType.REJECTED, "ord_status": OrdStatus.REJECTED,
                                        "leaves_qty": 0, "text": "unknown symbol"})  # fmt: skip
    desk.on_report(refused)
    assert [(m.report_id, m.exec_type, m.text) for m in got if isinstance(m, ExecutionReport)] == [
        ("S.1", ExecType.REJECTED, "unknown symbol")
    ]


def test_one_parents_reports_from_two_threads_are_delivered_one_at_a_time_in_order() -> None:
    """An early New is delivered from the client's I/O thread while the listener's may already hold the
    parent's next report: the second waits for the first, and is delivered after it, by the first's thread."""
    import threading

    desk, _sent = _desk()
    got: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def sink(m: Message) -> None:
        assert isinstance(m, ExecutionReport)
        if m.report_id == "S.1":
            entered.set()
            assert release.wait(10)
        got.append(m.report_id)

    desk.attach("CLIENT1", sink)
    first = threading.Thread(target=desk.on_report, args=(_new(),))
    first.start()
    assert entered.wait(10)
    trade = report(report_id="S.2", parent_id="CLIENT1.C-1")
    desk.on_report(trade)  # returns at once: the first thread delivers it next
    desk.on_report(_new())  # the New's other copy, queued too, then passed over as a duplicate
    other = report(report_id="U.1", parent_id="CLIENT1.C-7", cl_ord_id="C-7")
    desk.on_report(other)  # another parent's is not held up
    assert got == ["U.1"]
    release.set()
    first.join(10)
    assert got == ["U.1", "S.1", "S.2"]
    assert desk._busy == {}


def test_a_window_the_saga_would_refuse_is_refused_at_the_desk() -> None:
    """The saga's admission rule (``models.window_refusal``), on the market clock the order was stamped
    with: an order told New once its request is stored must not be one the saga refuses."""
    desk, sent = _desk()
    desk.tca.on_tick(tick(symbol="AAPL"))
    over = desk.submit(parent(cl_ord_id="C-1", parent_id="CLIENT1.C-1", end_ns=T0, start_ns=T0 - 10**9))
    assert over is not None and (over.code, over.text) == ("window", "the order's window is already over")
    old = desk.submit(parent(cl_ord_id="C-2", parent_id="CLIENT1.C-2", start_ns=T0 - 61 * 10**9))
    assert old is not None and (old.code, old.text) == ("window", "start is more than 60 s in the past")
    assert sent == [] and desk.orders == {}
    assert desk.submit(parent(cl_ord_id="C-3", parent_id="CLIENT1.C-3", start_ns=T0 - 59 * 10**9)) is None


# --- a New on its request's store (``new_on_store``) ------------------------------------------------------
def _stage_count(stage: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("paceline_endpoint_ack_stage_seconds_count", {"stage": stage}) or 0.0


def test_on_the_store_the_new_is_told_as_the_saga_builds_it_and_its_copies_are_duplicates() -> None:
    before = _stage_count("store")
    desk, got = _attached(new_on_store=True)
    assert got == []  # not stored yet: a crash now could lose the order
    desk.request_stored("CLIENT1.C-1", True)
    p = desk.orders["CLIENT1.C-1"].parent
    assert len(got) == 1 and isinstance(got[0], ExecutionReport)
    saga_new = new_report(p, T0)  # what the saga decides the stored request to
    assert got[0].model_copy(update={"ts_event": T0, "ts_init": T0}) == saga_new
    assert _stage_count("store") == before + 1
    desk.early_new(saga_new)  # its copy on the reports' twin, from the log and from the reports topic
    desk.on_report(saga_new)
    desk.on_report(saga_new)
    desk.request_stored("CLIENT1.C-1", True)  # a second receipt (never sent; changes nothing)
    assert len(got) == 1 and desk._held == {} and desk._stored == {}


def test_on_the_store_a_request_not_stored_is_not_told_and_its_commit_is() -> None:
    desk, got = _attached(new_on_store=True)
    desk.request_stored("CLIENT1.C-1", False)
    assert got == []
    p = desk.orders["CLIENT1.C-1"].parent
    desk.on_report(new_report(p, T0))  # if the saga decided it from the twin, its commit tells it
    assert got == [new_report(p, T0)]


def test_on_the_store_a_commit_that_came_first_is_not_told_again() -> None:
    desk, got = _attached(new_on_store=True)
    p = desk.orders["CLIENT1.C-1"].parent
    desk.on_report(new_report(p, T0))
    desk.request_stored("CLIENT1.C-1", True)
    assert got == [new_report(p, T0)]


def test_on_the_store_a_refusal_the_saga_decides_later_is_told_as_a_cancel() -> None:
    """The saga's clock passed the window between the desk's check and the saga's: told New on the store,
    the client is told the refusal as a cancel."""
    desk, got = _attached(new_on_store=True)
    desk.request_stored("CLIENT1.C-1", True)
    refused = report(report_id="CLIENT1.C-1.1", parent_id="CLIENT1.C-1", cl_ord_id="C-1",
                     exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, last_qty=0, last_px=None,
                     cum_qty=0, leaves_qty=0, avg_px=0.0,
                     text="the order's window is already over")  # fmt: skip
    desk.on_report(refused)
    assert [(m.exec_type, m.ord_status) for m in got if isinstance(m, ExecutionReport)] == [
        (ExecType.NEW, OrdStatus.NEW),
        (ExecType.CANCELED, OrdStatus.CANCELED),
    ]
    assert not desk.orders["CLIENT1.C-1"].live
