"""The ``paceline`` command (also ``python -m paceline``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from models import DEFAULT_RL_POLICY, DEFAULT_SYMBOLS, topics
from paceline.broker import BrokerConfig
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


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from paceline import broker
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


def _cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from paceline import broker, cluster

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


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.demo import run_demo

    return run_demo(
        settings,
        symbols=args.symbols.split(","),
        minutes=args.minutes,
        speed=args.speed,
        keep_broker=args.keep_broker,
        out_dir=args.out,
        on_cluster=args.cluster,
    )


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
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

        return fix.run(settings, orders=args.orders, worker=not args.no_worker)
    if args.what == "takeover":
        from paceline.bench import takeover

        lengths = [int(float(x)) for x in args.events.split(",")]
        return takeover.run(settings, lengths=lengths, fills=args.fills)
    if args.what == "latency":
        from paceline.bench import latency

        modes = ["durable", "low-latency"] if args.mode == "both" else [args.mode]
        return latency.run(settings, rate=args.rate, symbols=args.symbols.split(","), jobs=args.jobs,
                           seconds=args.seconds, modes=modes, decision_s=args.decision,
                           browser=args.browser)  # fmt: skip
    return 2


def _cmd_soak(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from paceline.soak import run_soak

    res = run_soak(
        settings, parents=args.parents, fix_clients=args.fix_clients, native_clients=args.native_clients,
        symbols=args.symbols, speed=args.speed, seed=args.seed, kill_leader_at=args.kill_leader_at,
        start=args.start, end=args.end, out_dir=Path(args.out) if args.out else None,
    )  # fmt: skip
    return 0 if res.passed else 1


def _cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_drill(args: argparse.Namespace, settings: Settings) -> int:
    from paceline.drill import run_drill
    from paceline.faults import CLUSTER_FAULTS, FAULTS

    failed = 0
    chosen = {"all": FAULTS, "all-cluster": CLUSTER_FAULTS}.get(args.fault, (args.fault,))
    for fault in chosen:
        res = run_drill(fault, settings, speed=args.speed, window_s=args.window, seed=args.seed)
        print(res.table(), flush=True)
        failed += not res.passed
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out) if args.out else settings.policy_dir
    if args.method == "placement":
        from worker.placement import TRAIN_SEED, train_placement

        if (profiles := _profiles(args.profiles)) is None:
            return 2
        seed = TRAIN_SEED if args.seed is None else args.seed
        vdir = train_placement(out, args.name, days=args.days, profiles=profiles, seed=seed,
                               horizon=args.horizon, jobs=args.jobs,
                               samples=Path(args.samples) if args.samples else None,
                               command="paceline " + " ".join(sys.argv[1:]),
                               progress=not args.no_progress)  # fmt: skip
        print(f"policy written to {vdir}")
        print((vdir / "manifest.json").read_text())
        return 0
    from worker.env import EnvConfig
    from worker.train import train

    def pair(text: str | None) -> tuple[float, float] | None:
        if not text:
            return None
        lo, hi = (float(x) for x in text.split(","))
        return lo, hi

    cfg = EnvConfig(
        window_s=args.window, decision_s=args.decision, reward=args.reward, actions=args.actions,
        band=args.band, windows=tuple(int(w) for w in args.windows.split(",")) if args.windows else (),
        sizes=pair(args.sizes), vols=pair(args.vols), lobster_dir=args.lobster,
        lobster_share=args.lobster_share,
    )  # fmt: skip
    vdir = train(out, args.name, steps=args.steps, seed=7 if args.seed is None else args.seed,
                 n_envs=args.envs, config=cfg,
                 checkpoint_dir=Path(args.checkpoints) if args.checkpoints else None,
                 progress=not args.no_progress, eval_episodes=args.eval_episodes, processes=args.processes,
                 command="paceline " + " ".join(sys.argv[1:]), verbose=args.verbose,
                 init=Path(args.init) if args.init else None, prefer=args.prefer,
                 prefer_logit=args.prefer_logit, learning_rate=args.learning_rate,
                 ent_coef=args.ent_coef)  # fmt: skip
    print(f"policy written to {vdir}")
    print((vdir / "manifest.json").read_text())
    return 0


def _figures(evaluation: dict[str, object]) -> str:
    """A policy file's headline figures from its manifest: the backtest's paired differences when it has
    them (per horizon), else the older quick check against TWAP."""
    backtest = evaluation.get("backtest")
    if isinstance(backtest, dict) and backtest:
        lines = []
        for kind, run in backtest.items():
            parts = []
            for h, e in run.get("horizons", {}).items():
                tw, ac = e.get("minus_twap_bps"), e.get("minus_ac_bps")
                if tw and ac:
                    parts.append(f"{h} vs TWAP {tw[0]:+.1f} [{tw[1]:+.1f}, {tw[2]:+.1f}], "
                                 f"vs AC {ac[0]:+.1f} [{ac[1]:+.1f}, {ac[2]:+.1f}]")  # fmt: skip
            lines.append(f"\n      backtest ({kind}, n={run.get('episodes')}): " + "; ".join(parts))
        return "".join(lines)
    figures = evaluation.get("minus_twap_bps")
    if isinstance(figures, dict):
        return f"  vs TWAP {figures['mean']:+.2f} ± {figures['ci95']:.2f} bps (quick check)"
    return ""


def _cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from market.recorded import RecordedDataError
    from worker import backtest, policy_files

    folder = Path(args.dir) if args.dir else settings.policy_dir
    reg = policy_files.PolicyRegistry(folder)
    names = args.policies.split(",") if args.policies else [*backtest.BASELINES, *reg.names()]
    try:
        policies = backtest.resolve(names, reg)
    except (ValueError, policy_files.PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Pin every file to the version resolved now, so all processes and days run the same one.
    names = [p.label for p in policies]
    horizons = args.horizons.split(",")
    if bad := [h for h in horizons if h not in backtest.HORIZONS]:
        print(f"error: unknown horizon(s) {bad}; choose from {list(backtest.HORIZONS)}", file=sys.stderr)
        return 2
    sizes = [float(x) for x in args.sizes.split(",")]
    days: list[backtest.DayMaker]
    try:
        if args.lobster:
            data = f"LOBSTER-format files in {args.lobster}"
            days = backtest.lobster_days(Path(args.lobster))
        else:
            if (profiles := _profiles(args.profiles)) is None:
                return 2
            data = (f"generated order-level days (market.orderflow, queue-aware fills), {args.days} day(s) x "
                    f"profiles {', '.join(profiles)}, seeds {args.seed}+")  # fmt: skip
            days = backtest.synthetic_days(args.days, profiles, args.seed)
        meta = {"data": data, "decision_s": args.decision, "latency_ms": args.latency_ms,
                "horizons": horizons, "sizes": sizes, "policies": names,
                "command": "paceline " + " ".join(sys.argv[1:])}  # fmt: skip
        rows = backtest.run(days, names, folder, horizons=horizons, sizes=sizes, decision_s=args.decision,
                            latency_ns=round(args.latency_ms * 1e6), progress=not args.no_progress,
                            jobs=args.jobs)  # fmt: skip
    except RecordedDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("error: no episode fits the data (is the session covered?)", file=sys.stderr)
        return 2
    md, pngs = backtest.report(rows, Path(args.out), meta)
    print(md)
    if args.record:
        for name in backtest.record(rows, meta, reg, "lobster" if args.lobster else "synthetic"):
            print(f"figures recorded in the manifest of {name}")
    print("written: " + ", ".join(str(p) for p in [Path(args.out) / "report.md", *pngs]))
    return 0


def _profiles(text: str) -> list[str] | None:
    """Comma-separated market profiles (``market.orderflow``), or None after saying which are unknown."""
    from market.orderflow import PROFILES

    names = text.split(",")
    if bad := [p for p in names if p not in PROFILES]:
        print(f"error: unknown profile(s) {bad}; choose from {sorted(PROFILES)}", file=sys.stderr)
        return None
    return names


def _cmd_lobster_days(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from market.recorded import write_day

    symbols = args.symbols.split(",")
    if (profiles := _profiles(args.profiles)) is None:
        return 2
    if len(profiles) == 1:
        profiles *= len(symbols)
    if len(profiles) != len(symbols):
        print("error: --profiles takes one profile, or one per symbol", file=sys.stderr)
        return 2
    out = Path(args.out)
    first = dt.date.fromisoformat(args.start_date)
    changes = {"events_per_s": args.rate} if args.rate else {}
    n = 0
    for d in range(args.days):
        date = (first + dt.timedelta(days=d)).isoformat()
        for k, (sym, prof) in enumerate(zip(symbols, profiles, strict=True)):
            seed = args.seed + 1000 * d + k
            m, o = write_day(out, seed, sym, date, levels=args.levels, profile=prof, **changes)
            print(f"{m.name}, {o.name} ({prof}, seed {seed})")
            n += 1
    print(f"{n} generated LOBSTER-format day(s) in {out}")
    return 0


def _cmd_market_facts(args: argparse.Namespace, settings: Settings) -> int:
    import json
    import tempfile

    from market import facts
    from market.recorded import RecordedDataError, RecordedDay, find_days, write_day
    from market.synthetic import SymbolSim, SymbolSpec

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    days: dict[str, dict[str, float]] = {}
    try:
        for spec in args.days:
            kind, _, rest = spec.partition(":")
            if kind == "gen":  # gen:PROFILE[:SEED]
                prof, _, seed = rest.partition(":")
                with tempfile.TemporaryDirectory() as tmp:
                    m, _o = write_day(Path(tmp), int(seed or 1_000_000), "GEN", "2026-01-05", 5, profile=prof)
                    tapes = [facts.Tape.from_day(RecordedDay.read(m), f"{prof}-{seed or 1_000_000}")]
            elif kind == "synthetic":  # synthetic:SEED[:PRICE]
                seed, _, price = rest.partition(":")
                sim = SymbolSim(SymbolSpec("SYN", price=float(price or 100.0)), int(seed or 1_000_000))
                tapes = [facts.Tape.from_ticks(f"synthetic-{seed}-{price or 100}", list(sim))]
            else:
                path = Path(spec)
                files = find_days(path) if path.is_dir() else [path]
                tapes = [facts.Tape.from_day(RecordedDay.read(p)) for p in files]
            for tp in tapes:
                print(f"measuring {tp.name} ...", file=sys.stderr)
                days[tp.name] = facts.facts(tp)
    except (RecordedDataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    md = facts.table(days)
    (out / "facts.json").write_text(json.dumps(days, indent=1, default=float))
    (out / "facts.md").write_text(md + "\n")
    facts.plot(days, out / "facts.png")
    print(md)
    print(f"written: {out / 'facts.md'}, {out / 'facts.json'}, {out / 'facts.png'}")
    return 0


def _cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    from worker import policy_files

    reg = policy_files.PolicyRegistry(Path(args.dir) if args.dir else settings.policy_dir)
    if args.action == "list":
        from worker.backtest import BASELINES, RULES

        print("baselines (TargetStrategy 847, or a backtest's --policies):")
        for name, (strategy, text) in BASELINES.items():
            print(f"  {name:18s} {strategy.value:6s} {text}")
        print("research rules (a backtest's --policies only):")
        for name, (_, text) in RULES.items():
            print(f"  {name:18s} {'':6s} {text}")
        print(f"policy files in {reg.folder} (TargetStrategy 1003 with PolicyName 20001, or name@version):")
        for row in reg.describe():
            status = "valid" if row["valid"] else f"INVALID: {row['reason']}"
            label = f"{row['name']}@{row['version']}"
            print(f"  {label:18s} {status}{_figures(row.get('evaluation', {}))}")
        return 0
    if args.action == "validate":
        target = Path(args.target) if args.target and Path(args.target).is_dir() else None
        try:
            if target is not None:
                manifest, _ = policy_files.validate(target)
            else:
                manifest = reg.load(args.target or DEFAULT_RL_POLICY).manifest
        except policy_files.PolicyError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 1
        print(
            f"valid: {manifest.name} v{manifest.version} (observation schema v{manifest.obs_schema_version})"
        )
        return 0
    from worker import evaluate
    from worker.env import EnvConfig

    policies = evaluate.baselines()
    for name in args.target.split(",") if args.target else reg.names():
        base, _, version = name.partition("@")  # "rl-exec@2" pins a version; "rl-exec" is the newest
        try:
            policies[name] = reg.load(base, int(version) if version else None)
        except policy_files.PolicyError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    results = evaluate.run(policies, args.episodes, EnvConfig(), progress=True)
    md, png = evaluate.report(results, Path(args.out))
    print(md)
    print(f"plot: {png}")
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    import torch

    from runtime import metrics
    from runtime.bus import Bus
    from worker.policy_files import PolicyRegistry
    from worker.service import WorkerService

    torch.set_num_threads(1)  # inference at batch sizes this small is fastest on one thread
    metrics.serve(settings.metrics_port, settings.metrics_addr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Bus(settings.pulsar_url) as bus:
        svc = WorkerService(bus, args.id, PolicyRegistry(settings.policy_dir), capacity=args.capacity,
                            decision_s=args.decision)  # fmt: skip
        svc.start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        svc.stop()
    return 0


def _serve_until_signalled(start: Callable[[], None], stop_svc: Callable[[], None]) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start()
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    stop_svc()


def _cmd_health_checker(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_secret(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_endpoint(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_tca(args: argparse.Namespace, settings: Settings) -> int:
    from paceline import tca_report
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


def _cmd_receiver(args: argparse.Namespace, settings: Settings) -> int:
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
        rx = Receiver(bus, name=args.name, speed=speed, batching=args.batching)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paceline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    cl = sub.add_parser("cluster", help="a local Apache Pulsar cluster: ZooKeeper, 3 bookies, 2 brokers")
    cl.add_argument("action", choices=["start", "stop", "status"])
    cl.add_argument("--run-dir", help="its folder (default ~/.paceline/cluster)")
    cl.add_argument(
        "--auth",
        action="store_true",
        help="token authentication and authorisation (first start)",
    )
    cl.set_defaults(func=_cmd_cluster)

    b = sub.add_parser("broker", help="provision, start, stop and inspect a local Apache Pulsar standalone")
    b.add_argument("action", choices=["provision", "start", "stop", "status", "wait", "setup", "tokens"])
    b.add_argument(
        "--admin-url", help="setup: the admin API of any broker (default: PACELINE_PULSAR_ADMIN_URL)"
    )
    b.add_argument("--run-dir", help="broker run folder (default: $PACELINE_HOME/broker)")
    b.add_argument("--port", type=int, default=6650)
    b.add_argument("--web-port", type=int, default=8080)
    b.add_argument("--bookie-port", type=int, default=3181)
    b.add_argument("--low-latency", action="store_true", help="journal off: NOT durable (benchmarks only)")
    b.add_argument(
        "--auth",
        action="store_true",
        help="start: token authentication and per-role authorisation (tokens in <run-dir>/auth); setup: "
        "grant every role its permissions (run as the superuser)",
    )
    b.add_argument("--cluster", default="standalone", help="setup: the Pulsar cluster the tenant may use")
    b.add_argument("--no-wait", action="store_true", help="start: return before the broker is ready")
    b.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(func=_cmd_broker)

    d = sub.add_parser("demo", help="bring up Pulsar and every service, and work parent orders over FIX")
    d.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    d.add_argument("--minutes", type=float, default=390.0, help="minutes of the session to publish (min 3)")
    d.add_argument("--speed", type=float, default=100.0, help="clock acceleration (event time / wall time)")
    d.add_argument("--keep-broker", action="store_true", help="leave the broker running afterwards")
    d.add_argument(
        "--cluster",
        action="store_true",
        help="on the Pulsar cluster of `paceline cluster` (started when none runs)",
    )
    d.add_argument(
        "--out", type=Path, default=None, help="where the TCA report goes (default: the run's folder)"
    )
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser("receiver", help="publish ticks from a source to one Pulsar topic per equity")
    r.add_argument("--source", choices=["synthetic", "lobster", "file"], default="synthetic")
    r.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="synthetic: the equities")
    r.add_argument("--seed", type=int, default=1, help="synthetic: the market's seed")
    r.add_argument("--symbol", default="AAPL", help="lobster: the equity the files are of")
    r.add_argument("--messages", help="lobster: the message file")
    r.add_argument("--orderbook", help="lobster: the orderbook file (the rebuilt book is checked against it)")
    r.add_argument(
        "files", nargs="*", help="file: JSON-lines tick files; two or more are merged as redundant feeds"
    )
    r.add_argument("--depth", type=int, default=5, help="book levels per tick")
    r.add_argument("--speed", default="1", help="replay speed: a factor of event time, or 'max'")
    r.add_argument("--batching", action="store_true", help="batch sends (throughput over latency)")
    r.add_argument("--name", default="main", help="producer names derive from it (de-duplication on restart)")
    r.set_defaults(func=_cmd_receiver)

    w = sub.add_parser("worker", help="run an execution worker: assignments in, child-order actions out")
    w.add_argument("--id", default="worker-1", help="worker id (assignments name it)")
    w.add_argument("--capacity", type=int, default=1_000, help="most jobs at once")
    w.add_argument("--decision", type=int, default=30, help="seconds of event time between decisions")
    w.set_defaults(func=_cmd_worker)

    hc = sub.add_parser(
        "health-checker", help="register jobs, track workers, assign with epochs, drive the parent-order saga"
    )
    hc.add_argument("--name", default="hc-1", help="this instance's name (run two for failover)")
    hc.add_argument("--heartbeat-timeout", type=float, default=3.0, help="seconds of worker silence = lost")
    hc.add_argument("--assign-wait", type=float, default=30.0, help="seconds a job may wait for a worker")
    hc.add_argument("--symbols", default="", help="comma-separated tradable universe (empty: any)")
    hc.add_argument("--snapshot-every", type=int, default=5_000,
                    help="saga log events between state snapshots (the most a takeover replays)")  # fmt: skip
    hc.set_defaults(func=_cmd_health_checker)

    ep = sub.add_parser(
        "endpoint",
        help="the client edge: FIX 4.4 acceptor, pre-trade risk, TCA, venue routing (simulated exchange)",
    )
    ep.add_argument("--config", type=Path, default=None, help="TOML (default deploy/endpoint/endpoint.toml)")
    ep.add_argument("--name", default="", help="overrides the config's name (subscriptions derive from it)")
    ep.add_argument("--host", default="", help="the native protocol's listen address (0.0.0.0 in containers)")
    ep.add_argument("--fix-allow", default="", help="remote addresses a FIX logon may come from, comma-"
                    "separated, or 'any' (default: the config's, loopback)")  # fmt: skip
    ep.set_defaults(func=_cmd_endpoint)

    sc = sub.add_parser("secret", help="credentials: hash a FIX password, or make a native token and hash")
    sc.add_argument("action", choices=["hash", "token"])
    sc.set_defaults(func=_cmd_secret)

    rk = sub.add_parser("risk", help="the kill switch: show it, or set it globally or for one client")
    rk.add_argument("action", choices=["show", "set"])
    rk.add_argument("--state", choices=["active", "reducing", "halted"], default="active")
    rk.add_argument("--client", default=None, help="a client id (default: every client)")
    rk.set_defaults(func=_cmd_risk)

    tc = sub.add_parser("tca", help="a parent's transaction-cost report (HTML) from the recorded topics")
    tc.add_argument("cl_ord_id", nargs="+", help="the client's ClOrdID (the first, or one it was amended to)")
    tc.add_argument("--client", default=None, help="the client id, where two clients used the ClOrdID")
    tc.add_argument("--out", type=Path, default=None,
                    help="a folder (default ~/.paceline/tca) or, for one order, an .html path")  # fmt: skip
    tc.set_defaults(func=_cmd_tca)

    t = sub.add_parser("train", help="train an execution policy and write a policy file")
    t.add_argument("--method", choices=["placement", "ppo"], default="placement",
                   help="placement: counterfactual rollouts of the passive rule on generated order-level "
                   "days and fitted action values (worker.placement); ppo: PPO on Execution-v0")  # fmt: skip
    t.add_argument("--name", default=DEFAULT_RL_POLICY)
    t.add_argument("--days", type=int, default=8, help="placement: generated training days per profile")
    t.add_argument("--profiles", default="mid,high", help="placement: market profiles of those days")
    t.add_argument(
        "--horizon",
        type=int,
        default=10,
        help="placement: decisions each fork runs on (30-minute parents' forks run to the end)",
    )
    t.add_argument("--jobs", type=int, default=2, help="placement: processes (days are shared out)")
    t.add_argument("--samples", help="placement: the forks' file: loaded when it exists, else written")
    t.add_argument("--steps", type=int, default=120_000, help="ppo: environment steps (decisions)")
    t.add_argument("--seed", type=int, default=None,
                   help="market seed of the first training day (placement, default 200000) or PPO's seed "
                   "(default 7)")  # fmt: skip
    t.add_argument("--envs", type=int, default=4, help="environments stepped together")
    t.add_argument("--window", type=int, default=1800, help="seconds of market per episode")
    t.add_argument("--decision", type=int, default=30, help="seconds between decisions")
    t.add_argument(
        "--reward",
        choices=["arrival", "mid", "twap"],
        default="arrival",
        help="training reward: shortfall vs the arrival mid, vs the mid at each fill (less noise), or "
        "the shortfall less TWAP's over the same ticks (the paired difference)",
    )
    t.add_argument("--actions", choices=["slice", "schedule"], default="slice",
                   help="action set: TWAP slices, or anchored on the TWAP schedule")  # fmt: skip
    t.add_argument("--band", type=float, default=None, help="most a policy may fall behind the schedule")
    t.add_argument("--windows", help="seconds per episode drawn from this list (0 = the full day)")
    t.add_argument("--sizes", help="lo,hi: order size as a share of the day's volume (log-uniform)")
    t.add_argument("--vols", help="lo,hi: the synthetic day's volatility")
    t.add_argument("--lobster", help="a folder of generated LOBSTER-format days to train on too")
    t.add_argument("--lobster-share", type=float, default=0.0, help="share of episodes on those days")
    t.add_argument("--processes", action="store_true", help="one process per environment")
    t.add_argument("--verbose", type=int, default=0, help="PPO's own progress lines (1)")
    t.add_argument("--init", help="go on training from this checkpoint (a --checkpoints zip)")
    t.add_argument("--prefer", type=int, help="start the actor preferring this action index")
    t.add_argument("--prefer-logit", type=float, default=2.0, help="how much (added to its score)")
    t.add_argument("--learning-rate", type=float, default=3e-4)
    t.add_argument("--ent-coef", type=float, default=0.01, help="PPO's entropy bonus (0: keep the prior)")
    t.add_argument("--out", help="policy folder (default: PACELINE_POLICY_DIR, the repo's policies/)")
    t.add_argument("--checkpoints", help="save training checkpoints here")
    t.add_argument("--eval-episodes", type=int, default=40)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)

    bt = sub.add_parser(
        "backtest", help="policies over an episode grid on recorded (LOBSTER) or synthetic days"
    )
    bt.add_argument("--policies", help="comma-separated: twap,vwap,pov,ac, the rule passive and policy files "
                    "(name, name@v); default: every baseline and every policy file")  # fmt: skip
    bt.add_argument("--lobster", help="a folder of LOBSTER message/orderbook pairs (several symbols, days)")
    bt.add_argument("--days", type=int, default=3, help="generated: days per profile")
    bt.add_argument(
        "--profiles",
        default="mid,high",
        help="generated: market profiles (mid $200, high $600: the wide-spread books the real days are; "
        "large-tick $30: see docs/MARKET.md on its impact overlay)",
    )
    bt.add_argument("--seed", type=int, default=1_000_000, help="generated: first day's seed (held out)")
    bt.add_argument("--horizons", default="30m,2h,day", help="comma-separated: 30m, 2h, day")
    bt.add_argument("--sizes", default="0.005,0.02,0.05", help="order sizes as shares of the day's volume")
    bt.add_argument("--decision", type=int, default=30, help="seconds of market time between decisions")
    bt.add_argument(
        "--latency-ms",
        type=float,
        default=5.0,
        help="a child order's trip from decision to venue, in market time (0: at once)",
    )
    bt.add_argument("--dir", help="policy folder (default: PACELINE_POLICY_DIR)")
    bt.add_argument("--out", default="reports/backtest", help="report.md, report.json, episodes, plots")
    bt.add_argument("--jobs", type=int, default=1, help="processes (days are shared out)")
    bt.add_argument("--record", action="store_true",
                    help="write each policy file's paired figures per horizon into its manifest")  # fmt: skip
    bt.add_argument("--no-progress", action="store_true")
    bt.set_defaults(func=_cmd_backtest)

    lb = sub.add_parser(
        "lobster-days", help="generate LOBSTER-format days (order-level, with orderbook files)"
    )
    lb.add_argument("--out", required=True, help="folder for the message/orderbook pairs")
    lb.add_argument("--symbols", default="LTK,MID,HIG")
    lb.add_argument(
        "--profiles",
        default="large-tick,mid,high",
        help="market profile per symbol, or one for all: large-tick ($30), mid ($200), high ($600)",
    )
    lb.add_argument("--days", type=int, default=2)
    lb.add_argument("--start-date", default="2026-01-05")
    lb.add_argument("--seed", type=int, default=1_000_000, help="first seed (>= 1,000,000: held-out days)")
    lb.add_argument("--levels", type=int, default=10)
    lb.add_argument("--rate", type=float, default=0.0, help="mean messages per second (0: the profile's)")
    lb.set_defaults(func=_cmd_lobster_days)

    mf = sub.add_parser("market-facts", help="the facts of real books measured on days, side by side")
    mf.add_argument("days", nargs="+",
                    help="LOBSTER message files or folders of them, gen:PROFILE[:SEED] (a generated day), "
                         "synthetic:SEED[:PRICE] (the tick-level synthetic market)")  # fmt: skip
    mf.add_argument("--out", default="reports/market-facts", help="facts.md, facts.json, facts.png")
    mf.set_defaults(func=_cmd_market_facts)

    pol = sub.add_parser("policy", help="list, validate and evaluate policy files")
    pol.add_argument("action", choices=["list", "validate", "evaluate"])
    pol.add_argument(
        "target",
        nargs="?",
        help="validate: a version folder or a name; evaluate: names, comma-separated, name@version to pin",
    )
    pol.add_argument("--dir", help="policy folder (default: PACELINE_POLICY_DIR)")
    pol.add_argument("--episodes", type=int, default=200, help="evaluate: held-out episodes")
    pol.add_argument("--out", default="reports/evaluation", help="evaluate: where the report and plot go")
    pol.set_defaults(func=_cmd_policy)

    be = sub.add_parser("bench", help="benchmarks that print their figures")
    be.add_argument("what", choices=["codec", "receiver", "market", "worker", "fix", "latency", "takeover"])
    be.add_argument("--events", default="10000,100000,1000000",
                    help="takeover: saga log lengths, comma-separated")  # fmt: skip
    be.add_argument("--fills", type=int, default=20, help="takeover: fills per parent in the history")
    be.add_argument("--orders", type=int, default=200, help="fix: orders timed (after 10 warm-up ones)")
    be.add_argument("--no-worker", action="store_true", help="fix: no worker, so the orders are not worked")
    be.add_argument("--browser", action="store_true",
                    help="latency: the live page in headless Chromium with a chart open (its own update "
                    "rate, render times, main-thread stalls)")  # fmt: skip
    be.add_argument("--iterations", type=int, default=50_000, help="codec: timing loop length")
    be.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="receiver, market: equities")
    be.add_argument("--ticks", type=int, default=10_000, help="receiver: ticks per symbol")
    be.add_argument("--rate", type=float, default=300.0, help="latency: ticks/s over all symbols")
    be.add_argument("--jobs", type=int, default=20, help="latency: live jobs")
    be.add_argument("--seconds", type=float, default=30.0, help="latency: seconds measured per mode")
    be.add_argument(
        "--decision", type=int, default=10, help="latency: market seconds between a job's decisions"
    )
    be.add_argument("--mode", choices=["both", "durable", "low-latency"], default="both",
                    help="latency: broker mode(s), each on a fresh standalone")  # fmt: skip
    be.set_defaults(func=_cmd_bench)

    da = sub.add_parser("dashboard", help="the live web page: parents, fills, workers, risk, broker")
    da.add_argument("--host", default="127.0.0.1")
    da.add_argument("--port", type=int, default=8765)
    da.add_argument("--rate", type=float, default=4.0, help="most pushes per second to each browser")
    da.set_defaults(func=_cmd_dashboard)

    so = sub.add_parser(
        "soak", help="a desk's day at an accelerated clock: many parents, every service, all checks"
    )
    so.add_argument("--parents", type=int, default=1_000)
    so.add_argument("--fix-clients", type=int, default=5)
    so.add_argument("--native-clients", type=int, default=5)
    so.add_argument("--symbols", type=int, default=8, help="how many equities (up to 8)")
    so.add_argument("--speed", type=float, default=20.0, help="market clock against the wall clock")
    so.add_argument("--seed", type=int, default=11)
    so.add_argument("--kill-leader-at", metavar="HH:MM", help="SIGKILL the leading health-checker then")
    so.add_argument("--start", metavar="HH:MM", help="the session's start (default 09:30)")
    so.add_argument("--end", metavar="HH:MM", help="the session's end (default 16:00)")
    so.add_argument("--out", help="the run's folder (default ~/.paceline/soak/<run>)")
    so.set_defaults(func=_cmd_soak)

    dr = sub.add_parser("drill", help="inject a fault mid-execution and check every promise")
    from paceline.faults import CLUSTER_FAULTS, FAULTS

    dr.add_argument("fault", choices=[*FAULTS, "all", *CLUSTER_FAULTS, "all-cluster"])
    dr.add_argument("--speed", type=float, default=10.0, help="market clock against the wall clock")
    dr.add_argument("--window", type=int, default=480, help="the parents' window in market seconds")
    dr.add_argument("--seed", type=int, default=3, help="synthetic market seed")
    dr.set_defaults(func=_cmd_drill)
    return p


# Commands that talk to a broker someone else started (the demo, drills and `bench latency` start their own).
NEEDS_BROKER = {"receiver", "worker", "health-checker", "endpoint", "risk", "dashboard", "tca"}
NEEDS_BROKER_BENCH = {"receiver"}


def broker_answers(url: str, timeout_s: float = 5.0) -> bool:
    """Whether anything accepts a connection at one of the Pulsar service URL's hosts (a cluster's URL names
    several: ``pulsar://h1:p1,h2:p2``) within ``timeout_s`` (retried: a broker that is starting gets those
    seconds)."""
    import socket
    import time

    scheme, _, hosts = url.partition("://")
    default = 6651 if scheme == "pulsar+ssl" else 6650
    addrs = []
    for h in hosts.split("/", 1)[0].split(","):
        host, _, port = h.rpartition(":") if ":" in h else (h, "", "")
        addrs.append((host or "localhost", int(port) if port.isdigit() else default))
    deadline = time.monotonic() + timeout_s
    while True:
        for addr in addrs:
            try:
                with socket.create_connection(addr, timeout=1.0):
                    return True
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def main(argv: Sequence[str] | None = None) -> int:
    from runtime import logs

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `paceline ... | head` ends quietly
    args = build_parser().parse_args(argv)
    settings = Settings()
    needs = args.command in NEEDS_BROKER or (args.command == "bench" and args.what in NEEDS_BROKER_BENCH)
    if needs and not broker_answers(settings.pulsar_url):
        print(f"paceline {args.command}: no Pulsar broker answers at {settings.pulsar_url} "
              "(PACELINE_PULSAR_URL). Start one with `paceline broker start` (after `paceline broker "
              "provision` on a fresh machine), or point PACELINE_PULSAR_URL at a running one.",
              file=sys.stderr)  # fmt: skip
        return 2
    sys.setswitchinterval(settings.switch_interval_us / 1e6)
    logs.configure(f"paceline-{args.command}", fmt=settings.log_format, level=settings.log_level)
    result: int = args.func(args, settings)
    return result
