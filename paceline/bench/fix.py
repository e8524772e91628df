"""``paceline bench fix``: the FIX round trip a client sees, NewOrderSingle -> ExecutionReport New, with the
services as separate processes (``paceline health-checker``, ``paceline endpoint``, ``paceline worker``) on
a fresh standalone of its own, a synthetic market feeding the endpoint, and a QuickFIX initiator as the
client.

By default the endpoint tells the New once its write of the order's request is stored, built as the saga
builds it (``new_on_store``), and the saga decides the order beside it. With ``--no-new-on-store`` the New
comes from the saga: the order crosses the broker to the health-checker, which decides it, and the report
crosses the broker back on the reports' twin as soon as it is decided, told once the request is stored
(``early_new``); with ``--no-early-new``, from the saga log, after the commit. Where the saga's time goes
is read from its report's ``AckTrace`` (taken from the twin, the saga log or the reports topic, whichever
brings it first) and this process's own stamps around the FIX session: ``models.ACK_STAGES``; a New on the
store is split by the endpoint's own histogram (the desk, the store, to the client). For scale, the same
run measures a bare ``pulsar-client`` hop (send -> receive) on the same broker (the goal's unit), and a
bare non-persistent one, the twins' kind. From them, order by order, the layout's own floor, with nothing
of ours (nor QuickFIX) around it: on the store, the hop; a twin's hop each way, beside the request's store
(one persistent hop), whichever is longer; or, with the New after the commit, the request's twin hop and
then the commit's persistent one.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fixclient import FixClient
from models import ACK_STAGES, ExecType, ExecutionReport, Message, SagaEvent, Tick, topics
from paceline.bench.stats import summary
from paceline.ops import broker
from paceline.ops.stack import (
    Proc,
    free_port,
    keep_log_on_failure,
    start_scratch_broker,
    write_endpoint_config,
)
from receiver import sources
from receiver.service import Receiver
from runtime.bus import Bus, stream_of
from runtime.settings import Settings
from saga.core import client_reports, may_carry_reports

# This process's view: its FIX send -> the endpoint took the message; the report received off the topic ->
# the client's FIX session has it (with the early New, that includes any wait for the request's store).
# Between them, the report's own trace.
STAGES = ("client_to_endpoint", "desk", "to_saga", "saga", "commit_and_back", "to_client_fix")


def run(
    settings: Settings, *, orders: int = 200, symbol: str = "BENCHFIX", worker: bool = True,
    request_twin: bool = True, early_new: bool = True, new_on_store: bool = True, order_rate: float = 0.0,
) -> int:  # fmt: skip
    """``worker=False`` leaves the orders unassigned (each waits for a worker): the round trip without the
    load of working 200 parents on the same two cores. ``request_twin``, ``early_new``, ``new_on_store``:
    the endpoint's settings.
    ``order_rate``: orders sent at most this many a second (0: each as soon as the one before is answered
    and the hop probed). Every accepted order has the broker create its job's topics (tens of ms of its CPU
    here), which back to back overlaps the next order; a client within the desk's default limit
    (``Limits().max_orders_per_s``) leaves that work time to finish."""
    tag = uuid.uuid4().hex[:6]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-fix-")))
        cfg = start_scratch_broker(tmp / "broker", settings.cache_dir)
        stack.callback(broker.stop, cfg)
        port = free_port()
        ep_cfg = write_endpoint_config(tmp / "endpoint.toml", name=f"bench-ep-{tag}", fix_port=port,
                                       state_dir=tmp / "endpoint", symbols=[symbol],
                                       request_twin=request_twin, early_new=early_new,
                                       new_on_store=new_on_store)  # fmt: skip
        keep_log_on_failure(stack, tmp / "services.log", f"paceline-bench-fix-{tag}")
        log = stack.enter_context((tmp / "services.log").open("w"))
        commands = [("health-checker", "--name", f"bench-hc-{tag}"), ("endpoint", "--config", str(ep_cfg))]
        if worker:
            commands.append(("worker", "--id", f"bench-w-{tag}"))
        procs = [Proc(*args, service_url=cfg.service_url, admin_url=cfg.admin_url, log=log,
                      env={"PACELINE_LOG_LEVEL": "WARNING"}) for args in commands]  # fmt: skip
        for p in procs:
            stack.callback(p.stop)
        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        reports: dict[str, tuple[int, ExecutionReport]] = {}

        def take(m: Message) -> None:
            if isinstance(m, ExecutionReport) and m.exec_type is ExecType.NEW and m.trace is not None:
                reports.setdefault(m.cl_ord_id, (time.time_ns(), m))

        # As the endpoint takes them: from the reports' twin, the saga log and the reports topic, whichever
        # is first (the handlers run on the bus's one listener thread).
        def on_log(d: Any) -> None:
            for m in client_reports(d.message):
                take(m)

        stack.callback(bus.tail(topics.SAGA_LOG, SagaEvent, on_log, wanted=may_carry_reports).close)
        if early_new:
            stack.callback(bus.tail(topics.LIVE_REPORTS, ExecutionReport, lambda d: take(d.message)).close)
        published: set[str] = set()  # ClOrdIDs whose New the outbox has published: the order's work is done

        def on_topic(d: Any) -> None:
            take(d.message)
            if isinstance(d.message, ExecutionReport) and d.message.exec_type is ExecType.NEW:
                published.add(d.message.cl_ord_id)

        stack.callback(bus.subscribe(topics.REPORTS, f"bench-{tag}", Message, from_earliest=False,
                                     handler=on_topic).close)  # fmt: skip
        rx = Receiver(bus, name=f"bench-fix-{tag}", speed=5.0)
        last: list[Tick | None] = [None]

        def records() -> Any:
            for rec in sources.synthetic([symbol], seed=7, depth=2):
                if isinstance(rec, Tick):
                    last[0] = rec
                yield rec

        feed = threading.Thread(target=rx.run, args=(records(),), daemon=True)
        feed.start()

        @stack.callback
        def _stop_feed() -> None:
            rx.stop()
            feed.join(timeout=10)
            rx.close()

        # The initiator reconnects every second until the endpoint listens (the worker imports torch first).
        client = FixClient(tmp / "client", port).start(timeout_s=90)
        stack.callback(client.stop)
        actions = stream_of(topics.job_actions("AAPL"))
        if worker:
            # Orders wait for the worker to be in the pool: its start (importing torch, warming the RL
            # policy) takes one of the two cores for seconds, and orders sent meanwhile timed that start,
            # not the load of working them (the first 100 orders' tail in session 26, docs/PERFORMANCE.md).
            procs[0].wait_for_metric("paceline_hc_workers", 1.0, timeout_s=120)
        wall_minus_perf = time.time_ns() - time.perf_counter_ns()  # this process's stamps on the wall clock
        rtts: list[float] = []
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        timed: list[tuple[str, int, int]] = []  # ClOrdID, sent, first reply (wall clock)
        hop = _Hop(bus)
        stack.callback(hop.close)
        hop_np = _Hop(bus, kind="non-persistent")  # the request twin's kind
        stack.callback(hop_np.close)
        both: list[tuple[float | None, float | None]] = []  # each order's two probes
        gap_s = 1.0 / order_rate if order_rate > 0 else 0.0
        next_at = time.perf_counter()
        children = procs[2].counter("paceline_bus_published_total", stream=actions) if worker else None
        for i in range(orders + 10):
            if gap_s:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at = max(next_at + gap_s, time.perf_counter())
            t = last[0]
            assert t is not None
            low = round((t.bid_px + t.ask_px) / 2 * 0.97, 2)  # rests: a cap below the market
            cl = f"B{tag}-{i}"
            client.new_order(
                cl, symbol, 100, start_ns=t.ts_event, end_ns=t.ts_event + 3_600 * 10**9, price=low
            )
            f = client.wait(lambda m, cl=cl: m.get(11) == cl, timeout_s=60, what="the first report")
            if f.get(150) != "0":
                print(f"order refused: {f.get(58)}", file=sys.stderr)
                return 1
            if i < 10:  # the first ones warm up connections and code paths
                continue
            # The hops are probed once the order's commit and publish are over, as the New after the
            # commit left them: a New told early comes while they run, and a probe then shares the
            # bookie with them (a slower unit flatters the ratio: in six pairs the hop's p50 was 3.5 ms
            # against 3.1 so probed).
            deadline = time.monotonic() + 5.0
            while cl not in published and time.monotonic() < deadline:
                time.sleep(0.0002)
            both.append((hop.probe(), hop_np.probe()))
            sent_ns = int(client.sent_at[cl] * 1e9) + wall_minus_perf
            replied_ns = int(client.first_reply_at[cl] * 1e9) + wall_minus_perf
            rtts.append((replied_ns - sent_ns) / 1e6)
            timed.append((cl, sent_ns, replied_ns))
        if worker:  # the load beside the orders: the child orders the worker sent meanwhile (None: unread)
            after = procs[2].counter("paceline_bus_published_total", stream=actions)
            children = None if after is None or children is None else after - children
        # Cancelled afterwards, so no order's cancellation is in the way of the next one's round trip.
        for i in range(orders + 10):
            client.cancel(f"X{tag}-{i}", f"B{tag}-{i}", symbol, 100)
        for i in range(orders + 10):
            client.wait(lambda m, i=i: m.get(11) == f"X{tag}-{i}", timeout_s=120, what="the cancel's answer")
        for cl, sent_ns, replied_ns in timed:  # by now every report has reached this process too
            got = reports.get(cl)
            tr = got[1].trace if got is not None else None
            if got is None or tr is None or tr.request_recv_ns is None:
                continue
            mid = tr.stage_seconds(got[0])
            for name, sec in zip(STAGES, ((tr.request_recv_ns - sent_ns) / 1e9, *mid,
                                           (replied_ns - got[0]) / 1e9), strict=True):  # fmt: skip
                if sec is not None:
                    stages[name].append(max(0.0, sec) * 1e3)
        rtt, bare, bare_np = summary(rtts), summary(hop.ms), summary(hop_np.ms)
        # The layout's own floor, order by order, with nothing of ours around it (nor QuickFIX's two legs,
        # ~0.6 ms here: PERFORMANCE.md): on the store, the request's store (one persistent hop); a twin's hop
        # there and one back, beside the request's store; or the request's twin hop and then the commit's
        # persistent one.
        pairs = [(a, b) for a, b in both if a is not None and b is not None]
        on_store = early_new and new_on_store
        layout = summary([a if on_store else max(a, 2 * b) if early_new else a + b for a, b in pairs])
        copies = "also on the twin" if request_twin else "on the record only"
        copies += (", New on the request's store" if on_store else ", New told early" if early_new
                   else ", New after the commit")  # fmt: skip
        cadence = f"at most {order_rate:g} orders/s" if gap_s else "back to back"
        print(
            f"FIX NewOrderSingle -> ExecutionReport New, {len(rtts)} orders {cadence}, services in separate "
            f"processes, {'with' if worker else 'no'} worker, new orders' requests {copies}"
        )
        if worker:
            sent = "?" if children is None else f"{children:.0f}"
            print(f"the worker, in the pool before the first order, sent {sent} child orders meanwhile")
        print("| | n | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|")
        # On the store, the saga's stages past the desk are off the client's path (the endpoint's split
        # below).
        shown = ("client_to_endpoint", "desk") if on_store else STAGES
        floor = ("the hop (the request's store)" if on_store
                 else "max(hop, 2 x non-persistent hop)" if early_new else "the two hops added")  # fmt: skip
        rows = [("round trip", rtt), *((f"  {n}", summary(xs)) for n, xs in stages.items() if n in shown),
                ("bare pulsar-client hop (same broker, same run, one after each order)", bare),
                ("bare non-persistent hop (the request twin's kind, after it)", bare_np),
                (f"the layout's floor, order by order: {floor}", layout)]  # fmt: skip
        for name, st in rows:
            if st:
                print(f"| {name} | {st['n']:.0f} | {st['p50']:.2f} | {st['p99']:.2f} | {st['p99.9']:.2f} | "
                      f"{st['max']:.2f} |")  # fmt: skip
        endpoint = procs[1]
        means = []
        # The endpoint's own view (its histogram's mean: sum / count).
        for stage in ("desk", "store", "to_client") if on_store else ACK_STAGES:
            total = endpoint.metric("paceline_endpoint_ack_stage_seconds_sum", stage=stage)
            count = endpoint.metric("paceline_endpoint_ack_stage_seconds_count", stage=stage)
            if total is not None and count:
                means.append(f"{stage} {total / count * 1e3:.2f}")
        print("endpoint's histogram, mean ms by stage:", ", ".join(means))
        told = endpoint.metric("paceline_endpoint_early_new_total", outcome="told")
        print(f"News told early (ahead of their commit): {told or 0:.0f} of {len(rtts) + 10}")
        second: dict[str, float] = {}  # which half of the rule came second: what bounded each New
        if early_new and not on_store:
            waits = []
            for half in ("decision", "store"):
                name = "paceline_endpoint_early_new_wait_seconds"
                count = second[half] = endpoint.metric(f"{name}_count", second=half) or 0.0
                total = endpoint.metric(f"{name}_sum", second=half) or 0.0
                waits.append(f"{half} in {count:.0f}" + (f" (waited for, mean {total / count * 1e3:.2f} ms)"
                                                          if count else ""))  # fmt: skip
            print("of those, the later half of the rule was the", ", the ".join(waits))
        hc = procs[0]  # the saga's own view: a request's decision (its log append inside), the append alone

        def mean_ms(name: str, **labels: str) -> str:
            total, count = hc.metric(f"{name}_sum", **labels), hc.metric(f"{name}_count", **labels)
            return f"{total / count * 1e3:.2f}" if total is not None and count else "-"

        decision = mean_ms("paceline_hc_decision_seconds", kind="job_request")
        append = mean_ms("paceline_bus_publish_latency_seconds", stream=stream_of(topics.SAGA_LOG))
        print(
            f"health-checker, mean ms: a request's decision {decision} (its log append inside), "
            f"an append {append}"
        )
        if rtt and bare and layout:
            print(f"round trip at p50: {rtt['p50'] / bare['p50']:.2f}x the hop (goal: 2x), "
                  f"{rtt['p50'] / layout['p50']:.2f}x the layout's floor, "
                  f"{rtt['p50'] - layout['p50']:+.2f} ms over it")  # fmt: skip
        result = {"orders": len(rtts), "worker": worker, "request_twin": request_twin, "early_new": early_new,
                  "new_on_store": on_store, "order_rate": order_rate, "child_actions": children,
                  "rtt_ms": rtt, "bare_hop_ms": bare, "bare_np_hop_ms": bare_np,
                  "layout_floor_ms": layout, "early_new_second": second,
                  "stages_ms": {n: summary(xs) for n, xs in stages.items()}}  # fmt: skip
        print(json.dumps(result))
        return 0
    return 1


class _Hop:
    """The bare hop: one message on a fresh topic, sent until the consumer has it (ms). Probed once after
    each order, so it meets the broker at the orders' cadence and load; back to back, the broker's and the
    bookie's threads never sleep, which no order sees."""

    def __init__(self, bus: Bus, kind: str = "persistent") -> None:
        topic = f"{kind}://paceline/exec/bench-hop-{uuid.uuid4().hex[:8]}"
        self.consumer = bus.subscribe(topic, "bench", Tick)
        self.producer = bus.producer(topic)
        self.probe_msg: Any = Tick(symbol="HOP", seq=1, ts_event=1, ts_init=1, bid_px=1.0, bid_sz=1,
                                   ask_px=1.01, ask_sz=1)  # fmt: skip
        self.ms: list[float] = []

    def probe(self) -> float | None:
        """One hop (ms, also kept in ``ms``); None if the message did not come within 5 s."""
        t0 = time.perf_counter()
        self.producer.send_async(self.probe_msg)
        d = self.consumer.receive(timeout_ms=5_000)
        if d is None:
            return None
        ms = (time.perf_counter() - t0) * 1000
        self.ms.append(ms)
        self.consumer.ack(d)
        return ms

    def close(self) -> None:
        self.producer.close()
        self.consumer.unsubscribe()


__all__ = ["run"]
