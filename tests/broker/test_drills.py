"""``paceline drill``: the failover drills CI runs. Each starts a broker of its own (the broker-restart
drill restarts it), works four parents through every service, injects its fault and checks the promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker

CHECKS = {"every parent finished", "no over-execution", "no duplicate child order", "no lost fill",
          "consistent execution reports", "fenced epochs stay fenced",
          "TCA on every final report"}  # fmt: skip


# broker-kill runs on a cluster of its own (ZooKeeper, three bookies, two brokers): ~2 minutes in all.
@pytest.mark.parametrize("fault", ["worker-kill", "broker-restart", "broker-kill"])
def test_drill_passes(fault: str, tmp_path: Path) -> None:
    env = {**os.environ, "PACELINE_HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "paceline", "drill", fault, "--window", "360"], env=env,
                         capture_output=True, text=True, timeout=400, check=False)  # fmt: skip
    out = res.stdout + res.stderr[-3000:]
    assert res.returncode == 0, out
    assert f"drill {fault}: PASS" in res.stdout, out
    (result,) = (tmp_path / "drills").glob(f"{fault}-*/result.json")
    doc = json.loads(result.read_text())
    names = {c["name"] for c in doc["checks"]}
    assert names >= CHECKS, names
    assert all(c["ok"] for c in doc["checks"])
    assert doc["recovered_s"] is not None and doc["recovered_s"] > 0
    assert [p["status"] for p in doc["parents"]] == ["FILLED"] * 4
    if fault == "worker-kill":
        assert "lost worker's jobs reassigned" in names
        # detected within the heartbeat timeout (2 s) plus the health-checker's poll and the fence's publish
        assert 0 < doc["detected_s"] < 6
    if fault == "broker-kill":
        # The executions topic moved to the surviving broker, and the note says how many topics moved.
        assert doc["detected_s"] is not None and doc["detected_s"] > 0, doc
        moved = [n for n in doc["notes"] if "moved to the surviving broker" in n]
        assert moved and " 0 of them moved" not in moved[0], doc["notes"]
