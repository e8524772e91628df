"""``paceline market-facts`` and ``paceline lobster-days`` as a researcher runs them: generated days by
profile, the facts side by side with the real ranges, and clear errors for what cannot be measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from market.recorded import write_day
from paceline.cli import main


def test_facts_of_generated_files_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    days = tmp_path / "days"
    for seed, sym, prof in ((1, "MID", "mid"), (2, "HIG", "high")):
        write_day(days, seed, sym, "2026-01-05", 5, profile=prof, end_s=34_200 + 2400)
    out = tmp_path / "facts"
    assert main(["market-facts", str(days), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| fact | HIG_2026-01-05 | MID_2026-01-05 | real range" in printed
    data = json.loads((out / "facts.json").read_text())
    assert set(data) == {"HIG_2026-01-05", "MID_2026-01-05"}
    # A $600 stock's spread is fewer bps than a $200 one's, more ticks.
    assert data["HIG_2026-01-05"]["spread_bps_median"] < data["MID_2026-01-05"]["spread_bps_median"]
    assert data["HIG_2026-01-05"]["spread_ticks_median"] > data["MID_2026-01-05"]["spread_ticks_median"]
    assert data["MID_2026-01-05"]["passive_orders"] > 0
    assert (out / "facts.png").stat().st_size > 10_000


def test_bad_days_get_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["market-facts", str(tmp_path / "nothing.csv"), "--out", str(tmp_path)]) == 2
    assert "not a LOBSTER message file name" in capsys.readouterr().err
    assert main(["market-facts", "gen:nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown market profile 'nosuch'" in capsys.readouterr().err
    assert main(["market-facts", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no LOBSTER message files" in capsys.readouterr().err


def test_lobster_days_by_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["lobster-days", "--out", str(tmp_path), "--symbols", "AAA,BBB", "--profiles", "mid,nosuch"])
        == 2
    )
    assert "unknown profile" in capsys.readouterr().err
    assert (
        main(["lobster-days", "--out", str(tmp_path), "--symbols", "AAA,BBB,CCC", "--profiles", "mid,high"])
        == 2
    )
    assert "one per symbol" in capsys.readouterr().err
