"""The Endpoint service: the client edge (FIX acceptor, order desk, pre-trade risk, TCA) and the venue
router (the saga's venue commands and the workers' child orders to the simulated exchange).

Threads: QuickFIX runs a thread per session, the native server one per connection; both call the desk.
Ticks, child orders, reports and kill-switch changes arrive on the Pulsar client's single listener thread;
the saga's venue commands on a thread of their own, because opening an equity's topics takes broker round
trips that would hold up every report and child order behind them (measured, when every job had topics of
its own: 60 ms of a new order's acknowledgement); a janitor thread refuses child orders held too long for
their job's OPEN. The venue takes a lock, and computes and publishes under it, so what it sends keeps the
order of its state changes (every fill before the FENCE ack after it). What both
sides share locks itself: the desk (its order table), the TCA (markets, parents) and the risk gate
(kill switch, positions, rate buckets); none calls another while holding its lock except the desk, which
calls the other two, so there is no lock cycle (the held child orders' lock is taken before the venue's).
Fills and acks go to the job's equity's executions topic, keyed by job (its worker); fills and command
acks to the shared executions topic (the saga)
from one producer, so the saga sees every fill of a job before the ack of the FENCE or CLOSE that ends it.
On start the desk's order table is rebuilt from the reports topic, and the reports QuickFIX already sent
(its store) are not sent again.

A client's execution reports arrive twice: first from the saga log itself (a non-durable reader: a report
there is committed, and reading it there saves the outbox's publish and a second broker hop on every
acknowledgement), then from the reports topic (the durable subscription, which also carries the request
rejects and covers whatever the reader missed across a restart). The desk delivers each report once, on
its first arrival; both streams hold a parent's reports in the same order, so the first arrivals do too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from endpoint.broker_venue import BrokerVenue, FixBrokerLink
from endpoint.config import EndpointConfig
from endpoint.desk import OrderDesk
from endpoint.fix_gateway import FixGateway, sent_exec_ids
from endpoint.native import NativeServer
from endpoint.risk import RiskGate
from market.tca import Tca, tracked_from
from market.venue import Venue
from models import (
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    ExecutionReport,
    Fill,
    JobRequest,
    Message,
    RiskControl,
    SagaEvent,
    Tick,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    codec,
    now_ns,
    topics,
)
from runtime import metrics
from runtime.bus import Bus, BusError, Consumer, Delivery, Producer
from runtime.logs import bind_order, get_logger
from runtime.metrics import TRACE_BUCKETS
from saga.core import client_reports, may_carry_reports

log = get_logger("paceline.endpoint")

COMMANDS = Counter("paceline_venue_commands_total", "Saga commands handled by the venue", ["op"])
CHILD_ORDERS = Counter("paceline_venue_child_actions_total", "Child-order actions received", ["action"])
REFUSED = Counter("paceline_venue_refused_total", "Child-order actions refused, by reason", ["reason"])
FILLS = Counter("paceline_venue_fills_total", "Fills executed", ["liquidity"])
SHARES = Counter("paceline_venue_filled_shares_total", "Shares executed")
ACKS = Counter("paceline_venue_acks_total", "Child-order answers by status", ["status"])
# A worker's child order can come before the saga's OPEN of its job (both follow the saga's one decision, on
# two topics): it waits this long for it, then is refused as ``unknown_job``.
HOLD_S = 5.0
HELD = Gauge("paceline_venue_held_actions", "Child-order actions waiting for their job's OPEN")
# The pipeline's latency as the venue sees it: the triggering tick's publish until its child order is here.
TICK_TO_CHILD = Histogram(
    "paceline_endpoint_tick_to_child_seconds", "Tick published -> child order received at the endpoint",
    buckets=TRACE_BUCKETS,
)  # fmt: skip
# The same path by stage (one machine's clock): tick published -> worker received it -> decided (the child
# order built) -> endpoint received it -> the venue took it.
STAGE = Histogram(
    "paceline_endpoint_stage_seconds", "Tick -> child order, by stage", ["stage"], buckets=TRACE_BUCKETS
)
STAGES = ("tick_to_worker", "worker_decide", "worker_to_endpoint", "venue")


class EndpointService:
    def __init__(
        self, bus: Bus, config: EndpointConfig | None = None, *, venue: Venue | None = None, fix: bool = True
    ) -> None:
        self.bus = bus
        self.cfg = config or EndpointConfig()
        if why := self.cfg.exposed_demo_credentials():
            raise ValueError("refusing to start: " + "; ".join(why))
        self.name = self.cfg.name
        self.link: FixBrokerLink | None = None
        if venue is None and self.cfg.route == "fix":
            b = self.cfg.broker
            if b is None:
                raise ValueError("route = 'fix' needs a [broker] section")
            self.link = FixBrokerLink(self.cfg.state_dir, host=b.host, port=b.port, sender=b.comp_id,
                                      target=b.target_comp_id, on_report=self._on_broker)  # fmt: skip
            venue = BrokerVenue(self.link)
        self.venue = venue or Venue()
        # The venue is driven from Pulsar's listener thread and, when routing to a broker, from QuickFIX's.
        self._venue_lock = threading.Lock()
        self.risk = RiskGate({c.client_id: c.limits for c in self.cfg.clients})
        self.tca = Tca()
        self._new_on_store = self.cfg.early_new and self.cfg.new_on_store
        self.desk = OrderDesk(
            self._publish_request, self.risk, self.cfg.symbols, self.tca, new_on_store=self._new_on_store
        )
        self.fix = FixGateway(self.cfg, self.desk, self._market_now) if fix and self.cfg.fix_port else None
        self.native = NativeServer(self.cfg, self.desk, self._market_now) if self.cfg.native_port else None
        self._ticks: dict[str, Consumer[Tick]] = {}
        # The jobs' child orders in, by topic, and their answers out, by symbol (a topic each way per equity).
        self._actions: dict[str, Consumer[ChildOrderAction]] = {}
        self._job_out: dict[str, Producer] = {}
        # Actions of jobs not open here yet, by job, in order, unacknowledged (a restart gets them again):
        # taken in order once the OPEN comes, refused once ``HOLD_S`` has passed since the first was held
        # (``_held_at``, monotonic). Lock order: this, then the venue's.
        self._held: dict[str, list[Delivery[ChildOrderAction]]] = {}
        self._held_at: dict[str, float] = {}
        self._held_lock = threading.Lock()
        self._subscribing = threading.Lock()
        self._started_ms = 0
        self._consumers: list[Consumer[Any]] = []
        self._executions: Producer | None = None
        self._requests: Producer | None = None
        self._requests_live: Producer | None = None
        self._tca: Producer | None = None
        self._commands: Consumer[VenueCommand] | None = None
        self._log_reader: Any = None
        self._news: Any = None  # the reports' twin: News before their commit (``early_new``)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        n = self.name
        self._started_ms = int(time.time() * 1000)
        self._executions = self.bus.producer(topics.EXECUTIONS, name=f"{n}-venue")
        self._requests = self.bus.producer(topics.JOB_REQUESTS)
        if not self.cfg.request_twin:
            log.info("new orders on the record only (request_twin = false)")
        else:
            try:
                self._requests_live = self.bus.producer(topics.LIVE_JOB_REQUESTS)
            except BusError as exc:  # a broker whose grants predate the twin: the record alone, as before it
                log.warning("new orders on the record only: cannot write the requests' twin", error=str(exc))
        self._tca = self.bus.producer(topics.TCA)
        for d in self.bus.read_all(topics.RISK, RiskControl):
            self.risk.set_state(d.message.client_id, d.message.state)
        self.desk.rebuild([d.message for d in self.bus.read_all(topics.REPORTS, Message)],
                          sent_exec_ids(self.cfg.state_dir) if self.fix else None)  # fmt: skip
        # A restart (this endpoint ran before with this state folder) takes its venue and the TCA of the
        # parents still working back up; a new one starts at the present, like its subscriptions below.
        marker = self.cfg.state_dir / "venue.started"
        restart = marker.exists()
        # Before the ticks are followed: nothing else feeds the TCA meanwhile. The jobs' executions read for
        # it serve the venue's restore too (only this endpoint writes them, and it has not yet).
        histories = self._restore_tca() if restart else {}
        for sym in self.cfg.symbols:
            self._follow(sym)
        if restart:
            self._restore_venue(histories)
        # Once every job is restored (a redelivered NEW must find its child known): the child orders.
        for sym in list(self._ticks):
            self._take_actions(sym)
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        marker.touch()
        if self.link is not None:
            self.link.start()
        if self.fix is not None:  # its sinks must be attached before the first report arrives
            self.fix.start()
        if self.native is not None:
            self.native.start()
        self._consumers += [
            self.bus.subscribe(topics.RISK, f"{n}-risk", RiskControl, handler=self._on_risk),
            # A new endpoint starts at the reports' present (the table above has the past); a restarted
            # one resumes where it acknowledged.
            self.bus.subscribe(
                topics.REPORTS, f"{n}-reports", Message, handler=self._on_report, from_earliest=False
            ),
        ]
        self._log_reader = self.bus.tail(topics.SAGA_LOG, SagaEvent, self._on_log, wanted=may_carry_reports)
        if self.cfg.early_new and not self._new_on_store:
            try:
                self._news = self.bus.tail(topics.LIVE_REPORTS, ExecutionReport, self._on_early_new)
            except BusError as exc:  # a broker whose grants predate the twin: News after their commit
                log.warning("News after their commit only: cannot read the reports' twin", error=str(exc))
        self._commands = self.bus.subscribe(
            topics.VENUE_COMMANDS, f"{n}-venue", VenueCommand, from_earliest=False
        )
        self._consumers.append(self._commands)
        for target, what in ((self._command_loop, "commands"), (self._janitor, "janitor")):
            th = threading.Thread(target=target, name=f"{n}-{what}", daemon=True)
            th.start()
            self._threads.append(th)
        log.info("endpoint started", name=n, symbols=list(self.cfg.symbols), fix_port=self.cfg.fix_port)
        metrics.READY.labels("endpoint").set(1)

    def stop(self) -> None:
        metrics.READY.labels("endpoint").set(0)
        self._stop.set()
        for th in self._threads:
            th.join(timeout=5)
        for reader in (self._log_reader, self._news):
            if reader is not None:
                reader.close()
        for c in self._consumers:  # no more reports in flight towards a stopping acceptor
            c.close()
        if self.fix is not None:
            self.fix.stop()
        if self.native is not None:
            self.native.stop()
        if self.link is not None:
            self.link.stop()
        for t in self._ticks.values():
            t.close()
        for a in self._actions.values():
            a.close()
        for p in self._job_out.values():
            p.flush()
            p.close()
        for prod in (self._executions, self._requests, self._requests_live, self._tca):
            if prod is not None:
                prod.flush()
                prod.close()

    # --- the desk's outputs ---------------------------------------------------------------------------
    def _publish_request(self, topic: str, m: Message, key: str) -> None:
        out = {topics.JOB_REQUESTS: self._requests, topics.TCA: self._tca}[topic]
        assert out is not None
        payload = codec.encode(m)
        # A new order's request on the twin too: the saga starts the parent from the first copy that reaches
        # it. Cancels and amends go on the record only: in order behind their parent's request, and a second
        # copy of one would be refused as "already pending". The twin goes first where the New waits for the
        # saga's decision (more often than for the record's store: 131 orders of 209 against 78,
        # docs/PERFORMANCE.md, session 23), second where it waits for the store alone (``new_on_store``).
        twin = self._requests_live if isinstance(m, JobRequest) else None
        if twin is not None and not self._new_on_store:
            twin.send_async(payload, key=key)
        if isinstance(m, JobRequest) and (self._news is not None or self._new_on_store):
            # Its New is told once this is stored (``OrderDesk.request_stored``).
            stored, pid = self.desk.request_stored, m.parent.parent_id
            out.send_async(payload, key=key, on_done=lambda err, _s: stored(pid, err is None))
        else:
            out.send_async(payload, key=key)
        if twin is not None and self._new_on_store:
            twin.send_async(payload, key=key)

    def _market_now(self, symbol: str) -> int | None:
        return self.tca.market_ts(symbol)

    # --- handlers (listener thread) -------------------------------------------------------------------
    def _on_risk(self, d: Delivery[RiskControl]) -> None:
        self.risk.set_state(d.message.client_id, d.message.state)
        log.warning("kill switch", client_id=d.message.client_id or "ALL", state=d.message.state.value)

    def _on_report(self, d: Delivery[Message]) -> None:
        self.desk.on_report(d.message)

    def _on_early_new(self, d: Delivery[ExecutionReport]) -> None:
        self.desk.early_new(d.message)

    def _on_log(self, d: Delivery[SagaEvent]) -> None:
        """The saga's committed decisions: their client execution reports, ahead of the reports topic."""
        for m in client_reports(d.message):
            self.desk.on_report(m)

    def _follow(self, symbol: str) -> None:
        """The symbol's ticks, and the producer of its jobs' answers."""
        if symbol not in self._ticks:
            self._ticks[symbol] = self.bus.subscribe(
                topics.ticks(symbol), f"{self.name}-venue", Tick, from_earliest=False, handler=self._on_tick
            )
        if symbol not in self._job_out:
            self._job_out[symbol] = self.bus.producer(
                topics.job_executions(symbol), name=f"{self.name}-venue.{symbol}"
            )

    def _take_actions(self, symbol: str) -> None:
        """The symbol's child orders, from the earliest the first time (none a worker sent before this
        subscription existed is lost; those of jobs from before this endpoint are passed over), else where
        this endpoint left off. Each is acknowledged once taken (``_take``)."""
        topic = topics.job_actions(symbol)
        with self._subscribing:  # its first delivery may come before ``subscribe`` returns
            if topic not in self._actions:
                self._actions[topic] = self.bus.subscribe(
                    topic, f"{self.name}-venue", ChildOrderAction, handler=self._on_action, auto_ack=False
                )

    def _restore_tca(self) -> dict[str, list[Message]]:
        """After a restart: each parent not yet ended tracked again and its symbol's recorded ticks and its
        fills fed through the TCA, so that its final report carries the figures it would have without the
        restart (and ``exec/tca`` its record). Ticks published before the earliest such parent's start or
        acceptance are passed over undecoded. Returns the executions read, by job."""
        live: dict[str, list[JobRequest]] = {}
        since: dict[str, int] = {}  # by symbol: when its first live request was stored (ms)
        histories: dict[str, list[Message]] = {}
        for d in self.bus.read_all(topics.JOB_REQUESTS, Message):
            q = d.message
            if not isinstance(q, JobRequest) or q.parent.symbol not in self.cfg.symbols:
                continue
            o = self.desk.orders.get(q.parent.parent_id)
            if o is None or o.live:  # no report yet, or not ended
                live.setdefault(q.parent.symbol, []).append(q)
                since.setdefault(q.parent.symbol, d.publish_time_ms)
        by_job = self._executions_since(since)
        for sym, reqs in live.items():
            froms = [tracked_from(q.parent.start_ns, q.parent.ts_init) for q in reqs]
            fills = []
            for q, start in zip(reqs, froms, strict=True):
                self.tca.track(q.parent.parent_id, sym, q.parent.side, start)
                history = histories[q.job_id] = by_job.get(q.job_id, [])
                fills += [m for m in history if isinstance(m, Fill)]
            ticks = self.bus.read_all(topics.ticks(sym), Tick, published_from_ms=min(froms) // 1_000_000)
            self.tca.restore((d.message for d in ticks), fills)
            log.info("tca restored", symbol=sym, parents=len(reqs), ticks=len(ticks), fills=len(fills))
        return histories

    def _restore_venue(self, histories: dict[str, list[Message]]) -> None:
        """After a restart: the jobs from the command history, each open one's child orders and fills from
        its executions topic (``histories``, where already read; resting orders are cancelled and the worker
        told). Its child orders are taken only after this (``start``)."""
        opened: dict[str, int] = {}  # by job: when its first command was stored (ms)
        for d in self.bus.read_all(topics.VENUE_COMMANDS, VenueCommand):
            self.venue.command(d.message)  # the acks were published the first time
            opened.setdefault(d.message.job_id, d.publish_time_ms)
        unread = [j for j in self.venue.jobs.values() if not j.closed and j.job_id not in histories]
        since: dict[str, int] = {}
        for job in unread:
            since[job.symbol] = min(since.get(job.symbol, opened[job.job_id]), opened[job.job_id])
        by_job = self._executions_since(since)
        for job in list(self.venue.jobs.values()):
            if job.closed:
                continue
            history = histories.get(job.job_id)
            if history is None:
                history = by_job.get(job.job_id, [])
            self._follow(job.symbol)
            self._publish(self.venue.restore(job.job_id, history))
        open_jobs = sum(not j.closed for j in self.venue.jobs.values())
        if open_jobs:
            log.info("venue restored", jobs=len(self.venue.jobs), open=open_jobs)

    def _executions_since(self, since_ms: dict[str, int]) -> dict[str, list[Message]]:
        """Each symbol's executions topic, read once from ``since_ms[symbol]`` on, by job. None of a job's
        answers is published before its request or its first venue command is stored; a minute's margin
        covers clocks that differ between the processes that stamp publish times."""
        out: dict[str, list[Message]] = {}
        for sym, ms in since_ms.items():
            for d in self.bus.read_all(topics.job_executions(sym), Message, published_from_ms=ms - 60_000):
                job_id = getattr(d.message, "job_id", None)
                if isinstance(job_id, str):
                    out.setdefault(job_id, []).append(d.message)
        return out

    def _janitor(self) -> None:
        """Refuses child orders whose job's OPEN has not come within ``HOLD_S``, off the listener thread."""
        while not self._stop.wait(0.5):
            cutoff = time.monotonic() - HOLD_S
            with self._held_lock:
                for job_id in [j for j, at in self._held_at.items() if at < cutoff]:
                    for d in self._release(job_id):
                        self._take(d)

    def _command_loop(self) -> None:
        """The saga's venue commands, in order, each acknowledged once handled (redelivered if it raised)."""
        assert self._commands is not None
        while not self._stop.is_set():
            try:
                d = self._commands.receive(timeout_ms=200)
            except Exception as exc:  # closed on the way out, or the broker is away: try again
                if not self._stop.is_set():
                    log.warning("venue commands: receive failed", error=str(exc))
                    self._stop.wait(0.5)
                continue
            if d is None:
                continue
            try:
                self._on_command(d)
            except Exception:
                metrics.BUS_HANDLER_ERRORS.labels("venue_commands").inc()
                log.exception("venue command failed; it will be redelivered")
                self._commands.nack(d)
                continue
            self._commands.ack(d)

    def _on_command(self, d: Delivery[VenueCommand]) -> None:
        with bind_order(d.message):
            self._command(d.message)

    def _command(self, cmd: VenueCommand) -> None:
        COMMANDS.labels(cmd.op.value).inc()
        if cmd.op is VenueOp.OPEN:
            self._follow(cmd.symbol)  # a symbol new to this endpoint: its answers' producer first
        with self._held_lock:
            with self._venue_lock:
                self._publish(self.venue.command(cmd))
            # The job's child orders that came before this, in order, ahead of any after it.
            for d in self._release(cmd.job_id):
                self._take(d)
        if cmd.op is VenueOp.OPEN:
            self._take_actions(cmd.symbol)
        log.info("venue command", op=cmd.op.value, job_id=cmd.job_id, epoch=cmd.epoch)

    def _on_action(self, d: Delivery[ChildOrderAction]) -> None:
        a = d.message
        if a.job_id not in self.venue.jobs or a.job_id in self._held:
            with self._held_lock:  # looked at again under it: the OPEN may have come meanwhile
                if a.job_id not in self.venue.jobs or a.job_id in self._held:
                    self._hold(d)
                    return
        self._take(d)

    def _hold(self, d: Delivery[ChildOrderAction]) -> None:
        """A child order of a job not open here (under ``_held_lock``): held for its OPEN, unless it was
        sent well before this endpoint started (a minute: clocks differ between machines), for a job it
        never had (its subscription's first read of the topic): passed over, as the job's own topic once
        was never read."""
        job_id = d.message.job_id
        if job_id not in self._held and d.publish_time_ms < self._started_ms - 60_000:
            REFUSED.labels("unknown_job").inc()
            self._actions_of(d).ack(d)
            return
        self._held.setdefault(job_id, []).append(d)
        self._held_at.setdefault(job_id, time.monotonic())
        HELD.set(sum(map(len, self._held.values())))

    def _release(self, job_id: str) -> list[Delivery[ChildOrderAction]]:
        """The job's held child orders, in order (under ``_held_lock``)."""
        self._held_at.pop(job_id, None)
        out = self._held.pop(job_id, [])
        HELD.set(sum(map(len, self._held.values())))
        return out

    def _take(self, d: Delivery[ChildOrderAction]) -> None:
        """A child order through the risk gate and the venue, then acknowledged; one that raised is
        redelivered (on whichever thread took it: the listener, a held one's OPEN or the janitor)."""
        consumer = self._actions_of(d)
        try:
            with bind_order(d.message):
                self._action(d.message)
        except Exception:
            metrics.BUS_HANDLER_ERRORS.labels("actions").inc()
            log.exception("child order failed; it will be redelivered", child_id=d.message.child_id)
            consumer.nack(d)
            return
        consumer.ack(d)

    def _actions_of(self, d: Delivery[ChildOrderAction]) -> Consumer[ChildOrderAction]:
        consumer = self._actions.get(d.topic)
        if consumer is None:
            with self._subscribing:
                consumer = self._actions[d.topic]
        return consumer

    def _action(self, a: ChildOrderAction) -> None:
        CHILD_ORDERS.labels(a.action.value).inc()
        received = now_ns()
        traced = a.action is ChildAction.NEW and a.tick_ts_init is not None
        if traced and a.tick_ts_init is not None:
            TICK_TO_CHILD.observe(max(0, received - a.tick_ts_init) / 1e9)
            for stage, seconds in zip(STAGES[:3], a.stage_seconds(received), strict=True):
                if seconds is not None:
                    STAGE.labels(stage).observe(seconds)
        job = self.venue.jobs.get(a.job_id)
        if a.action is not ChildAction.CANCEL and job is not None and job.client_id is not None:
            refusal = self.risk.check_child(job.client_id, a, self.tca.mid(a.symbol))
            if refusal is not None:
                self._publish([ChildOrderAck(
                    child_id=a.child_id, job_id=a.job_id, epoch=a.epoch, status=AckStatus.REJECTED,
                    reason=f"risk_{refusal.code}: {refusal.text}"[:256], ts_event=a.ts_event,
                    ts_init=now_ns(),
                )], a.symbol)  # fmt: skip
                return
        with self._venue_lock:
            self._publish(self.venue.action(a), a.symbol)
        if traced:
            STAGE.labels("venue").observe(max(0, now_ns() - received) / 1e9)

    def _on_tick(self, d: Delivery[Tick]) -> None:
        self.tca.on_tick(d.message)
        with self._venue_lock:
            out = self.venue.on_tick(d.message)
            if out:
                self._publish(out)

    def _on_broker(self, child_id: str, kind: str, **kw: Any) -> None:
        """An execution report from the broker (QuickFIX's thread)."""
        assert isinstance(self.venue, BrokerVenue)
        with self._venue_lock:
            self._publish(self.venue.on_broker(child_id, kind, **kw))

    def _publish(self, out: list[Message], symbol: str | None = None) -> None:
        """``symbol``: the action's these answer (its job may not be open here)."""
        assert self._executions is not None
        for m in out:
            if isinstance(m, Fill):
                FILLS.labels(m.liquidity.value).inc()
                SHARES.inc(m.qty)
                job = self.venue.jobs.get(m.job_id)
                if job is not None and job.client_id is not None:
                    self.risk.on_fill(job.client_id, m.symbol, m.side, m.qty)
                self.tca.on_fill(m)  # against the mid of the quote it met: the final report's TCA
                self._to_job(m.job_id, m, m.symbol)
                self._executions.send_async(m, key=m.parent_id)
            elif isinstance(m, ChildOrderAck):
                ACKS.labels(m.status.value).inc()
                if m.status is AckStatus.REJECTED and m.reason:
                    REFUSED.labels(m.reason.split(":", 1)[0]).inc()
                    log.warning("child order refused", child_id=m.child_id, job_id=m.job_id, epoch=m.epoch,
                                reason=m.reason)  # fmt: skip
                self._to_job(m.job_id, m, symbol)
            elif isinstance(m, VenueCommandAck):
                self._executions.send_async(m, key=m.parent_id)

    def _to_job(self, job_id: str, m: Message, symbol: str | None) -> None:
        """To the workers on the job's symbol (``symbol``: the action answered, for a job not open here)."""
        job = self.venue.jobs.get(job_id)
        sym = job.symbol if job is not None else symbol
        if sym is None:
            log.warning("an answer for an unknown job dropped", job_id=job_id)
            return
        p = self._job_out.get(sym)
        if p is None:  # a symbol this endpoint does not follow (a late action's): rare, and kept
            p = self._job_out[sym] = self.bus.producer(
                topics.job_executions(sym), name=f"{self.name}-venue.{sym}"
            )
        p.send_async(m, key=job_id)
