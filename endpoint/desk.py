"""The order desk: what FIX and the native protocol share. Transport-agnostic and thread-safe.

- ``new_order`` turns what a client sent (either protocol) into the ``ParentOrder`` and submits it;
  ``submit`` checks the order (universe, market data seen, duplicate ClOrdID, the saga's window rule,
  pre-trade risk) and either refuses it at once (the caller answers Rejected) or publishes a ``JobRequest``
  for the saga, which decides it: its New, or, with ``new_on_store``, the desk's copy of it once the
  request is stored.
- ``cancel`` / ``amend`` resolve the client's OrigClOrdID to the parent and publish the request; what
  cannot be honoured here (unknown order, already closed) is refused at once, the rest by the saga.
- Every ``ExecutionReport`` and ``RequestReject`` the saga publishes goes through ``on_report``: the
  order table is updated, TCA is added to a final report, and the client's sinks get it, once per
  report id (a redelivery after a restart is dropped).
- A new order's New is told before the saga's commit (``early_new``), once the broker has stored the
  order's request (``request_stored``), so a saga's leader or its successor will decide it. With
  ``new_on_store`` the desk builds it then (``models.new_report``, the saga's own, after the saga's
  admission rule in ``submit``); without, it waits for the leader's decision too, the saga's New on the
  reports' twin (``early_new``). A refusal that follows such a New is told as a cancel.
- Parent ids derive from (client, ClOrdID), so an order re-sent after a crash is the same parent.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from endpoint.risk import Refusal, RiskGate
from market.prices import to_float, to_units
from market.session import session_close_ns
from market.tca import Tca
from models import (
    ACK_STAGES,
    AmendRequest,
    CancelRequest,
    ExecType,
    ExecutionReport,
    JobRequest,
    Message,
    OrdStatus,
    OrdType,
    ParentOrder,
    RequestReject,
    Side,
    Strategy,
    TcaRecord,
    TimeInForce,
    new_report,
    now_ns,
    topics,
    window_refusal,
)
from runtime.metrics import LATENCY_BUCKETS

ORDERS = Counter("paceline_endpoint_orders_total", "Client requests by kind and outcome", ["kind", "outcome"])
REFUSED = Counter(
    "paceline_risk_refusals_total", "Orders refused by the risk gate, by reason", ["scope", "reason"]
)
REPORTS_OUT = Counter("paceline_endpoint_reports_total", "Reports delivered to clients", ["kind"])
EARLY_NEW = Counter(
    "paceline_endpoint_early_new_total",
    "News told before their commit: told (the request stored; a copy that comes later is dropped), "
    "lost (the request's store failed), refused (a refusal came after one and was told as a cancel)",
    ["outcome"],
)
# Which half of an early New's rule came second, and how long the first had waited for it: what bounds a
# New's round trip (docs/PERFORMANCE.md, session 23: the decision's branch or the request's store).
EARLY_NEW_WAIT = Histogram(
    "paceline_endpoint_early_new_wait_seconds",
    "A New told early: how long its first half waited for the second, by which came second (decision: the "
    "saga's New after the request's store; store: the store after the New)",
    ["second"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
_WAITED_FOR = {"decision": EARLY_NEW_WAIT.labels("decision"), "store": EARLY_NEW_WAIT.labels("store")}
# News waiting for their request's store, and stores waiting for their New, kept at most this many each:
# a New for another endpoint's order never meets a store here.
EARLY_KEPT = 10_000
ACK_STAGE = Histogram(
    "paceline_endpoint_ack_stage_seconds",
    "A new order's acknowledgement, by stage (ACK_STAGES; a New told on its request's store: desk, store, "
    "to_client)", ["stage"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,60}$")

Publish = Callable[[str, Message, str], None]  # topic, message, key
Sink = Callable[[Message], None]
MarketNow = Callable[[str], int | None]  # a symbol's market clock (ns), None before its first tick


@dataclass(frozen=True)
class NewOrder:
    """A new parent order as either protocol reads it, before the desk gives it its ids and its clock.
    No start: now on the symbol's market clock; no end: that day's close."""

    cl_ord_id: str
    symbol: str
    side: Side
    quantity: int
    ord_type: OrdType = OrdType.MARKET
    limit_px: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    start_ns: int | None = None
    end_ns: int | None = None
    strategy: Strategy = Strategy.TWAP
    participation_rate: float | None = None
    policy: str | None = None
    recv_ns: int | None = None  # wall clock: the client's message reached the endpoint (the ack's trace)


def parent_id_for(client_id: str, cl_ord_id: str) -> str:
    """Deterministic: the same client order always maps to the same parent (and saga)."""
    if _ID.match(cl_ord_id):
        return f"{client_id}.{cl_ord_id}"
    return f"{client_id}.h{hashlib.sha256(cl_ord_id.encode()).hexdigest()[:24]}"


@dataclass
class Order:
    parent: ParentOrder
    cl_ord_id: str
    status: OrdStatus = OrdStatus.NEW
    cum_qty: int = 0
    avg_px: float = 0.0
    last: ExecutionReport | None = None
    cl_ord_ids: set[str] = field(default_factory=set)
    recv_ns: int | None = None  # wall clock: the client's message in, and its request out (ACK_STAGE)
    sent_ns: int | None = None

    @property
    def live(self) -> bool:
        return not self.status.terminal


class _Exposure:
    """A client's live parents' leaves, summed as ``open_notional`` values them: a limit parent's at its
    limit (in price units, exact), a market parent's by symbol, valued at the symbol's mid when asked. Kept
    as each order changes, so the check on a new order costs the client's symbols, not every parent the desk
    has seen that day, live or not (a scan of them took 52 µs at 200 parents and 3.4 ms at 10,000, under the
    desk's lock, on every new order; the sums take 0.4 µs)."""

    __slots__ = ("at_limit", "at_mid")

    def __init__(self) -> None:
        self.at_limit = 0  # sum of to_units(limit) * leaves
        self.at_mid: dict[str, int] = {}  # leaves by symbol


class OrderDesk:
    def __init__(
        self, publish: Publish, risk: RiskGate, symbols: tuple[str, ...], tca: Tca | None = None, *,
        new_on_store: bool = False,
    ) -> None:  # fmt: skip
        self.publish = publish
        self.new_on_store = new_on_store
        self.risk = risk
        self.symbols = frozenset(symbols)
        self.tca = tca or Tca()
        self.orders: dict[str, Order] = {}
        self.by_cl: dict[tuple[str, str], str] = {}
        self.sinks: dict[str, list[Sink]] = {}
        # Report ids delivered, per parent while it is open; once its terminal report (the saga's last) is
        # delivered, the parent's ids go and any later report for it is a duplicate (``finished``).
        self.seen_reports: dict[str, set[str]] = {}
        self.finished: set[str] = set()
        self._exposure: dict[str, _Exposure] = {}  # by client: what ``open_notional`` sums
        # Parents whose request is stored, their early New not yet come; early News whose request is not
        # stored yet. Each with when it began to wait (``time.perf_counter``).
        self._stored: dict[str, float] = {}
        self._held: dict[str, tuple[ExecutionReport, float]] = {}
        self._busy: dict[str, list[Message]] = {}  # parents whose report a thread is delivering: what queued
        self._lock = threading.RLock()
        self._req = 0

    # --- wiring ---------------------------------------------------------------------------------------
    def attach(self, client_id: str, sink: Sink) -> Callable[[], None]:
        with self._lock:
            self.sinks.setdefault(client_id, []).append(sink)

        def detach() -> None:
            with self._lock:
                if sink in self.sinks.get(client_id, []):
                    self.sinks[client_id].remove(sink)

        return detach

    def rebuild(self, reports: list[Message], sent: set[str] | None = None) -> None:
        """Restore the order table from the reports topic after a restart (``sent``: report ids the
        transports already delivered, e.g. read back from the FIX store)."""
        for m in reports:
            self._apply(m)
            if isinstance(m, ExecutionReport) and (sent is None or m.report_id in sent):
                self._delivered(m)

    # --- client requests ------------------------------------------------------------------------------
    def _request_id(self) -> str:
        self._req += 1
        return f"r{now_ns()}-{self._req}"

    def open_notional(self, client_id: str) -> float:
        """The client's live parents' leaves, each at its limit price or its symbol's mid (0 with none)."""
        with self._lock:
            ex = self._exposure.get(client_id)
            if ex is None:
                return 0.0
            total = to_float(ex.at_limit)
            for symbol, leaves in ex.at_mid.items():
                if leaves:
                    total += (self.tca.mid(symbol) or 0.0) * leaves
            return total

    def _count(self, o: Order, sign: int) -> None:
        """Adds (1) or takes back (-1) a live order's leaves in its client's exposure: every change to an
        order's status, quantity or fills sits between the two."""
        if not o.live:
            return
        p = o.parent
        leaves = sign * (p.quantity - o.cum_qty)
        ex = self._exposure.get(p.client_id)
        if ex is None:
            ex = self._exposure[p.client_id] = _Exposure()
        if p.limit_px:
            ex.at_limit += to_units(p.limit_px) * leaves
        else:
            ex.at_mid[p.symbol] = ex.at_mid.get(p.symbol, 0) + leaves

    def symbol_refusal(self, symbol: str) -> Refusal | None:
        return None if symbol in self.symbols else Refusal("unknown_symbol", f"unknown symbol {symbol}")

    def new_order(self, client_id: str, o: NewOrder, market_now: MarketNow) -> Refusal | None:
        """Build the client's parent and submit it; a refusal (the caller answers Rejected) or None."""
        # The symbol first: the window is judged on its market clock, which an unknown one does not have.
        if (refusal := self.symbol_refusal(o.symbol)) is not None:
            return refusal
        now = market_now(o.symbol) or now_ns()
        start = o.start_ns or now
        try:
            p = ParentOrder(
                parent_id=parent_id_for(client_id, o.cl_ord_id), client_id=client_id, cl_ord_id=o.cl_ord_id,
                symbol=o.symbol, side=o.side, quantity=o.quantity, ord_type=o.ord_type, limit_px=o.limit_px,
                time_in_force=o.time_in_force, start_ns=start, end_ns=o.end_ns or session_close_ns(start),
                strategy=o.strategy, participation_rate=o.participation_rate, policy=o.policy, ts_init=now,
            )  # fmt: skip
        except ValueError as exc:
            return Refusal("invalid", str(exc).splitlines()[-1][:200])
        return self.submit(p, recv_ns=o.recv_ns)

    def submit(self, p: ParentOrder, *, recv_ns: int | None = None) -> Refusal | None:
        with self._lock:
            refusal = self._check(p)
            if refusal is not None:
                ORDERS.labels("new", "refused").inc()
                if refusal.code not in ("duplicate", "unknown_symbol", "no_market_data"):
                    REFUSED.labels("parent", refusal.code).inc()
                return refusal
            o = Order(p, p.cl_ord_id, cl_ord_ids={p.cl_ord_id}, recv_ns=recv_ns, sent_ns=now_ns())
            self.orders[p.parent_id] = o
            self._count(o, 1)
            self.by_cl[(p.client_id, p.cl_ord_id)] = p.parent_id
            self.tca.track(p.parent_id, p.symbol, p.side, p.start_ns)
        ORDERS.labels("new", "accepted").inc()
        req = JobRequest(
            job_id=f"J{p.parent_id}", parent=p, ts_init=p.ts_init, recv_ns=recv_ns, sent_ns=o.sent_ns
        )
        self.publish(topics.JOB_REQUESTS, req, p.parent_id)
        return None

    def _check(self, p: ParentOrder) -> Refusal | None:
        if (p.client_id, p.cl_ord_id) in self.by_cl or p.parent_id in self.orders:
            return Refusal("duplicate", f"duplicate ClOrdID {p.cl_ord_id}")
        if (refusal := self.symbol_refusal(p.symbol)) is not None:
            return refusal
        if self.tca.mid(p.symbol) is None:
            # The saga's window runs on the symbol's market clock: with no tick yet it would never start.
            return Refusal("no_market_data", f"no market data for {p.symbol}")
        # The saga's own rule, on the clock the order was stamped with: an order told New when its request
        # is stored must not be one the saga refuses.
        if (why := window_refusal(p, p.ts_init)) is not None:
            return Refusal("window", why)
        return self.risk.check_parent(p, self.tca.mid(p.symbol), self.open_notional(p.client_id))

    def find(self, client_id: str, cl_ord_id: str) -> Order | None:
        pid = self.by_cl.get((client_id, cl_ord_id))
        return self.orders.get(pid) if pid else None

    def cancel(self, client_id: str, cl_ord_id: str, orig_cl_ord_id: str) -> Refusal | None:
        with self._lock:
            o = self.find(client_id, orig_cl_ord_id)
            if o is None:
                ORDERS.labels("cancel", "refused").inc()
                return Refusal("unknown_order", f"unknown order {orig_cl_ord_id}")
            if not o.live:
                ORDERS.labels("cancel", "refused").inc()
                return Refusal("too_late", f"order {orig_cl_ord_id} is {o.status.value}")
            self.by_cl[(client_id, cl_ord_id)] = o.parent.parent_id
            req = CancelRequest(request_id=self._request_id(), parent_id=o.parent.parent_id,
                                client_id=client_id, cl_ord_id=cl_ord_id, ts_init=now_ns())  # fmt: skip
        ORDERS.labels("cancel", "accepted").inc()
        self.publish(topics.JOB_REQUESTS, req, req.parent_id)
        return None

    def amend(
        self,
        client_id: str,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        quantity: int,
        *,
        limit_px: float | None,
        end_ns: int | None,
    ) -> Refusal | None:
        with self._lock:
            o = self.find(client_id, orig_cl_ord_id)
            if o is None:
                return Refusal("unknown_order", f"unknown order {orig_cl_ord_id}")
            if not o.live:
                return Refusal("too_late", f"order {orig_cl_ord_id} is {o.status.value}")
            if (client_id, cl_ord_id) in self.by_cl:
                return Refusal("duplicate", f"duplicate ClOrdID {cl_ord_id}")
            if quantity < o.cum_qty:
                return Refusal("below_filled", f"quantity {quantity} is below the {o.cum_qty} already filled")
            changed = o.parent.model_copy(
                update={"quantity": quantity, "limit_px": limit_px or o.parent.limit_px}
            )
            extra = max(0, quantity - o.parent.quantity)
            if extra:
                probe = changed.model_copy(update={"quantity": extra})
                refusal = self.risk.check_parent(
                    probe, self.tca.mid(o.parent.symbol), self.open_notional(client_id)
                )
                if refusal is not None:
                    REFUSED.labels("amend", refusal.code).inc()
                    return refusal
            self.by_cl[(client_id, cl_ord_id)] = o.parent.parent_id
            req = AmendRequest(
                request_id=self._request_id(), parent_id=o.parent.parent_id, client_id=client_id,
                cl_ord_id=cl_ord_id, quantity=quantity, limit_px=limit_px, end_ns=end_ns, ts_init=now_ns(),
            )  # fmt: skip
        ORDERS.labels("amend", "accepted").inc()
        self.publish(topics.JOB_REQUESTS, req, req.parent_id)
        return None

    def status(self, client_id: str, cl_ord_id: str) -> Order | None:
        with self._lock:
            return self.find(client_id, cl_ord_id)

    # --- reports from the saga ------------------------------------------------------------------------
    def _apply(self, m: Message) -> Message:
        if isinstance(m, ExecutionReport):
            o = self.orders.get(m.parent_id)
            if o is None:  # rebuilt after a restart, or an order we refused never gets here
                p = ParentOrder(
                    parent_id=m.parent_id, client_id=m.client_id, cl_ord_id=m.cl_ord_id, symbol=m.symbol,
                    side=m.side, quantity=max(1, m.order_qty), start_ns=m.ts_event, end_ns=m.ts_event + 1,
                    ts_init=m.ts_init,
                )  # fmt: skip
                o = self.orders[m.parent_id] = Order(p, m.cl_ord_id)
            else:
                self._count(o, -1)
            if m.order_qty and m.order_qty != o.parent.quantity:
                o.parent = o.parent.model_copy(update={"quantity": m.order_qty})
            o.cl_ord_id = m.cl_ord_id
            o.cl_ord_ids.add(m.cl_ord_id)
            self.by_cl[(m.client_id, m.cl_ord_id)] = m.parent_id
            o.status, o.cum_qty, o.avg_px = m.ord_status, m.cum_qty, m.avg_px
            self._count(o, 1)
            if m.ord_status.terminal and m.is_bps is None:
                f = self.tca.finish(m.parent_id, m.avg_px, m.cum_qty, m.order_qty)
                if f is not None:
                    m = m.model_copy(update={"is_bps": f.is_bps, "vwap_slippage_bps": f.vwap_slippage_bps,
                                             "tca": f})  # fmt: skip
                    # Kept for ``paceline tca``: the figures this client is told, once per parent.
                    self.publish(topics.TCA, TcaRecord(
                        parent_id=m.parent_id, client_id=m.client_id, cl_ord_id=m.cl_ord_id,
                        ord_status=m.ord_status, figures=f, ts_init=now_ns(),
                    ), m.parent_id)  # fmt: skip
            o.last = m
        return m

    # --- a New before its commit --------------------------------------------------------------------
    def early_new(self, m: ExecutionReport) -> None:
        """A New the saga decided and has not committed: told once its order's request is stored here."""
        with self._lock:
            if self._seen(m):  # the commit's copy came first
                return
            stored_at = self._stored.pop(m.parent_id, None)
            if stored_at is None:  # not stored yet (or another endpoint's order)
                self._held[m.parent_id] = (m, time.perf_counter())
                _trim(self._held)
                return
        _WAITED_FOR["decision"].observe(time.perf_counter() - stored_at)
        EARLY_NEW.labels("told").inc()
        self.on_report(m)

    def request_stored(self, parent_id: str, ok: bool) -> None:
        """The broker stored (``ok``) or refused a new order's request. Runs on the client's I/O thread: a New
        that was waiting for it is delivered from there, at once."""
        if self.new_on_store:
            if ok:
                self._new_on_store(parent_id)
            else:
                EARLY_NEW.labels("lost").inc()
            return
        with self._lock:
            held = self._held.pop(parent_id, None)
            if held is None and ok:
                self._stored[parent_id] = time.perf_counter()
                _trim(self._stored)
        if held is not None:
            EARLY_NEW.labels("told" if ok else "lost").inc()
            if ok:
                _WAITED_FOR["store"].observe(time.perf_counter() - held[1])
                self.on_report(held[0])

    def _new_on_store(self, parent_id: str) -> None:
        """Tell the New of an order whose request is stored: the saga (its leader or a successor) decides the
        stored request to this same New, whose copy is then a duplicate, or, if the saga's clock has passed
        the window meanwhile, to a refusal told as a cancel."""
        stored = now_ns()
        with self._lock:
            o = self.orders.get(parent_id)
            if o is None or o.last is not None:  # a report came first: the commit's (or not ours)
                return
            new = new_report(o.parent, stored)
            recv, sent = o.recv_ns, o.sent_ns
        EARLY_NEW.labels("told").inc()
        self.on_report(new)
        told = now_ns()
        for stage, ns in (
            ("desk", None if recv is None or sent is None else sent - recv),
            ("store", None if sent is None else stored - sent),
            ("to_client", told - stored),
        ):
            if ns is not None:
                ACK_STAGE.labels(stage).observe(max(0, ns) / 1e9)

    def _refused_after_new(self, r: ExecutionReport) -> ExecutionReport:
        """A refusal of an order told New: the New came early, its leader failed before the commit, and its
        successor, deciding the stored request again, refused it (its window closed meanwhile). The client
        gets the refusal as a cancel, the one end FIX allows after New, under an id of its own."""
        o = self.orders.get(r.parent_id)
        if r.exec_type is not ExecType.REJECTED or o is None or o.last is None:
            return r
        if o.last.exec_type is not ExecType.NEW:
            return r
        EARLY_NEW.labels("refused").inc()
        return r.model_copy(update={
            "report_id": f"{r.report_id}.cancel", "exec_type": ExecType.CANCELED,
            "ord_status": OrdStatus.CANCELED, "text": f"cancelled: {r.text}",
        })  # fmt: skip

    def on_report(self, m: Message) -> None:
        """Deliver one report to its client's transports, one parent's reports one at a time and in the
        order they came: an early New is delivered from the client's I/O thread, the rest from the
        listener's. If a transport raises, the report is not marked as delivered, so the redelivery that
        follows is not dropped as a duplicate (and what queued behind it meanwhile comes again on the other
        stream: the log and the reports topic both carry every report)."""
        pid = getattr(m, "parent_id", "")
        with self._lock:
            if pid in self._busy:  # another thread is delivering this parent's: it delivers this next
                self._busy[pid].append(m)
                return
            self._busy[pid] = []
        try:
            while True:
                self._deliver(m)
                with self._lock:
                    if not (queued := self._busy[pid]):
                        del self._busy[pid]
                        return
                    m = queued.pop(0)
        except BaseException:
            with self._lock:
                self._busy.pop(pid, None)
            raise

    def _deliver(self, m: Message) -> None:
        received = now_ns()
        with self._lock:
            report = m if isinstance(m, ExecutionReport) else None
            if report is not None:
                report = m = self._refused_after_new(report)
                if self._seen(report):
                    return
            m = self._apply(m)
            sinks = list(self.sinks.get(getattr(m, "client_id", ""), ()))
        for sink in sinks:
            sink(m)
        if isinstance(m, ExecutionReport) and m.trace is not None and sinks:
            for stage, sec in zip(ACK_STAGES, (*m.trace.stage_seconds(received), (now_ns() - received) / 1e9),
                                  strict=True):  # fmt: skip
                if sec is not None:
                    ACK_STAGE.labels(stage).observe(sec)
        if report is not None:
            with self._lock:
                self._delivered(report)
        REPORTS_OUT.labels(type(m).__name__).inc()

    def _seen(self, r: ExecutionReport) -> bool:
        return r.parent_id in self.finished or r.report_id in self.seen_reports.get(r.parent_id, ())

    def _delivered(self, r: ExecutionReport) -> None:
        if r.exec_type is ExecType.NEW or r.ord_status.terminal:  # nothing more to wait for
            self._stored.pop(r.parent_id, None)
            self._held.pop(r.parent_id, None)
        if r.ord_status.terminal:
            self.seen_reports.pop(r.parent_id, None)
            self.finished.add(r.parent_id)
        else:
            self.seen_reports.setdefault(r.parent_id, set()).add(r.report_id)


def _trim(kept: dict[str, Any]) -> None:
    while len(kept) > EARLY_KEPT:
        del kept[next(iter(kept))]


__all__ = ["Order", "OrderDesk", "Refusal", "RequestReject", "parent_id_for"]
