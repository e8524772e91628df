"""``paceline backtest`` end to end on small generated LOBSTER-format days and on a synthetic day: every
baseline and every shipped policy file on the same episodes, the report with paired differences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from market.recorded import write_day
from paceline.cli import main
from worker.backtest import bootstrap_ci, summarize

SHIPPED = sorted(p.name for p in Path("policies").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def lobster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lobster")
    # Two symbols on one day, 09:30-10:40: enough for the 30-minute episodes at 10:00.
    for seed, sym in ((1, "AAA"), (2, "BBB")):
        write_day(folder, seed, sym, "2026-01-05", levels=5, end_s=38_400, events_per_s=3.0)
    return folder


def _report(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "report.json").read_text())
    return data


def test_backtest_on_recorded_days(
    lobster_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bt"
    rc = main(["backtest", "--lobster", str(lobster_dir), "--horizons", "30m", "--sizes", "0.01,0.03",
               "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    summary = _report(out)["summary"]
    assert isinstance(summary, dict)
    policies = summary["policies"]
    assert policies[:4] == ["twap", "vwap", "pov", "ac"]
    assert {p.split("@")[0] for p in policies[4:]} == set(SHIPPED)
    # 2 symbols x 1 start x 2 sides x 2 sizes, every policy on each.
    assert summary["episodes"] == 8
    rows = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * len(policies)
    assert all(r["completed"] for r in rows)  # the modelled depth lets every sweep complete
    groups = summary["groups"]
    for g in ("all", "horizon 30m", "size 1.0%", "size 3.0%"):
        rl = groups[g][policies[-1]]
        lo, hi = rl["minus_twap_bps"][1:]
        assert lo <= rl["minus_twap_bps"][0] <= hi and "minus_ac_bps" in rl
    assert "minus_twap_bps" not in groups["all"]["twap"]
    md = (out / "report.md").read_text()
    assert "minus TWAP (paired)" in md and "minus Almgren-Chriss (paired)" in md
    assert (out / "paired_vs_twap.png").stat().st_size > 10_000
    assert (out / "is_by_size.png").stat().st_size > 10_000
    assert "written:" in capsys.readouterr().out


def test_backtest_on_a_synthetic_day_with_the_full_day_horizon(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    rc = main(["backtest", "--days", "1", "--profiles", "mid", "--horizons", "30m,day", "--sizes", "0.01",
               "--policies", "twap,ac,passive,rl-exec", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    summary = _report(out)["summary"]
    # The research rule works the schedule with resting orders, and completes like the rest.
    rule = summary["groups"]["all"]["passive"]
    assert rule["passive_share"] > 0.5 and rule["completion"] == 1.0
    assert isinstance(summary, dict)
    assert summary["episodes"] == 4 * 2 + 2
    day = summary["groups"]["horizon day"]
    assert day["twap"]["n"] == 2 and day["twap"]["completion"] == 1.0
    # TWAP over the full day participates at about the order's share of the day's volume.
    assert 0.005 < day["twap"]["participation"] < 0.02


def test_bad_inputs_get_a_clear_message(
    lobster_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--lobster", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "no such folder" in capsys.readouterr().err
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    msg = next(lobster_dir.glob("AAA_*_message_5.csv"))
    (lonely / msg.name).write_text(msg.read_text())
    assert main(["backtest", "--lobster", str(lonely), "--no-progress"]) == 2
    assert "orderbook file" in capsys.readouterr().err
    assert main(["backtest", "--policies", "twap,nosuch", "--no-progress"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["backtest", "--horizons", "1w", "--no-progress"]) == 2
    assert "unknown horizon" in capsys.readouterr().err


def test_paired_intervals_separate_a_real_difference_and_not_noise() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 5, 200)
    m, lo, hi = bootstrap_ci(noise - 2.0)
    assert hi < 0 and lo < m < hi
    m, lo, hi = bootstrap_ci(rng.normal(0, 5, 200))
    assert lo < 0 < hi
    rows = [
        {
            "episode": f"e{i}",
            "policy": p,
            "horizon": "30m",
            "size": 0.01,
            "is_bps": v,
            "vwap_slippage_bps": 0.0,
            "completed": True,
            "participation": 0.1,
            "passive_share": 0.0,
        }
        for i in range(50)
        for p, v in (("twap", 5.0 + i % 7), ("ac", 4.0 + i % 7), ("x", 6.0 + i % 7))
    ]
    s = summarize(rows)["groups"]["all"]
    assert s["x"]["minus_twap_bps"][0] == pytest.approx(1.0) and s["x"]["minus_ac_bps"][0] == pytest.approx(
        2.0
    )


def test_days_shared_out_over_processes_give_the_same_rows(tmp_path: Path) -> None:
    common = ["backtest", "--days", "1", "--profiles", "mid,high", "--horizons", "30m", "--sizes", "0.01",
              "--policies", "twap,ac", "--no-progress"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    one = [json.loads(x) for x in (tmp_path / "one" / "episodes.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "episodes.jsonl").read_text().splitlines()]
    assert len(one) == 2 * 4 * 2 * 2
    assert [(r["episode"], r["policy"], r["is_bps"]) for r in one] == [
        (r["episode"], r["policy"], r["is_bps"]) for r in two
    ]


def test_record_writes_the_paired_figures_into_the_policy_files_manifest(tmp_path: Path) -> None:
    import shutil

    from worker.policy_files import PolicyRegistry, sha256, validate

    folder = tmp_path / "policies"
    shutil.copytree(Path("policies") / "rl-exec-mid", folder / "rl-exec-mid")
    before = sha256(folder / "rl-exec-mid" / "1" / "policy.pt2")
    rc = main(["backtest", "--days", "1", "--profiles", "high", "--horizons", "30m", "--sizes", "0.01",
               "--policies", "twap,ac,rl-exec-mid@1", "--dir", str(folder), "--out", str(tmp_path / "bt"),
               "--record", "--no-progress"])  # fmt: skip
    assert rc == 0
    manifest, _ = validate(folder / "rl-exec-mid" / "1")  # still valid: the artefact did not change
    assert sha256(folder / "rl-exec-mid" / "1" / "policy.pt2") == before
    run = manifest.evaluation["backtest"]["synthetic"]
    assert run["episodes"] == 8 and set(run["horizons"]) == {"30m"}
    assert len(run["horizons"]["30m"]["minus_twap_bps"]) == 3
    assert PolicyRegistry(folder).load("rl-exec-mid").manifest.evaluation == manifest.evaluation


def test_whole_days_are_resampled_once_there_are_enough_of_them() -> None:
    rng = np.random.default_rng(3)
    # Episodes of a day share its market: a day effect the episode bootstrap would not see.
    days = [f"d{k}" for k in range(12) for _ in range(20)]
    effect = rng.normal(0, 3, 12).repeat(20)
    x = effect + rng.normal(0, 1, len(days))
    _, lo_ep, hi_ep = bootstrap_ci(x)
    _, lo_day, hi_day = bootstrap_ci(x, blocks=days)
    assert hi_day - lo_day > 1.5 * (hi_ep - lo_ep)
    # With too few days there is no day interval to give: the episodes' one, unchanged.
    assert bootstrap_ci(x[:60], blocks=days[:60]) == bootstrap_ci(x[:60])
