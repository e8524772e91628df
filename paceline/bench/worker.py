"""``paceline bench worker``: the decision engine's latency from a tick to the actions it causes, encoded
for the wire (what a send takes from here is the client's enqueue), at 1, 100 and 1,000 concurrent RL jobs,
beside the policy's bare inference time measured in the same run.

Jobs are spread over four symbols and their decision times are staggered across the 30 s interval, as
jobs arriving through the day would be; the worst case, every job on one symbol and due on the same tick, is
shown too. The shared venue answers every action (untimed), as the endpoint would, so open orders and
cancels are what they are live."""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from market.session import SESSION_OPEN_S, midnight_ns
from market.synthetic import SymbolSpec, SyntheticMarket
from market.venue import Venue
from models import (
    DEFAULT_RL_POLICY,
    DEFAULT_SYMBOLS,
    ChildOrderAction,
    JobAssignment,
    Message,
    ParentOrder,
    Side,
    Strategy,
    VenueCommand,
    VenueOp,
    codec,
)
from paceline.bench.stats import percentile
from runtime import heap
from worker import policy_files
from worker.engine import Engine
from worker.nets import PolicyNet, one_thread
from worker.policy import OBS_DIM
from worker.policy_files import PolicyRegistry

S = 1_000_000_000
SYMBOLS = list(DEFAULT_SYMBOLS)


def _registry(policy_dir: Path) -> tuple[PolicyRegistry, str]:
    reg = PolicyRegistry(policy_dir)
    if DEFAULT_RL_POLICY in reg.names():
        return reg, DEFAULT_RL_POLICY
    tmp = Path(tempfile.mkdtemp())
    policy_files.save(PolicyNet(), tmp, "bench-net", 1)
    return PolicyRegistry(tmp), "bench-net"


def run_engine(
    reg: PolicyRegistry, policy: str, jobs: int, *, aligned: bool, minutes: int = 10, columns: bool = True,
    models: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Staggered: jobs over four symbols, due at spread times. Aligned: every job on one symbol, all due on
    the same ticks (the worst case). The children are written as the live worker writes them
    (``Engine.on_tick_wire``). To show in the same run what each step saves: ``models`` True: validated as
    models, then encoded one by one (``on_tick``, ``codec.encode``); ``columns`` False: every batch decided
    job by job (the engine's path below ``COLUMNAR_FROM``)."""
    start_s = SESSION_OPEN_S + 3600
    market = SyntheticMarket([SymbolSpec(s) for s in SYMBOLS], 1, depth=2, close_s=start_s + minutes * 60)
    ticks = list(market)
    day = midnight_ns(ticks[0].ts_event)
    eng = Engine("bench", reg, decision_s=30, spread=False)  # the schedule is the bench's, aligned or not
    if not columns:
        eng.columnar_from = jobs + 1
    venue = Venue()
    for i in range(jobs):
        offset = 0 if aligned else (i * 30 * S) // max(jobs, 1)
        t0 = day + start_s * S + offset
        parent = ParentOrder(
            parent_id=f"P{i}", client_id="C", cl_ord_id=f"c{i}", symbol=SYMBOLS[0 if aligned else i % 4],
            side=Side.BUY, quantity=10_000, start_ns=t0, end_ns=t0 + (minutes - 1) * 60 * S,
            strategy=Strategy.RL, policy=policy, ts_init=t0,
        )  # fmt: skip
        a = JobAssignment(
            job_id=f"J{i}", worker_id="bench", epoch=1, parent=parent, quantity=10_000, ts_init=t0
        )
        venue.command(VenueCommand(command_id=f"J{i}.open", op=VenueOp.OPEN, job_id=a.job_id,
                                   parent_id=parent.parent_id, symbol=parent.symbol, side=parent.side,
                                   quantity=a.quantity, epoch=1, ts_init=t0))  # fmt: skip
        eng.assign(a)
    heap.settle()  # as the live worker once started: the bench's market out of the collector's sight

    def deliver(messages: list[Message]) -> None:
        for m in messages:
            eng.on_execution(m)

    per_tick: list[float] = []
    decided = 0
    for tick in ticks:
        deliver(venue.on_tick(tick))
        t = time.perf_counter()
        if models:
            actions = eng.on_tick(tick)
            for child in actions:
                codec.encode(child)
        else:
            wire = eng.on_tick_wire(tick)
        dt = time.perf_counter() - t
        if not models:
            actions = [codec.decode(payload, ChildOrderAction) for payload in wire[1]]  # the venue's, untimed
        if actions:
            per_tick.append(dt)
            decided += len({a.job_id for a in actions})
        for child in actions:
            deliver(venue.action(child))
        # What the venue keeps (every order of the day: 105,000 of them in an hour of 1,000 jobs) lives in
        # the endpoint's and the venue's processes, not the worker's: out of the collector's sight, as its
        # market is. Else a full collection over it lands in a timed tick: 100-780 ms, growing with the day.
        # The tick's own objects and what its deliveries brought stay young for the next tick, as live.
        gc.freeze()
    gc.unfreeze()
    total = sum(per_tick)
    return {
        "jobs": jobs, "p50_ms": percentile(per_tick, 0.5) * 1e3, "p99_ms": percentile(per_tick, 0.99) * 1e3,
        "max_ms": max(per_tick) * 1e3 if per_tick else float("nan"),
        "us_per_job_decision": total / max(decided, 1) * 1e6, "decisions": decided,
    }  # fmt: skip


def bare_inference(forward: Callable[[np.ndarray], object], batch: int, n: int = 2000) -> float:
    """µs per call of ``forward`` on a batch of zeros (a float32 array, as the engine hands its policy)."""
    x = np.zeros((batch, OBS_DIM), np.float32)
    with torch.no_grad():
        for _ in range(100):
            forward(x)
        t = time.perf_counter()
        for _ in range(n):
            forward(x)
    return (time.perf_counter() - t) / n * 1e6


def _torch(module: torch.nn.Module) -> Callable[[np.ndarray], object]:
    return lambda x: module(torch.from_numpy(x)).numpy()


def run(policy_dir: Path) -> int:
    one_thread()
    reg, policy = _registry(policy_dir)
    loaded = reg.load(policy)
    _, exported = policy_files.validate(reg.folder / policy / str(loaded.manifest.version))
    print(f"policy {loaded.name}: bare inference, one thread, µs per forward pass")
    # The file's torch.export module, its weights in torch's own eager layers, and what the worker runs.
    state = exported.state_dict()
    eager = PolicyNet(hidden=int(state["body.0.weight"].shape[0]), actions=len(loaded.actions))
    eager.load_state_dict(state)
    print(f"{'batch':>7s} {'torch.export module':>20s} {'torch eager':>12s} {'as loaded':>10s}")
    for b in (1, 100, 1000):
        cells = (bare_inference(_torch(exported), b), bare_inference(_torch(eager.eval()), b),
                 bare_inference(loaded.scores, b))  # fmt: skip
        print(f"{b:7d} {cells[0]:20.1f} {cells[1]:12.1f} {cells[2]:10.1f}")
    print(f"(as loaded: {'numpy' if loaded.net is not None else 'the torch.export module'})")
    head = ("jobs", "schedule", "tick->encoded p50 ms", "p99 ms", "max ms", "µs/job decision")
    print(f"\n{head[0]:>6s} {head[1]:>10s} {head[2]:>21s} {head[3]:>8s} {head[4]:>8s} {head[5]:>16s}")
    runs = [(1, "staggered", 10), (100, "staggered", 10), (100, "aligned", 10), (1000, "staggered", 10),
            (1000, "aligned", 10), (1000, "models", 10), (1000, "job by job", 10),
            (1000, "aligned", 60)]  # fmt: skip
    for jobs, sched, minutes in runs:
        r = run_engine(reg, policy, jobs, aligned=sched != "staggered", columns=sched != "job by job",
                       models=sched in ("models", "job by job"), minutes=minutes)  # fmt: skip
        label = sched if minutes == 10 else f"{sched} {minutes}m"
        print(f"{jobs:6d} {label:>10s} {r['p50_ms']:21.3f} {r['p99_ms']:8.3f} {r['max_ms']:8.3f} "
              f"{r['us_per_job_decision']:16.1f}")  # fmt: skip
    print("(models: the aligned 1,000 as columns, the children validated as models and encoded one by one;")
    print(" job by job: that, with every batch decided one job at a time, as before the columns;")
    print(
        " 10 market minutes, where the policy sends market orders, except 60m: jobs of an hour, where it also"
    )
    print(" rests limit orders and replaces them, a cancel and a new child per job on many ticks)")
    return 0
