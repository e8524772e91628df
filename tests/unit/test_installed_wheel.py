"""The package installed as a wheel (as the Dockerfile's ``pip install .`` does), run from another folder:
the default policy files, the endpoint's configuration and the broker's Maven project must come with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from models import DEFAULT_RL_POLICY

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

PROBE = """
import json, sys
from paceline.ops import broker
from paceline.cli import main
from endpoint.config import DEFAULT_FILE, load
from runtime.settings import Settings
from importlib import resources
from fixclient import FixClient
page = resources.files("dashboard").joinpath("page.html").read_text()
print(json.dumps({"paceline": __import__("paceline").__file__, "policy_dir": str(Settings().policy_dir),
                  "endpoint_toml": str(DEFAULT_FILE), "pom": str(broker.DEPLOY / "pom.xml"),
                  "pulsar": broker.pulsar_version(), "symbols": list(load().symbols),
                  "page": "<html" in page.lower(), "dashboard": __import__("dashboard").__file__}))
sys.stdout.flush()
sys.exit(main(["policy", "list"]))
"""


def test_the_installed_wheel_finds_its_policies_config_and_maven_project(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
         str(ROOT)], check=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    wheel = next(dist.glob("paceline-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "paceline/_shipped/deploy/endpoint/endpoint.toml" in names
    assert any(n.startswith("paceline/_shipped/policies/rl-exec/") for n in names)
    assert any(n.startswith(f"paceline/_shipped/policies/{DEFAULT_RL_POLICY}/") for n in names)  # RL default
    assert not any("/target/" in n for n in names)
    assert "dashboard/page.html" in names and "fixclient/client.py" in names  # the live page, the client
    assert {"dashboard/vendor/uPlot.iife.min.js", "dashboard/vendor/uPlot.LICENSE"} <= set(names)  # its chart
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, timeout=600,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PACELINE_LOG_LEVEL": "WARNING"}
    env.pop("PACELINE_POLICY_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.splitlines()[0])
    installed = str(site / "paceline")
    assert facts["paceline"].startswith(installed)  # the wheel's code, not the checkout's
    for key in ("policy_dir", "endpoint_toml", "pom"):
        assert facts[key].startswith(str(site / "paceline" / "_shipped")), (key, facts[key])
    assert facts["pulsar"] and facts["symbols"]
    assert facts["page"] and facts["dashboard"].startswith(str(site / "dashboard"))
    assert "rl-exec" in out.stdout
