"""The README's main job, end to end, against the session's broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from models import Tick, encode, topics
from paceline.ops import broker
from runtime.bus import Bus
from tests.factories import T0, tick

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


def test_demo_works_parents_through_every_service(pulsar: broker.BrokerConfig) -> None:
    res = _run(["demo", "--symbols", "AAPL,MSFT", "--minutes", "4", "--speed", "20"], pulsar)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "using the broker already answering" in res.stdout
    # Every service came up, the FIX client's parents were worked to the end, the TCA table and the report.
    assert "services up: health-checker, endpoint" in res.stdout
    tca = res.stdout[res.stdout.index("policy symbol") :].splitlines()[1:6]
    assert [line.split()[0] for line in tca] == ["TWAP", "VWAP", "POV", "IS", "RL"]
    assert all(line.split()[-1] in ("FILLED", "DONE_FOR_DAY") for line in tca), tca
    assert "report: " in res.stdout
    # A TCA report per parent, with the figures its client was told (the table's IS is the file's).
    rows = res.stdout[res.stdout.index("(bps; positive = cost)") :].splitlines()[1:6]
    assert len(rows) == 5 and not any("no report" in r or "no final figures" in r for r in rows), rows
    for row in rows:
        page = Path(row.split()[-1]).read_text()
        assert f"data-figure='is_bps'>{float(row.split()[1]):+.2f}<" in page, row
        assert "the same figures" in page and page.count("<svg") == 3
    assert "every tick arrived, in order per symbol" in res.stdout
    # The live page and the services' metrics were up: the page knew all five parents, and the
    # endpoint's tick -> child histogram had samples.
    assert "live page: 5 of the demo's parents known to it" in res.stdout, res.stdout[-3000:]
    assert "endpoint metrics: tick -> child order p50 <=" in res.stdout


def test_broker_status_command(pulsar: broker.BrokerConfig) -> None:
    res = _run(
        ["broker", "status", "--run-dir", str(pulsar.run_dir), "--port", str(pulsar.port),
         "--web-port", str(pulsar.web_port)],
        pulsar,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert '"ready": true' in res.stdout


def test_receiver_command_merges_redundant_tick_files(pulsar: broker.BrokerConfig, tmp_path: Path) -> None:
    symbol = f"F{uuid.uuid4().hex[:6].upper()}"
    ticks = [tick(symbol=symbol, seq=s, ts_event=T0 + s * 1_000_000) for s in range(1, 31)]
    a = [encode(t) for t in ticks if t.seq % 7 or t.seq > 19]  # feed A lost 7 and 14
    b = [encode(t) for t in ticks if t.seq < 20] + [b"{garbage"]  # feed B died after 19, with a bad line
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(a) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(b) + b"\n")
    res = _run(["receiver", "--source", "file", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                "--speed", "max", "--name", symbol.lower()], pulsar)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ticks in 30, published 30, failed 0, malformed 1" in res.stdout
    with Bus(pulsar.service_url) as bus:
        c = bus.subscribe(topics.ticks(symbol), "check", Tick)
        seqs = []
        while (d := c.receive(timeout_ms=5000)) is not None:
            seqs.append(d.message.seq)
            c.ack(d)
    assert seqs == list(range(1, 31))


def test_the_endpoint_refuses_to_expose_demo_credentials(pulsar: broker.BrokerConfig) -> None:
    res = _run(["endpoint", "--host", "0.0.0.0"], pulsar)
    assert res.returncode == 2, res.stderr
    assert "refusing to start: the native protocol listens on 0.0.0.0 with demo credentials" in res.stderr
    assert "PACELINE_ENDPOINT_CREDENTIALS" in res.stderr
