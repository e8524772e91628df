"""Training end to end on a small budget, and the policy commands on its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker import policy_files
from worker.env import EnvConfig
from worker.evaluate import Stats, baselines, report, run
from worker.train import train

pytestmark = pytest.mark.slow
TINY = EnvConfig(window_s=300, decision_s=30, depth=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("policies")
    train(out, "rl-tiny", steps=512, seed=3, n_envs=2, config=TINY, progress=False, eval_episodes=2)
    return out


def test_training_writes_a_valid_policy_file(trained: Path) -> None:
    manifest, _ = policy_files.validate(trained / "rl-tiny" / "1")
    assert manifest.training["timesteps"] == 512 and manifest.training["seed"] == 3
    assert manifest.evaluation["episodes"] == 2 and "minus_twap_bps" in manifest.evaluation


def _cli(*args: str, policy_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PACELINE_POLICY_DIR": str(policy_dir)}
    return subprocess.run([sys.executable, "-m", "paceline", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def test_policy_list_and_validate_commands(trained: Path) -> None:
    res = _cli("policy", "list", policy_dir=trained)
    assert res.returncode == 0 and "rl-tiny@1" in res.stdout and "valid" in res.stdout
    for baseline in ("twap", "vwap", "pov", "ac"):  # every policy a job can run, baselines too
        assert f"  {baseline} " in res.stdout
    assert _cli("policy", "validate", "rl-tiny", policy_dir=trained).returncode == 0
    bad = trained / "broken" / "1"
    bad.mkdir(parents=True)
    (bad / "manifest.json").write_text("{}")
    res = _cli("policy", "validate", str(bad), policy_dir=trained)
    assert res.returncode == 1 and "bad manifest" in res.stderr
    assert "INVALID" in _cli("policy", "list", policy_dir=trained).stdout


def test_evaluation_report_compares_every_policy_on_the_same_episodes(trained: Path, tmp_path: Path) -> None:
    reg = policy_files.PolicyRegistry(trained)
    policies = baselines() | {"rl-tiny": reg.load("rl-tiny").module}
    results = run(policies, 4, TINY)
    md, png = report(results, tmp_path)
    assert png.stat().st_size > 10_000
    for name in ("TWAP", "VWAP", "POV 10%", "Almgren-Chriss", "rl-tiny"):
        assert f"| {name} |" in md
    # Paired against itself, TWAP's difference is exactly zero.
    twap_row = next(line for line in md.splitlines() if line.startswith("| TWAP |"))
    assert "0.00 ±  0.00" in twap_row
    assert {r["quantity"] for rs in results.values() for r in rs} <= {2_000, 5_000, 10_000, 20_000}


def test_confidence_interval() -> None:
    s = Stats.of([1.0, 2.0, 3.0, 4.0])
    assert s.mean == 2.5 and s.ci95 == pytest.approx(1.96 * s.std / 2)


def test_training_on_the_schedule_anchored_actions_records_them(tmp_path: Path) -> None:
    cfg = EnvConfig(window_s=300, depth=2, actions="schedule", band=0.05, reward="twap", windows=(300, 600),
                    sizes=(0.001, 0.004))  # fmt: skip
    vdir = train(tmp_path, "anchored", steps=256, seed=4, n_envs=2, config=cfg, progress=False,
                 eval_episodes=2, command="paceline train ...")  # fmt: skip
    manifest, _ = policy_files.validate(vdir)
    assert manifest.band == 0.05 and [a.lead for a in manifest.actions][:3] == [None, 0.0, 0.0]
    assert manifest.training["command"] == "paceline train ..."
    assert manifest.training["env_config"]["reward"] == "twap"
