"""Evaluate policies on the same held-out episodes: implementation shortfall against the arrival mid and
slippage against the interval VWAP, in basis points, with 95 % confidence intervals; and, because every
policy sees the same market (same seeds, our orders do not change the market's random numbers), paired
differences against TWAP, whose intervals are far tighter than the raw ones."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.baselines import POV, TWAP, VWAP, AlmgrenChriss
from worker.env import EnvConfig, ExecutionEnv, scale
from worker.policy import Action, JobContext, Observation, Policy
from worker.policy_files import LoadedPolicy

HELD_OUT_SEED = 1_000_000  # training never draws seeds this high: episode i uses HELD_OUT_SEED + i
T95 = 1.96


class NetPolicy:
    """A network (loaded policy file or freshly trained) as a Policy for the environment."""

    def __init__(self, net: torch.nn.Module, env: ExecutionEnv, name: str) -> None:
        self.net, self.env, self.name = net, env, name

    def decide(self, obs: Observation, job: JobContext) -> Action:
        with torch.no_grad():
            scores = self.net(torch.from_numpy(scale(obs)[None, :]))[0]
        return self.env.action_of(int(scores.argmax()))


@dataclass
class Stats:
    mean: float
    std: float
    ci95: float
    n: int

    @classmethod
    def of(cls, xs: list[float]) -> Stats:
        a = np.asarray(xs, dtype=float)
        std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        return cls(float(a.mean()), std, T95 * std / math.sqrt(len(a)), len(a))

    def text(self) -> str:
        return f"{self.mean:7.2f} ± {self.ci95:5.2f}"


def episodes(n: int, cfg: EnvConfig) -> list[dict[str, Any]]:
    """Held-out episode options: several symbols, both sides, a spread of sizes."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    sizes = [2_000, 5_000, 10_000, 20_000]
    return [
        {"symbol": cfg.symbols[i % len(cfg.symbols)], "side": "BUY" if i % 2 == 0 else "SELL",
         "quantity": sizes[(i // 2) % len(sizes)], "start_s": None, "price": float(rng.uniform(20, 400))}
        for i in range(n)
    ]  # fmt: skip


def run(
    policies: dict[str, Policy | LoadedPolicy | torch.nn.Module],
    n: int,
    cfg: EnvConfig,
    progress: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """A bare network is decided with ``cfg``'s action set; a policy file with its manifest's own.
    ``progress``: a bar over every (policy, episode) run on stderr (a long evaluation takes minutes)."""
    from tqdm import tqdm

    env = ExecutionEnv(cfg)
    results: dict[str, list[dict[str, Any]]] = {}
    bar = tqdm(total=n * len(policies), desc="evaluate", unit="episode", disable=not progress)
    for name, pol in policies.items():
        policy = NetPolicy(pol, env, name) if isinstance(pol, torch.nn.Module) else pol
        results[name] = []
        for i, opts in enumerate(episodes(n, cfg)):
            results[name].append(env.run_policy(policy, HELD_OUT_SEED + i, opts))
            bar.update()
    bar.close()
    return results


def baselines() -> dict[str, Policy | LoadedPolicy | torch.nn.Module]:
    return {
        "TWAP": TWAP(),
        "VWAP": VWAP(),
        "POV 10%": POV(rate=0.1),
        "Almgren-Chriss": AlmgrenChriss(kappa_t=2.0),
    }


def table(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    twap = [r["is_bps"] for r in results["TWAP"]]
    rows = []
    for name, rs in results.items():
        is_bps = [r["is_bps"] for r in rs]
        rows.append({
            "policy": name,
            "is_bps": Stats.of(is_bps).__dict__,
            "vwap_slippage_bps": Stats.of([r["vwap_slippage_bps"] for r in rs]).__dict__,
            "minus_twap_bps": Stats.of([a - b for a, b in zip(is_bps, twap, strict=True)]).__dict__,
            "completed": sum(r["filled"] == r["quantity"] for r in rs),
        })  # fmt: skip
    return rows


def quick_check(net: torch.nn.Module, cfg: EnvConfig, episodes: int) -> dict[str, Any]:
    res = run({"RL": net, "TWAP": TWAP()}, episodes, cfg)
    rows = {r["policy"]: r for r in table(res)}
    return {"episodes": episodes, "seed_base": HELD_OUT_SEED, "is_bps": rows["RL"]["is_bps"],
            "minus_twap_bps": rows["RL"]["minus_twap_bps"]}  # fmt: skip


def report(results: dict[str, list[dict[str, Any]]], out_dir: Path) -> tuple[str, Path]:
    """Write report.json, report.md and is_distribution.png; return the Markdown table and the plot path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table(results)
    n = len(next(iter(results.values())))
    lines = [
        f"Held-out episodes: {n} (seeds {HELD_OUT_SEED}+), mean ± 95 % CI, basis points; lower is better.",
        "",
        "| policy | implementation shortfall | vs interval VWAP | minus TWAP (paired) | completed |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        st = {k: Stats(**r[k]) for k in ("is_bps", "vwap_slippage_bps", "minus_twap_bps")}
        is_text = f"{st['is_bps'].text()} (sd {st['is_bps'].std:.1f})"
        rest = f"{st['vwap_slippage_bps'].text()} | {st['minus_twap_bps'].text()} | {r['completed']}/{n}"
        lines.append(f"| {r['policy']} | {is_text} | {rest} |")
    md = "\n".join(lines) + "\n"
    (out_dir / "report.md").write_text(md)
    (out_dir / "report.json").write_text(json.dumps({"rows": rows, "episodes": n}, indent=2))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(results)
    axes[0].boxplot([[r["is_bps"] for r in results[k]] for k in names], tick_labels=names, showfliers=False)
    axes[0].set_title("Implementation shortfall (bps, lower is better)")
    twap = np.array([r["is_bps"] for r in results["TWAP"]])
    axes[1].boxplot([np.array([r["is_bps"] for r in results[k]]) - twap for k in names], tick_labels=names,
                    showfliers=False)  # fmt: skip
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_title("Minus TWAP on the same episode (bps)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    png = out_dir / "is_distribution.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return md, png
