"""Learned placement: one step of policy iteration on the ``passive`` rule, by counterfactual replay.

Why not PPO: the gain to find is a fraction of a basis point per parent, the noise of one episode's
shortfall is tens of bps (the price's drift), and a policy-gradient learner sees one action per state. Here
every action is tried on the *same* tape instead, so the market's noise cancels out of the comparison:

1. The rule works parents on generated order-level days (``market.orderflow``, the calibrated profiles;
   market seeds below ``HELD_OUT_SEED``, so the backtest's days are never seen). At sampled decisions the
   replay is forked (the engine, the venue and its queue-aware fill model, our orders in flight: a deep
   copy; the day's messages are shared, read only), each action of ``PLACEMENT_ACTIONS`` is taken on a
   copy, and each copy goes on under the rule for ``horizon`` decisions over the same messages.
2. A copy's outcome is what it paid against the mid at the fork, plus what it still has to buy valued at
   the mid where it stopped (its own: our market orders move the replayed price) plus ``kappa``, the rule's
   mean cost of finishing (its mean shortfall on the same days). The advantage of an action is its outcome
   less the rule's own action's, in bps of one TWAP slice.
3. A ``PolicyNet`` regresses every action's advantage on the observation (Huber loss: a few forks that
   meet a price jump are large). The policy file scores an action by its predicted saving, plus a margin
   for the rule's own action (chosen by cross-validation over days): the policy leaves
   the rule only where the state says it saves more than the margin. Policy improvement (Bertsekas'
   rollout) says the greedy policy on the rule's action values is no worse than the rule where the values
   are right; the backtest on held-out days says whether they were.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from market.recorded import RecordedDay
from models import Strategy
from worker import policy_files
from worker.backtest import (
    TAIL_S,
    WARMUP_S,
    DayMaker,
    Episode,
    LobsterDay,
    S,
    bootstrap_ci,
    episodes,
    synthetic_days,
)
from worker.baselines import PassiveSchedule
from worker.env import HELD_OUT_SEED
from worker.nets import PolicyNet, one_thread
from worker.policy import (
    OBS_DIM,
    PLACEMENT_ACTIONS,
    Action,
    ActionDef,
    Agent,
    PriceKind,
    action_of,
    scale,
)
from worker.sim import ORDER_LATENCY_NS, Simulation, assignment, parent_order

TRAIN_SEED = 200_000  # generated training days: seeds from here, all below HELD_OUT_SEED
_RULE = PassiveSchedule()
RULE_ACTION = PLACEMENT_ACTIONS.index(ActionDef(PriceKind.LIMIT_INSIDE, lead=_RULE.lead))
BAND = _RULE.band
# Forks per episode, per horizon: about as many decisions sampled from a 30-minute parent as from a day's.
FORKS: dict[str, int] = {"30m": 8, "2h": 16, "day": 32}
# Parents whose forks run to the end of the tape (nothing left to value): on a short parent a fork's few
# minutes are a large share of the time left, and the rule's mean cost of finishing (``kappa``) is least
# right there. It misvalued leaving shares on 30-minute parents, where rl-place@1 lost (RESEARCH round 6).
TO_END: frozenset[str] = frozenset({"30m"})


@dataclass
class Samples:
    """Forked decisions: ``x`` the scaled observations; per action ``paid`` (bps of a slice, against the mid
    at the fork), ``left`` (shares still to buy, in slices) and ``moved`` (the copy's own mid where it
    stopped against the fork's, bps, signed so + is worse for us); which profile, day and parent horizon
    each came from; and the rule's shortfall on each episode run (for ``kappa``)."""

    x: np.ndarray
    paid: np.ndarray
    left: np.ndarray
    moved: np.ndarray
    profile: np.ndarray
    day: np.ndarray
    horizon: np.ndarray
    rule_is: dict[str, list[float]]

    @classmethod
    def concat(cls, parts: Sequence[Samples]) -> Samples:
        rule_is: dict[str, list[float]] = {}
        for p in parts:
            for k, v in p.rule_is.items():
                rule_is.setdefault(k, []).extend(v)

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(cat("x"), cat("paid"), cat("left"), cat("moved"), cat("profile"), cat("day"),
                   cat("horizon"), rule_is)  # fmt: skip

    def kappa(self) -> dict[str, float]:
        """The rule's mean shortfall per profile: the cost of finishing what a copy left (both sides run on
        every episode, so the price's drift cancels out of the mean)."""
        return {k: float(np.mean(v)) for k, v in self.rule_is.items()}

    def advantages(self, kappa: dict[str, float]) -> np.ndarray:
        """Each action's outcome less the rule's action's, bps of a slice (negative: the action saves)."""
        k = np.array([kappa[str(p)] for p in self.profile])[:, None]
        value = self.paid + self.left * (self.moved + k)
        out: np.ndarray = value - value[:, [RULE_ACTION]]
        return out

    def save(self, path: Path) -> None:
        np.savez_compressed(path, x=self.x, paid=self.paid, left=self.left, moved=self.moved,
                            profile=self.profile, day=self.day, horizon=self.horizon,
                            rule_is=np.array([json.dumps(self.rule_is)]))  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> Samples:
        z = np.load(path)
        return cls(z["x"], z["paid"], z["left"], z["moved"], z["profile"], z["day"], z["horizon"],
                   json.loads(str(z["rule_is"][0])))  # fmt: skip


def _fork(sim: Simulation, day: RecordedDay, end_ns: int) -> Simulation:
    """A copy of the replay at its latest tick that goes on over the same messages. The episode's records
    (what was sent and filled so far) stay behind: the copy's lists hold only what happens after."""
    last = sim.last
    if last is None:
        raise ValueError("cannot fork a replay before its first tick")
    kept = sim.ticks, sim.sent, sim.fills, sim.fill_mids
    sim.ticks, sim.sent, sim.fills, sim.fill_mids = iter(()), [], [], []
    try:
        c = copy.deepcopy(sim)
    finally:
        sim.ticks, sim.sent, sim.fills, sim.fill_mids = kept
    fm = c.venue.books[day.symbol]
    c.ticks = day.ticks(fm, last.ts_event, end_ns, after_seq=last.seq)  # type: ignore[arg-type]
    return c


def _outcome(
    c: Simulation, action: Action, horizon: int | None, mid0: float, slice_qty: int
) -> tuple[float, ...]:
    """``action`` on the copy, then the rule for ``horizon`` decisions (None: to the end of the tape)."""
    job = c.job
    sign = job.assignment.parent.side.sign
    c.route(c.engine.act(job.job_id, action))
    k = 0
    while horizon is None or k < horizon:
        if not c.advance():
            break
        c.route(c.engine.act(job.job_id, _RULE.decide(c.engine.observe(job.job_id), job.context)))
        k += 1
    else:
        c.advance()  # on to the next decision's tick, where every copy is compared
    paid = sign * sum(f.qty * (f.px - mid0) for f in c.fills) / (slice_qty * mid0) * 1e4
    left = (job.quantity - job.filled) / slice_qty
    end = c.last.mid if c.last is not None else mid0
    return paid, left, sign * (end - mid0) / mid0 * 1e4


def fork_episode(
    day: LobsterDay, ep: Episode, forks: int, horizon: int | None, rng: np.random.Generator, *,
    latency_ns: int = ORDER_LATENCY_NS,
) -> tuple[list[np.ndarray], list[tuple[float, ...]], float]:  # fmt: skip
    """The rule on one episode, forked at ``forks`` random decisions, each copy run on for ``horizon``
    decisions (None: to the end); returns the scaled observations, the outcomes (``paid``, ``left``,
    ``moved`` per action, flattened) and the rule's shortfall."""
    end_ns = ep.end_ns + TAIL_S * S
    ticks, venue = day.market(ep.start_ns - WARMUP_S * S, end_ns)
    parent = parent_order(ep.symbol, ep.side, ep.quantity, ep.start_ns, ep.end_ns, name="cf",
                          strategy=Strategy.TWAP)  # fmt: skip
    sim = Simulation.start(assignment(parent), ticks, Agent(), venue=venue, latency_ns=latency_ns)
    n_dec = max(1, (ep.end_ns - ep.start_ns) // sim.engine.decision_ns)
    chosen = set(rng.choice(n_dec, size=min(forks, n_dec), replace=False).tolist())
    xs: list[np.ndarray] = []
    outs: list[tuple[float, ...]] = []
    k = 0
    while sim.advance():
        job = sim.job
        obs = sim.engine.observe(job.job_id)
        if k in chosen and sim.last is not None:
            acts = [action_of(d, job.slice_qty, obs, job.context, BAND) for d in PLACEMENT_ACTIONS]
            if len(set(acts)) > 1:  # past the band every action is the same catch-up: nothing to learn
                mid0, memo = sim.last.mid, {}
                row: list[float] = []
                for a in acts:
                    if a not in memo:
                        memo[a] = _outcome(_fork(sim, day.day, end_ns), a, horizon, mid0, job.slice_qty)
                    row += memo[a]
                xs.append(scale(obs))
                outs.append(tuple(row))
        sim.route(sim.engine.act(job.job_id, _RULE.decide(obs, job.context)))
        k += 1
    return xs, outs, float(sim.summary()["is_bps"])  # type: ignore[arg-type]


def fork_day(maker: DayMaker, profile: str, index: int, horizon: int, seed: int) -> Samples:
    """Every episode of the backtest's grid on one day, each forked ``FORKS[horizon]`` times."""
    day = maker()
    assert isinstance(day, LobsterDay)
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    outs: list[tuple[float, ...]] = []
    labels: list[str] = []
    rule_is: list[float] = []
    for ep in episodes(day, ("30m", "2h", "day"), (0.005, 0.02, 0.05)):
        runs_on = None if ep.horizon in TO_END else horizon
        x, o, is_bps = fork_episode(day, ep, FORKS[ep.horizon], runs_on, rng)
        xs += x
        outs += o
        labels += [ep.horizon] * len(x)
        rule_is.append(is_bps)
    a = len(PLACEMENT_ACTIONS)
    out = np.asarray(outs, dtype=np.float64).reshape(len(outs), a, 3)
    return Samples(
        np.asarray(xs, dtype=np.float32).reshape(len(xs), OBS_DIM), out[:, :, 0], out[:, :, 1], out[:, :, 2],
        np.full(len(xs), profile), np.full(len(xs), index), np.asarray(labels, dtype=str), {profile: rule_is},
    )  # fmt: skip


def collect(
    n_days: int, profiles: Sequence[str], *, seed: int = TRAIN_SEED, horizon: int = 10, jobs: int = 2,
    progress: bool = True, first: int = 0,
) -> Samples:  # fmt: skip
    """Forked decisions on generated days ``first`` .. ``n_days - 1`` of each profile (training seeds only;
    a day's forks depend only on its index, so a collection can be made in parts)."""
    from tqdm import tqdm

    if seed + 1000 * n_days + len(profiles) > HELD_OUT_SEED:
        raise ValueError(f"training seeds must stay below {HELD_OUT_SEED:,} (the backtest's held-out days)")
    makers = synthetic_days(n_days, profiles, seed)
    plist = [p for _ in range(n_days) for p in profiles]
    pairs = list(enumerate(zip(makers, plist, strict=True)))[first * len(profiles) :]
    tasks = [partial(fork_day, m, p, i, horizon, seed + i) for i, (m, p) in pairs]
    bar = tqdm(desc="forks", unit="day", total=len(tasks), disable=not progress)
    parts = []
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for part in pool.map(_call, tasks):
            parts.append(part)
            bar.update()
    bar.close()
    return Samples.concat(parts)


def _call(task: partial[Samples]) -> Samples:
    one_thread()
    return task()


# --- the fit ----------------------------------------------------------------------------------------------
def fit_net(
    x: np.ndarray, adv: np.ndarray, *, hidden: int = 64, epochs: int = 60, seed: int = 0, delta: float = 5.0
) -> PolicyNet:
    """A ``PolicyNet`` whose scores are the predicted savings against the rule's action (-advantage)."""
    torch.manual_seed(seed)
    net = PolicyNet(hidden=hidden, actions=adv.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
    xt, yt = torch.from_numpy(x), torch.from_numpy(-adv.astype(np.float32))
    loss_fn = torch.nn.HuberLoss(delta=delta)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 256):
            idx = order[start : start + 256]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return net.eval()


def choose(scores: np.ndarray, margin: float) -> np.ndarray:
    """The action taken: the best predicted saving, the rule's own unless another beats it by ``margin``."""
    s = scores.copy()
    s[:, RULE_ACTION] += margin
    out: np.ndarray = s.argmax(axis=1)
    return out


def scores_of(net: PolicyNet, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out: np.ndarray = net(torch.from_numpy(x)).numpy()
    return out


def realised(adv: np.ndarray, chosen: np.ndarray) -> tuple[float, float, float, float]:
    """Mean saving of the chosen actions against the rule on forked decisions (bps of a slice, + saves),
    a 95 % bootstrap interval, and the share of decisions that leave the rule."""
    gain = -adv[np.arange(len(adv)), chosen]
    mean, lo, hi = bootstrap_ci(gain, n=1000)
    return mean, lo, hi, float((chosen != RULE_ACTION).mean())


MARGINS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)


FOLDS = 4


CV = dict[float, dict[str, tuple[float, float, float, float]]]


def cross_validate(data: Samples, adv: np.ndarray, *, hidden: int = 64, epochs: int = 60) -> CV:
    """Per margin, the saving of the chosen actions on days the fit did not see, over all forks (``all``)
    and per parent horizon: the days are split into ``FOLDS`` folds and each is chosen for by a fit on the
    others."""
    chosen = {m: np.zeros(len(adv), dtype=int) for m in MARGINS}
    for k in range(FOLDS):
        held = data.day % FOLDS == k
        net = fit_net(data.x[~held], adv[~held], hidden=hidden, epochs=epochs)
        scores = scores_of(net, data.x[held])
        for m in MARGINS:
            chosen[m][held] = choose(scores, m)
    groups = {"all": np.ones(len(adv), dtype=bool)} | {
        str(h): data.horizon == h for h in np.unique(data.horizon)
    }
    return {m: {g: realised(adv[w], c[w]) for g, w in groups.items()} for m, c in chosen.items()}


def pick_margin(table: CV) -> float:
    """The margin with the largest cross-validated saving among those that save on every horizon's forks
    (the policy cannot tell a 30-minute parent from a day's, so a margin that gains on days by losing on
    short parents is not taken); the largest margin, the nearest to the rule, if none does."""
    safe = [m for m in MARGINS if all(r[0] >= 0 for r in table[m].values())]
    return max(safe, key=lambda m: table[m]["all"][0]) if safe else max(MARGINS)


def train_placement(
    out_dir: Path, name: str, *, days: int, profiles: Sequence[str], seed: int = TRAIN_SEED,
    horizon: int = 10, jobs: int = 2, samples: Path | None = None, command: str = "", progress: bool = True,
) -> Path:  # fmt: skip
    """Collect forks (or load them from ``samples``), pick the margin by cross-validation over days, fit on
    every day with it, and write the policy file."""
    t0 = time.perf_counter()
    if samples is not None and samples.exists():
        data = Samples.load(samples)
    else:
        data = collect(days, profiles, seed=seed, horizon=horizon, jobs=jobs, progress=progress)
        if samples is not None:
            data.save(samples)
    collected = time.perf_counter() - t0
    kappa = data.kappa()
    adv = data.advantages(kappa)
    table = cross_validate(data, adv)
    margin = pick_margin(table)
    final = fit_net(data.x, adv)
    with torch.no_grad():
        final.head.bias[RULE_ACTION] += margin  # the margin lives in the file: argmax is the policy
    seconds = time.perf_counter() - t0
    versions = policy_files.PolicyRegistry(out_dir).versions(name)
    version = (versions[-1] + 1) if versions else 1
    training: dict[str, Any] = {
        "algorithm": "counterfactual rollouts of the passive rule + fitted action values (worker.placement)",
        "command": command, "seed": seed, "days_per_profile": days, "profiles": list(profiles),
        "horizon_decisions": horizon, "forks_to_end": sorted(TO_END), "forks_per_episode": FORKS,
        "samples": len(data.x),
        "days": len(set(data.day.tolist())), "kappa_bps": kappa, "margin": margin, "rule_action": RULE_ACTION,
        "cross_validation": {
            f"{m}": {
                g: {"saving_bps_of_slice": [round(v, 4) for v in r[:3]], "leaves_rule": round(r[3], 4)}
                for g, r in by.items()
            }
            for m, by in table.items()
        },
        "seconds": round(seconds, 1), "collect_seconds": round(collected, 1),
        "data": f"generated order-level days (market.orderflow), seeds {seed}+ (below {HELD_OUT_SEED:,})",
    }  # fmt: skip
    return policy_files.save(final, out_dir, name, version, actions=PLACEMENT_ACTIONS, band=BAND,
                             training=training)  # fmt: skip
