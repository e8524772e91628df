"""The commands that run one service in the foreground (``paceline receiver``, ``worker``,
``health-checker``, ``endpoint``, ``dashboard``) and the operator's ``risk`` and ``tca``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from models import topics
from runtime.settings import Settings


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.service import Dashboard
    from runtime import metrics
    from runtime.bus import Bus

    metrics.serve(settings.metrics_port, settings.metrics_addr)
    with Bus(settings.pulsar_url, quiet=True) as bus:
        dash = Dashboard(bus, settings.pulsar_admin_url, host=args.host, port=args.port, rate_hz=args.rate)

        def start() -> None:
            print(f"dashboard on http://{args.host}:{dash.start().port}/", flush=True)

        _serve_until_signalled(start, dash.stop)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:

    from runtime import metrics
    from runtime.bus import Bus
    from worker.nets import one_thread
    from worker.policy_files import PolicyRegistry
    from worker.service import WorkerService

    one_thread()  # inference at batch sizes this small is fastest on one thread
    metrics.serve(settings.metrics_port, settings.metrics_addr)
    with Bus(settings.pulsar_url) as bus:
        svc = WorkerService(bus, args.id, PolicyRegistry(settings.policy_dir), capacity=args.capacity,
                            decision_s=args.decision,
                            live_ticks=settings.live_twin)  # fmt: skip
        _serve_until_signalled(svc.start, svc.stop)
    return 0


def _serve_until_signalled(start: Callable[[], None], stop_svc: Callable[[], None]) -> None:
    from runtime import heap

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start()
    heap.settle()
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    stop_svc()


def cmd_health_checker(args: argparse.Namespace, settings: Settings) -> int:
    from health_checker.coordinator import Config
    from health_checker.service import HealthChecker
    from runtime import metrics
    from runtime.bus import Bus

    metrics.serve(settings.metrics_port, settings.metrics_addr)
    symbols = frozenset(s.strip().upper() for s in args.symbols.split(",") if s.strip()) or None
    config = Config(
        heartbeat_timeout_s=args.heartbeat_timeout, assign_wait_s=args.assign_wait, symbols=symbols,
        snapshot_every=args.snapshot_every,
    )  # fmt: skip
    with Bus(settings.pulsar_url, quiet=True) as bus:
        hc = HealthChecker(bus, args.name, config, admin_url=settings.pulsar_admin_url)
        _serve_until_signalled(hc.start, hc.stop)
    return 0


def cmd_endpoint(args: argparse.Namespace, settings: Settings) -> int:
    from endpoint.config import CREDENTIALS_ENV, load
    from endpoint.service import EndpointService
    from runtime import metrics
    from runtime.bus import Bus

    metrics.serve(settings.metrics_port, settings.metrics_addr)
    cfg = load(args.config)
    if args.name:
        cfg = cfg.model_copy(update={"name": args.name})
    if args.host:
        cfg = cfg.model_copy(update={"native_host": args.host})
    if args.fix_allow:
        allowed = () if args.fix_allow == "any" else tuple(a.strip() for a in args.fix_allow.split(","))
        cfg = cfg.model_copy(update={"fix_allowed_addresses": allowed})
    if os.environ.get("PACELINE_ALLOW_DEMO_CREDENTIALS") == "1":  # a private container network
        cfg = cfg.model_copy(update={"allow_demo_credentials_anywhere": True})
    if why := cfg.exposed_demo_credentials():
        print("error: refusing to start: " + "; ".join(why) + ". Configure credentials of your own "
              f"({CREDENTIALS_ENV}=FILE, see the README's Security section).", file=sys.stderr)  # fmt: skip
        return 2
    with Bus(settings.pulsar_url) as bus:
        svc = EndpointService(bus, cfg)
        _serve_until_signalled(svc.start, svc.stop)
    return 0


def cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
    from models import KillState, RiskControl, now_ns
    from runtime.bus import Bus

    with Bus(settings.pulsar_url) as bus:
        if args.action == "set":
            msg = RiskControl(client_id=args.client, state=KillState(args.state.upper()), ts_init=now_ns())
            prod = bus.producer(topics.RISK)
            prod.send(msg, key=args.client or "ALL")
            prod.close()
        states: dict[str, str] = {}
        for d in bus.read_all(topics.RISK, RiskControl):
            states[d.message.client_id or "ALL"] = d.message.state.value
    print(json.dumps(states or {"ALL": "ACTIVE"}, indent=2))
    return 0


def cmd_tca(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.reports import tca_report
    from runtime.bus import Bus

    out = args.out or settings.home / "tca"
    with Bus(settings.pulsar_url) as bus:
        archive = tca_report.Archive(bus)
        try:
            paths = [tca_report.write(archive, cl, out, args.client) for cl in args.cl_ord_id]
        except tca_report.NotFoundError as exc:
            print(f"paceline tca: {exc}", file=sys.stderr)
            return 1
    for p in paths:
        print(p)
    return 0


def cmd_receiver(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.service import Receiver
    from receiver.sources import FeedMerger, Record, lobster, synthetic, tick_file
    from runtime import metrics
    from runtime.bus import Bus

    feeds: list[Iterator[Record]] = []
    if args.source == "synthetic":
        feeds.append(synthetic(args.symbols.split(","), args.seed, depth=args.depth))
    elif args.source == "lobster":
        if not args.messages:
            print(
                "error: --source lobster needs --messages (and --orderbook to check the book)",
                file=sys.stderr,
            )
            return 2
        orderbook = Path(args.orderbook) if args.orderbook else None
        feeds.append(lobster(args.symbol, Path(args.messages), orderbook, depth=args.depth))
    else:
        feeds += [tick_file(Path(p)) for p in args.files]
    metrics.serve(settings.metrics_port, settings.metrics_addr)
    speed = None if args.speed == "max" else float(args.speed)
    with Bus(settings.pulsar_url) as bus:
        rx = Receiver(bus, name=args.name, speed=speed, batching=args.batching,
                      live=settings.live_twin)  # fmt: skip
        signal.signal(signal.SIGTERM, lambda *_: rx.stop())
        try:
            stats = rx.run(FeedMerger().merge(*feeds) if len(feeds) > 1 else feeds[0])
        except KeyboardInterrupt:
            rx.stop()
            stats = rx.stats
        per_symbol = rx.per_symbol
        rx.close()
    print(f"ticks in {stats.ticks_in}, published {stats.published}, failed {stats.failed}, "
          f"malformed {stats.malformed}; per symbol {per_symbol}")  # fmt: skip
    return 0 if stats.failed == 0 else 1
