"""``paceline bench saga``: how fast the health-checker commits a burst of new orders (a basket at the open).

A health-checker runs as its own process on a standalone of its own, with no worker (each order is
accepted, opened at the venue and left waiting: eight saga events, three effects). This process publishes
``--orders`` job requests at once from one producer, as the endpoint would, and follows the saga log: a
request is done when its first report (the ``reported`` event) is committed there. Printed per round: when
the first, the median and the last request were done, counted from the first send, and the rate. Before
the rounds, lone requests one at a time give the floor the same run: one request's hop and commit.

Each input used to be its own append, so a burst queued behind one storage round trip per request; the
service now decides whatever has queued and commits it in one append (group commit, ``Orchestrator.group``).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from models import JobRequest, ParentOrder, SagaEvent, Side, now_ns, topics
from paceline.bench.stats import summary
from paceline.ops import broker
from paceline.ops.stack import Proc, keep_log_on_failure, start_scratch_broker
from runtime.bus import Bus
from runtime.settings import Settings


def run(settings: Settings, *, orders: int = 500, rounds: int = 3, lone: int = 20) -> int:
    tag = uuid.uuid4().hex[:6].upper()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-saga-")))
        cfg = start_scratch_broker(tmp / "broker", settings.cache_dir)
        stack.callback(broker.stop, cfg)
        keep_log_on_failure(stack, tmp / "services.log", f"paceline-bench-saga-{tag}")
        log = stack.enter_context((tmp / "services.log").open("w"))
        hc = Proc("health-checker", "--name", f"bench-hc-{tag}", service_url=cfg.service_url,
                  admin_url=cfg.admin_url, log=log, env={"PACELINE_LOG_LEVEL": "WARNING"})  # fmt: skip
        stack.callback(hc.stop)
        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        done: dict[str, float] = {}
        wanted: set[str] = set()
        all_done = threading.Event()

        def on_log(d: Any) -> None:  # the bus's listener thread
            ev = d.message
            if ev.name == "reported" and ev.saga_id in wanted and ev.saga_id not in done:
                done[ev.saga_id] = time.perf_counter()
                if len(done) == len(wanted):
                    all_done.set()

        stack.callback(bus.tail(topics.SAGA_LOG, SagaEvent, on_log).close)
        prod = bus.producer(topics.JOB_REQUESTS)
        stack.callback(prod.close)
        serial = [0]

        def burst(n: int, timeout_s: float = 120.0) -> list[float]:
            """Publish ``n`` requests at once; ms from the first send until each was committed."""
            t = now_ns()
            reqs = []
            for _ in range(n):
                serial[0] += 1
                pid = f"BS{tag}-{serial[0]}"
                p = ParentOrder(parent_id=pid, client_id="BENCH", cl_ord_id=pid, symbol=f"BS{tag}",
                                side=Side.BUY, quantity=100, start_ns=t, end_ns=t + 3_600 * 10**9,
                                ts_init=t)  # fmt: skip
                reqs.append(JobRequest(job_id=f"J{pid}", parent=p, ts_init=t))
            done.clear()
            wanted.clear()
            wanted.update(r.parent.parent_id for r in reqs)
            all_done.clear()
            t0 = time.perf_counter()
            for r in reqs:
                prod.send_async(r, key=r.parent.parent_id)
            prod.flush()
            if not all_done.wait(timeout_s):
                raise TimeoutError(f"{len(done)} of {n} requests committed after {timeout_s:.0f} s")
            return sorted((at - t0) * 1e3 for at in done.values())

        burst(1, timeout_s=120.0)  # waits for the leader and warms its paths
        burst(20)
        floor = [burst(1)[0] for _ in range(lone)]
        fl = summary(floor)
        print(f"saga group commit: {orders} job requests at once, a health-checker in its own process\n")
        print(f"lone request, published -> committed: p50 {fl['p50']:.2f} ms, max {fl['max']:.2f} ms "
              f"({lone} of them)\n")  # fmt: skip
        print("| round | first ms | half ms | all ms | requests/s |\n|---|---|---|---|---|")
        for i in range(rounds):
            ms = burst(orders)
            rate = orders / ms[-1] * 1e3
            print(f"| {i + 1} | {ms[0]:.1f} | {ms[len(ms) // 2]:.1f} | {ms[-1]:.1f} | {rate:.0f} |")
        total, count = hc.metric("paceline_hc_group_inputs_sum"), hc.metric("paceline_hc_group_inputs_count")
        if total is not None and count:
            print(f"\nhealth-checker: {count:.0f} group commits, {total / count:.1f} inputs each on average")
    return 0
