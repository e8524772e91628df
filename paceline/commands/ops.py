"""The commands that run the system's parts: ``paceline broker``, ``cluster`` and ``secret``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models import topics
from paceline.ops.broker import BrokerConfig
from runtime.settings import Settings


def _broker_cfg(args: argparse.Namespace, settings: Settings) -> BrokerConfig:
    run_dir = Path(args.run_dir) if args.run_dir else settings.home / "broker"
    return BrokerConfig(
        run_dir=run_dir,
        cache_dir=settings.cache_dir,
        port=args.port,
        web_port=args.web_port,
        bookie_port=args.bookie_port,
        low_latency=getattr(args, "low_latency", False),
        # Once set up for authentication, a run folder keeps it (its tokens are in auth/).
        auth=getattr(args, "auth", False) or (run_dir / "auth" / "admin.token").exists(),
    )


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.ops import broker
    from runtime import auth

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
            if cfg.auth:
                print(f"token authentication and authorisation on: one token per role in {cfg.auth_dir} "
                      "(run a service with PACELINE_PULSAR_TOKEN_FILE=<role>.token)")  # fmt: skip
        elif args.action == "wait":
            waited = broker.wait(cfg, timeout_s=args.timeout)
            print(f"broker ready after {waited:.1f} s")
        elif args.action == "stop":
            stopped = broker.stop(cfg)
            print("broker stopped" if stopped else "no broker running for this run folder")
        elif args.action == "setup":
            admin = args.admin_url or settings.pulsar_admin_url
            broker.ensure_namespaces(admin, cluster=args.cluster)
            print(f"tenant {topics.TENANT} and namespaces {', '.join(topics.NAMESPACES)} ready on {admin}")
            if args.auth:  # as the superuser (PACELINE_PULSAR_TOKEN[_FILE])
                broker.grant_roles(admin, None)
                print(f"roles granted: {', '.join(broker.GRANTS)}")
        elif args.action == "tokens":
            files = auth.write_tokens(cfg.auth_dir)
            print(f"secret key and one token per role in {cfg.auth_dir}: {', '.join(files)}")
        elif args.action == "status":
            st = broker.status(cfg)
            print(json.dumps(st, indent=2))
            return 0 if st["ready"] else 3
    except broker.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.ops import broker, cluster

    run_dir = Path(args.run_dir) if args.run_dir else settings.home / "cluster"
    cfg = cluster.ClusterConfig.load(run_dir, settings.cache_dir)
    try:
        if args.action == "start":
            if cfg is None:
                cfg = cluster.ClusterConfig.new(run_dir, settings.cache_dir, auth=args.auth)
            broker.provision(settings.cache_dir)
            took = cluster.start(cfg)
            st = cluster.status(cfg)
            print(f"cluster {cluster.CLUSTER} ready after {took['ready']:.1f} s "
                  f"(zookeeper {took['zookeeper']:.1f}, metadata {took['metadata']:.1f}, "
                  f"bookies {took['bookies']:.1f}, brokers {took['brokers']:.1f}); "
                  f"{st['rss_mb_total']} MB resident")  # fmt: skip
            print(f"service URL {cfg.service_url} (PACELINE_PULSAR_URL), admin {cfg.admin_urls[0]}")
        elif cfg is None:
            print(f"no cluster in {run_dir}", file=sys.stderr)
            return 3
        elif args.action == "stop":
            stopped = cluster.stop(cfg)
            print(f"stopped {', '.join(stopped) or 'nothing (nothing ran)'}")
        else:
            st = cluster.status(cfg)
            print(json.dumps(st, indent=2))
            return 0 if all(st["brokers_ready"]) else 3
    except broker.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_secret(args: argparse.Namespace, settings: Settings) -> int:
    """``hash``: a password from stdin (or the terminal, not echoed) as a ``password_hash``; ``token``: a new
    native-protocol token (give it to the client) and its ``token_hash`` (for the endpoint)."""
    import getpass

    from runtime.secrets import hash_password, hash_token, new_token

    if args.action == "token":
        token = new_token()
        print(f"token      {token}\ntoken_hash {hash_token(token)}")
        return 0
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        print("no password given", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
