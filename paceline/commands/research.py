"""The researcher's commands: ``paceline train``, ``backtest``, ``lobster-days``, ``market-facts`` and
``policy``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models import DEFAULT_RL_POLICY
from runtime.settings import Settings


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_lobster_days(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_market_facts(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
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
