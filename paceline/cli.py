"""The ``paceline`` command (also ``python -m paceline``)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from models import topics
from paceline.broker import BrokerConfig
from runtime.settings import Settings


def _broker_cfg(args: argparse.Namespace, settings: Settings) -> BrokerConfig:
    return BrokerConfig(
        run_dir=Path(args.run_dir) if args.run_dir else settings.home / "broker",
        cache_dir=settings.cache_dir,
        port=args.port,
        web_port=args.web_port,
        bookie_port=args.bookie_port,
        low_latency=getattr(args, "low_latency", False),
    )


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from paceline import broker

    cfg = _broker_cfg(args, settings)
    try:
        if args.action == "provision":
            res = broker.provision(settings.cache_dir, quiet=not args.verbose)
            how = "downloaded" if res.downloaded else "reused cache"
            print(
                f"Apache Pulsar {broker.pulsar_version()}: {res.jars} jars, {res.size_mb:.0f} MB "
                f"in {res.lib_dir} ({how}, {res.seconds:.1f} s)"
            )
        elif args.action == "start":
            if args.low_latency:
                broker.warn_low_latency()
            broker.provision(settings.cache_dir)
            pid = broker.start(cfg)
            print(f"broker starting: pid {pid}, run folder {cfg.run_dir}")
            if not args.no_wait:
                waited = broker.wait(cfg, timeout_s=args.timeout)
                print(f"broker ready at {cfg.service_url} (admin {cfg.admin_url}) after {waited:.1f} s")
        elif args.action == "wait":
            waited = broker.wait(cfg, timeout_s=args.timeout)
            print(f"broker ready after {waited:.1f} s")
        elif args.action == "stop":
            stopped = broker.stop(cfg)
            print("broker stopped" if stopped else "no broker running for this run folder")
        elif args.action == "setup":
            admin = args.admin_url or settings.pulsar_admin_url
            broker.ensure_namespaces(admin)
            print(f"tenant {topics.TENANT} and namespaces {', '.join(topics.NAMESPACES)} ready on {admin}")
        elif args.action == "status":
            st = broker.status(cfg)
            print(json.dumps(st, indent=2))
            return 0 if st["ready"] else 3
    except broker.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.demo import run_demo

    return run_demo(
        settings,
        symbols=args.symbols.split(","),
        ticks=args.ticks,
        rate=args.rate,
        keep_broker=args.keep_broker,
    )


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.what == "codec":
        from paceline.bench.codec import run

        return run(iterations=args.iterations)
    return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paceline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("broker", help="provision, start, stop and inspect a local Apache Pulsar standalone")
    b.add_argument("action", choices=["provision", "start", "stop", "status", "wait", "setup"])
    b.add_argument(
        "--admin-url", help="setup: the admin API of any broker (default: PACELINE_PULSAR_ADMIN_URL)"
    )
    b.add_argument("--run-dir", help="broker run folder (default: $PACELINE_HOME/broker)")
    b.add_argument("--port", type=int, default=6650)
    b.add_argument("--web-port", type=int, default=8080)
    b.add_argument("--bookie-port", type=int, default=3181)
    b.add_argument("--low-latency", action="store_true", help="journal off: NOT durable (benchmarks only)")
    b.add_argument("--no-wait", action="store_true", help="start: return before the broker is ready")
    b.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(func=_cmd_broker)

    d = sub.add_parser("demo", help="bring up Pulsar and push typed ticks through it end to end")
    d.add_argument("--symbols", default="AAPL,MSFT,NVDA,AMZN")
    d.add_argument("--ticks", type=int, default=2000, help="ticks per symbol")
    d.add_argument("--rate", type=float, default=2000.0, help="ticks per second, all symbols together")
    d.add_argument("--keep-broker", action="store_true", help="leave the broker running afterwards")
    d.set_defaults(func=_cmd_demo)

    be = sub.add_parser("bench", help="benchmarks that print their figures")
    be.add_argument("what", choices=["codec"])
    be.add_argument("--iterations", type=int, default=50_000)
    be.set_defaults(func=_cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from runtime import logs

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `paceline ... | head` ends quietly
    args = build_parser().parse_args(argv)
    settings = Settings()
    sys.setswitchinterval(settings.switch_interval_us / 1e6)
    logs.configure(f"paceline-{args.command}", fmt=settings.log_format, level=settings.log_level)
    result: int = args.func(args, settings)
    return result
