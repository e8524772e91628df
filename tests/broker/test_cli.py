"""The README's main job, end to end, against the session's broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paceline import broker

pytestmark = pytest.mark.broker


def _run(args: list[str], pulsar: broker.BrokerConfig) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PACELINE_PULSAR_URL": pulsar.service_url,
        "PACELINE_PULSAR_ADMIN_URL": pulsar.admin_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "paceline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_demo_pushes_typed_ticks_through_the_broker(pulsar: broker.BrokerConfig) -> None:
    res = _run(["demo", "--symbols", "AAPL,MSFT", "--ticks", "300"], pulsar)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "using the broker already answering" in res.stdout
    assert "600 ticks through Apache Pulsar" in res.stdout
    assert "every tick arrived, in order per symbol" in res.stdout


def test_broker_status_command(pulsar: broker.BrokerConfig) -> None:
    res = _run(
        ["broker", "status", "--run-dir", str(pulsar.run_dir), "--port", str(pulsar.port),
         "--web-port", str(pulsar.web_port)],
        pulsar,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert '"ready": true' in res.stdout
