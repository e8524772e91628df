"""``paceline backtest``: policies over an episode grid on recorded LOBSTER days or synthetic days, through
the live decision path (``worker.sim``: the worker's engine against the shared venue), every policy on the
same episodes.

Grid per day: horizons (30 minutes, 2 hours, the full day) at start times spread across the session, both
sides, sizes as a share of the day's traded volume. Costs (``market.costs``): implementation shortfall
against the arrival mid with the unfilled remainder costed at the end (so leaving quantity behind cannot
look cheap), and slippage against the interval VWAP. The report gives, per horizon and per size bucket,
paired differences against TWAP and against Almgren-Chriss with 95 % bootstrap confidence intervals over
episodes, completion and participation.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from market.recorded import QueueFillModel, RecordedDay, find_days, generate_day
from market.session import SESSION_CLOSE_S, SESSION_OPEN_S
from market.venue import Venue
from models import Strategy, Tick
from worker.baselines import PassiveSchedule
from worker.engine import Job
from worker.env import HELD_OUT_SEED
from worker.nets import one_thread
from worker.policy import Action, Observation, Policy
from worker.policy_files import LoadedPolicy, PolicyRegistry
from worker.sim import ORDER_LATENCY_NS, Simulation, assignment, parent_order

S = 1_000_000_000
HORIZONS: dict[str, int | None] = {"30m": 1800, "2h": 7200, "day": None}
# Start times (seconds after midnight) per horizon; the full day runs from 09:35 to 15:58, so the features
# have five minutes of market and the end-of-window sweep still meets a book.
STARTS: dict[str, tuple[int, ...]] = {
    "30m": (36_000, 41_400, 46_800, 52_200),  # 10:00, 11:30, 13:00, 14:30
    "2h": (36_000, 48_600),  # 10:00, 13:30
    "day": (SESSION_OPEN_S + 300,),
}
DAY_END_S = SESSION_CLOSE_S - 120
SIZES = (0.005, 0.02, 0.05)  # share of the day's volume
WARMUP_S = 300
TAIL_S = 120  # market after the window: the sweep and its fills
BASELINES: dict[str, tuple[Strategy, str]] = {
    "twap": (Strategy.TWAP, "TWAP: linear in time, marketable slices"),
    "vwap": (Strategy.VWAP, "VWAP: the U-shaped intraday volume curve"),
    "pov": (Strategy.POV, "POV: 10 % of the market's volume (ParticipationRate 849 sets it)"),
    "ac": (Strategy.IS, "Almgren-Chriss: kappa*T = 2, front-loaded"),
}
# Fixed rules that are no live strategy, for research comparisons (run inside the engine like any policy).
RULES: dict[str, tuple[Callable[[], Policy], str]] = {
    "passive": (PassiveSchedule, "TWAP schedule with resting orders one tick inside, market when 5 % behind"),
}
ALIASES = {"almgren-chriss": "ac", "is": "ac"}


# --- days -------------------------------------------------------------------------------------------------
class Day(Protocol):
    name: str
    symbol: str
    day_ns: int
    volume: int

    def covers(self, start_ns: int, end_ns: int) -> bool: ...

    def market(self, start_ns: int, end_ns: int) -> tuple[Iterator[Tick], Venue]: ...


@dataclass
class LobsterDay:
    """A recorded day: the queue-aware fill model follows the file's orders."""

    day: RecordedDay

    def __post_init__(self) -> None:
        self.name = f"{self.day.symbol}_{self.day.date}"
        self.symbol = self.day.symbol
        self.day_ns = self.day.day_ns
        self.volume = self.day.day_volume

    def covers(self, start_ns: int, end_ns: int) -> bool:
        return self.day.first_ns <= start_ns and end_ns <= self.day.last_ns

    def market(self, start_ns: int, end_ns: int) -> tuple[Iterator[Tick], Venue]:
        fm = QueueFillModel()
        return self.day.ticks(fm, start_ns, end_ns), Venue(books={self.symbol: fm})


DayMaker = Callable[[], Day]  # builds a day where it runs (a worker process), so only recipes travel


PROFILE_SYMBOLS = {"large-tick": "LTK", "mid": "MID", "high": "HIG"}


def _generated_day(seed: int, profile: str, date: str) -> LobsterDay:
    sym = PROFILE_SYMBOLS.get(profile, profile.upper()[:3])
    msgs = generate_day(seed, sym, profile=profile)
    return LobsterDay(RecordedDay.from_messages(sym, date, msgs, levels=5))


def synthetic_days(n: int, profiles: Sequence[str], seed: int = HELD_OUT_SEED) -> list[DayMaker]:
    """``n`` generated order-level days per market profile (``market.orderflow``), replayed with the same
    queue-aware fills as recorded days; seeds from ``seed`` (held out: >= 1,000,000)."""
    first = dt.date(2026, 1, 5)
    return [
        partial(_generated_day, seed + 1000 * i + k, p, (first + dt.timedelta(days=i)).isoformat())
        for i in range(n)
        for k, p in enumerate(profiles)
    ]


def _lobster_day(path: Path) -> LobsterDay:
    return LobsterDay(RecordedDay.read(path))


def lobster_days(folder: Path) -> list[DayMaker]:
    return [partial(_lobster_day, path) for path in find_days(folder)]


# --- episodes ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    day: str
    symbol: str
    side: str
    horizon: str
    size: float  # share of the day's volume
    quantity: int
    start_ns: int
    end_ns: int

    @property
    def key(self) -> str:
        return f"{self.day}/{self.horizon}/{self.start_ns}/{self.side}/{self.size}"


def episodes(day: Day, horizons: Sequence[str], sizes: Sequence[float]) -> list[Episode]:
    out = []
    for h in horizons:
        length = HORIZONS[h]
        for k, start_s in enumerate(STARTS[h]):
            start = day.day_ns + start_s * S
            end = day.day_ns + (DAY_END_S if length is None else start_s + length) * S
            if not day.covers(start, end + 10 * S):  # the warm-up before the start is best effort
                continue
            for side in ("BUY", "SELL") if k % 2 == 0 else ("SELL", "BUY"):
                for size in sizes:
                    qty = max(100, round(size * day.volume / 100) * 100)
                    out.append(Episode(day.name, day.symbol, side, h, size, qty, start, end))
    return out


# --- policies ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicySpec:
    label: str
    strategy: Strategy
    policy: LoadedPolicy | Policy | None = None  # None: the engine's own for the strategy


def resolve(names: Sequence[str], registry: PolicyRegistry | None) -> list[PolicySpec]:
    """Baselines by name (twap, vwap, pov, ac), research rules (passive) and policy files (``name`` for the
    newest, ``name@v``)."""
    out = []
    for raw in names:
        name = ALIASES.get(raw.lower(), raw.lower())
        if name in BASELINES:
            out.append(PolicySpec(name, BASELINES[name][0]))
            continue
        if name in RULES:
            out.append(PolicySpec(name, Strategy.TWAP, RULES[name][0]()))
            continue
        if registry is None:
            raise ValueError(f"{raw!r} is not a baseline and no policy folder is configured")
        base, _, version = raw.partition("@")
        loaded = registry.load(base, int(version) if version else None)
        out.append(PolicySpec(loaded.name, Strategy.RL, loaded))
    return out


def run_episode(
    day: Day, ep: Episode, spec: PolicySpec, decision_s: int = 30, latency_ns: int = ORDER_LATENCY_NS
) -> dict[str, Any]:
    ticks, venue = day.market(ep.start_ns - WARMUP_S * S, ep.end_ns + TAIL_S * S)
    parent = parent_order(ep.symbol, ep.side, ep.quantity, ep.start_ns, ep.end_ns, name="bt",
                          strategy=spec.strategy)  # fmt: skip
    sim = Simulation.start(assignment(parent), ticks, spec.policy, decision_s=decision_s, venue=venue,
                           latency_ns=latency_ns)  # fmt: skip
    seen = [0, 0]  # decisions, and those where a policy file left the passive rule
    if isinstance(spec.policy, LoadedPolicy):
        rule = PassiveSchedule()

        def audit(job: Job, obs: Observation, action: Action) -> None:
            seen[0] += 1
            seen[1] += action != rule.decide(obs, job.context)

        sim.engine.audit = audit
    sim.run()
    row = {"episode": ep.key, "policy": spec.label, **asdict(ep), **sim.summary()}
    if seen[0]:
        row |= {"decisions": seen[0], "leaves_rule": seen[1] / seen[0]}
    return row


@dataclass(frozen=True)
class Grid:
    horizons: tuple[str, ...] = tuple(HORIZONS)
    sizes: tuple[float, ...] = SIZES
    decision_s: int = 30
    latency_ns: int = ORDER_LATENCY_NS


def run_day(
    day: Day, policies: Sequence[PolicySpec], grid: Grid, tick: Callable[[], object] | None = None
) -> list[dict[str, Any]]:
    """Every policy on every episode of one day (``tick`` is called after each run: progress)."""
    rows = []
    for ep in episodes(day, grid.horizons, grid.sizes):
        for spec in policies:
            rows.append(run_episode(day, ep, spec, grid.decision_s, grid.latency_ns))
            if tick is not None:
                tick()
    return rows


def _run_recipe(
    maker: DayMaker, names: Sequence[str], folder: Path | None, grid: Grid
) -> list[dict[str, Any]]:
    one_thread()  # a process of the pool: a second BLAS thread per process would only fight the others
    return run_day(maker(), resolve(names, PolicyRegistry(folder) if folder else None), grid)


def run(
    days: Sequence[DayMaker],
    names: Sequence[str],
    folder: Path | None,
    *,
    horizons: Sequence[str] = tuple(HORIZONS),
    sizes: Sequence[float] = SIZES,
    decision_s: int = 30,
    latency_ns: int = ORDER_LATENCY_NS,
    progress: bool = True,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """The grid over ``days`` for the policies ``names`` (baselines, files in ``folder``): one day in memory
    at a time per process; with ``jobs`` > 1 the days are shared out over that many processes (the rows come
    back in the days' order either way, so a report does not depend on it)."""
    from tqdm import tqdm

    grid = Grid(tuple(horizons), tuple(sizes), decision_s, latency_ns)
    if jobs <= 1:
        policies = resolve(names, PolicyRegistry(folder) if folder else None)
        bar = tqdm(desc="backtest", unit="run", disable=not progress)
        rows = []
        for maker in days:
            rows += run_day(maker(), policies, grid, tick=bar.update)
        bar.close()
        return rows
    bar = tqdm(desc="backtest", unit="day", total=len(days), disable=not progress)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_recipe, m, names, folder, grid) for m in days]
        for f in as_completed(futures):
            f.result()
            bar.update()
        bar.close()
        return [row for f in futures for row in f.result()]


# --- statistics and the report ----------------------------------------------------------------------------
MIN_BLOCKS = 8  # fewer days than this resample too few distinct sets to give an interval at all


def bootstrap_ci(
    x: np.ndarray, n: int = 2000, seed: int = 0, blocks: Sequence[str] | None = None
) -> tuple[float, float, float]:
    """Mean and 95 % percentile-bootstrap interval over the episodes; with ``blocks`` (each episode's day)
    and at least ``MIN_BLOCKS`` of them, whole days are resampled, since episodes of one day share its
    market and are not independent (with 2-4 days a day bootstrap gives falsely narrow intervals)."""
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    if blocks is None or len(set(blocks)) < MIN_BLOCKS:
        means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    else:
        names = sorted(set(blocks))
        index = {b: i for i, b in enumerate(names)}
        b = np.array([index[k] for k in blocks])
        sums, counts = np.bincount(b, x, len(names)), np.bincount(b, minlength=len(names))
        pick = rng.integers(0, len(names), size=(n, len(names)))
        means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


def _by(rows: list[dict[str, Any]], policy: str) -> dict[str, dict[str, Any]]:
    return {r["episode"]: r for r in rows if r["policy"] == policy}


REFERENCES = ("twap", "ac", "passive")


def _day(row: dict[str, Any]) -> str:
    """The block an episode is resampled in: its day (an episode alone where rows do not say)."""
    return str(row.get("day", row["episode"]))


def summarize(rows: list[dict[str, Any]], references: Sequence[str] = REFERENCES) -> dict[str, Any]:
    """Per group (all, each horizon, size and symbol): each policy's figures, and its paired difference
    from each reference run on the same episodes (``bootstrap_ci`` over days where there are enough)."""
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    groups: dict[str, Any] = {"all": lambda r: True}
    for h in HORIZONS:
        groups[f"horizon {h}"] = lambda r, h=h: r["horizon"] == h
    for s in sorted({r["size"] for r in rows}):
        groups[f"size {s:.1%}"] = lambda r, s=s: r["size"] == s
    symbols = sorted({r["symbol"] for r in rows if "symbol" in r})
    if len(symbols) > 1:  # the price levels (a generated day's symbol is its profile's)
        for sym in symbols:
            groups[f"symbol {sym}"] = lambda r, sym=sym: r.get("symbol") == sym
    out: dict[str, Any] = {"policies": policies, "episodes": len({r["episode"] for r in rows}), "groups": {}}
    for gname, pred in groups.items():
        g: dict[str, Any] = {}
        for pol in policies:
            mine = [r for r in _by(rows, pol).values() if pred(r)]
            if not mine:
                continue
            days = [_day(r) for r in mine]
            is_bps = np.array([r["is_bps"] for r in mine])
            entry: dict[str, Any] = {
                "n": len(mine),
                "days": len(set(days)),
                "is_bps": bootstrap_ci(is_bps, blocks=days),
                "vwap_slippage_bps": bootstrap_ci(
                    np.array([r["vwap_slippage_bps"] for r in mine]), blocks=days
                ),
                "completion": float(np.mean([r["completed"] for r in mine])),
                "participation": float(np.mean([r["participation"] for r in mine])),
                "passive_share": float(np.mean([r["passive_share"] for r in mine])),
            }
            if any("leaves_rule" in r for r in mine):  # decisions weighted alike
                n_dec = sum(r.get("decisions", 0) for r in mine)
                left = sum(r.get("leaves_rule", 0) * r.get("decisions", 0) for r in mine)
                entry["leaves_rule"] = left / max(1, n_dec)
            for ref in references:
                base = _by(rows, ref)
                paired = [r for r in mine if r["episode"] in base]
                if paired and ref != pol:
                    diff = np.array([r["is_bps"] - base[r["episode"]]["is_bps"] for r in paired])
                    entry[f"minus_{ref}_bps"] = bootstrap_ci(diff, blocks=[_day(r) for r in paired])
            g[pol] = entry
        if g:
            out["groups"][gname] = g
    return out


def _ci(t: Sequence[float]) -> str:
    m, lo, hi = t
    return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Backtest",
        "",
        f"Data: {meta['data']}. Episodes: {summary['episodes']} (every policy on the same ones), "
        f"decisions every {meta['decision_s']} s of market time, child orders reaching the venue "
        f"{meta.get('latency_ms', 0)} ms after the decision, through the live engine and venue. "
        "Figures in basis points, mean [95 % CI, bootstrap over whole days where a group has at least "
        f"{MIN_BLOCKS} (a day's episodes share its market), else over episodes]; lower is better. "
        "IS = implementation shortfall against the arrival mid, the unfilled rest costed at the end mid; "
        "paired = the policy minus the reference on the same "
        "episode. A paired CI entirely below zero means the policy is cheaper.",
        "",
        f"Command: `{meta['command']}`",
        "",
    ]
    for gname, g in summary["groups"].items():
        lines += [f"## {gname}", "", "| policy | n | IS | vs interval VWAP | minus TWAP (paired) | "
                  "minus Almgren-Chriss (paired) | minus passive (paired) | completed | participation | "
                  "passive fills | leaves the rule |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for pol, e in g.items():
            vs = [_ci(e[f"minus_{r}_bps"]) if f"minus_{r}_bps" in e else "—" for r in REFERENCES]
            leaves = f"{e['leaves_rule']:.1%}" if "leaves_rule" in e else "—"
            lines.append(
                f"| {pol} | {e['n']} | {_ci(e['is_bps'])} | {_ci(e['vwap_slippage_bps'])} | "
                f"{' | '.join(vs)} | {e['completion']:.0%} | {e['participation']:.1%} | "
                f"{e['passive_share']:.0%} | {leaves} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], summary: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    policies = summary["policies"]
    horizons = [h for h in HORIZONS if f"horizon {h}" in summary["groups"]]
    fig, axes = plt.subplots(
        1, max(1, len(horizons)), figsize=(5 * max(1, len(horizons)), 4.5), squeeze=False
    )
    twap = _by(rows, "twap")
    for ax, h in zip(axes[0], horizons, strict=False):
        data, labels = [], []
        for pol in policies:
            if pol == "twap":
                continue
            mine = [r for r in _by(rows, pol).values() if r["horizon"] == h and r["episode"] in twap]
            data.append([r["is_bps"] - twap[r["episode"]]["is_bps"] for r in mine])
            labels.append(pol)
        if data:
            ax.boxplot(data, tick_labels=labels, showfliers=False)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{h}: IS minus TWAP, same episode (bps)")
        ax.tick_params(axis="x", rotation=25)
    fig.tight_layout()
    p = out / "paired_vs_twap.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    sizes = sorted({r["size"] for r in rows})
    width = 0.8 / max(1, len(policies))
    for k, pol in enumerate(policies):
        means = [summary["groups"][f"size {s:.1%}"].get(pol, {}).get("is_bps", (np.nan,))[0] for s in sizes]
        ax.bar(np.arange(len(sizes)) + k * width, means, width, label=pol)
    ax.set_xticks(np.arange(len(sizes)) + width * (len(policies) - 1) / 2, [f"{s:.1%} of day" for s in sizes])
    ax.set_ylabel("implementation shortfall (bps)")
    ax.set_title("Mean IS by size")
    ax.legend()
    fig.tight_layout()
    p = out / "is_by_size.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def record(
    rows: list[dict[str, Any]], meta: dict[str, Any], registry: PolicyRegistry, kind: str
) -> list[str]:
    """Write each policy file's figures per horizon (IS, paired against TWAP and Almgren-Chriss, completion)
    into its manifest's ``evaluation.backtest[kind]``; returns the files written. The artefact, and so its
    hash, is untouched."""
    summary = summarize(rows)
    written = []
    for label in summary["policies"]:
        name, _, version = label.partition("@")
        if not version:
            continue
        horizons = {
            g.removeprefix("horizon "): {
                k: e[k]
                for k in (
                    "n",
                    "days",
                    "is_bps",
                    "minus_twap_bps",
                    "minus_ac_bps",
                    "minus_passive_bps",
                    "completion",
                    "leaves_rule",
                )
                if k in e
            }
            for g, group in summary["groups"].items()
            if g.startswith("horizon ") and (e := group.get(label))
        }
        figures = {"data": meta["data"], "command": meta["command"], "episodes": summary["episodes"],
                   "horizons": horizons}  # fmt: skip
        registry.record_evaluation(name, int(version), "backtest", kind, figures)
        written.append(label)
    return written


def report(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> tuple[str, list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    md = markdown(summary, meta)
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1) + "\n")
    (out / "episodes.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    return md, plot(rows, summary, out)
