"""The commands that show and prove the system: ``paceline demo``, ``bench``, ``soak`` and ``drill``."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.settings import Settings


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.demo.run import run_demo

    return run_demo(
        settings,
        symbols=args.symbols.split(","),
        minutes=args.minutes,
        speed=args.speed,
        keep_broker=args.keep_broker,
        out_dir=args.out,
        on_cluster=args.cluster,
    )


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.what == "codec":
        from paceline.bench import codec

        return codec.run(iterations=args.iterations)
    if args.what == "receiver":
        from paceline.bench import receiver

        return receiver.run(settings.pulsar_url, args.symbols.split(","), args.ticks)
    if args.what == "worker":
        from paceline.bench import worker

        return worker.run(settings.policy_dir)
    if args.what == "market":
        from paceline.bench import market

        return market.run(args.symbols.split(","), depths=[0, 5])
    if args.what == "fix":
        from paceline.bench import fix

        return fix.run(settings, orders=args.orders or 200, worker=not args.no_worker,
                       request_twin=not args.no_request_twin, early_new=not args.no_early_new,
                       new_on_store=not args.no_new_on_store, order_rate=args.order_rate)  # fmt: skip
    if args.what == "saga":
        from paceline.bench import saga

        return saga.run(settings, orders=args.orders or 500, rounds=args.rounds or 3)
    if args.what == "takeover":
        from paceline.bench import takeover

        lengths = [int(float(x)) for x in args.events.split(",")]
        return takeover.run(settings, lengths=lengths, fills=args.fills)
    if args.what == "restore":
        from paceline.bench import restore

        return restore.run(settings, lengths=[int(float(x)) for x in args.entries.split(",")],
                           rounds=args.rounds or 3)  # fmt: skip
    if args.what == "hops":
        from paceline.bench import hops

        modes = ["durable", "low-latency"] if args.mode == "both" else [args.mode]
        rounds = args.rounds or 4
        return max(hops.run(settings, low_latency=m == "low-latency", rounds=rounds) for m in modes)
    if args.what == "latency":
        from paceline.bench import latency

        modes = ["durable", "low-latency"] if args.mode == "both" else [args.mode]
        return latency.run(settings, rate=args.rate, symbols=args.symbols.split(","), jobs=args.jobs,
                           seconds=args.seconds, modes=modes, decision_s=args.decision,
                           browser=args.browser, stagger=args.stagger, workers=args.workers,
                           observer=args.observer,
                           live_ticks=args.live_ticks == "non-persistent" if args.live_ticks
                           else settings.live_twin)  # fmt: skip
    return 2


def cmd_soak(args: argparse.Namespace, settings: Settings) -> int:

    from paceline.drills.soak import run_soak

    res = run_soak(
        settings, parents=args.parents, fix_clients=args.fix_clients, native_clients=args.native_clients,
        symbols=args.symbols, speed=args.speed, seed=args.seed, kill_leader_at=args.kill_leader_at,
        start=args.start, end=args.end, out_dir=Path(args.out) if args.out else None,
    )  # fmt: skip
    return 0 if res.passed else 1


def cmd_drill(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.drills.drill import run_drill
    from paceline.drills.faults import CLUSTER_FAULTS, FAULTS

    failed = 0
    chosen = {"all": FAULTS, "all-cluster": CLUSTER_FAULTS}.get(args.fault, (args.fault,))
    for fault in chosen:
        res = run_drill(fault, settings, speed=args.speed, window_s=args.window, seed=args.seed)
        print(res.table(), flush=True)
        failed += not res.passed
    return 1 if failed else 0
