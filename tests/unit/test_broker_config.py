from __future__ import annotations

import os
from pathlib import Path

from paceline.ops import broker


def _cfg(tmp_path: Path, **kw: object) -> broker.BrokerConfig:
    return broker.BrokerConfig(run_dir=tmp_path, cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]


def _conf(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def test_pulsar_version_is_a_4_0_lts() -> None:
    assert broker.pulsar_version().startswith("4.0.")


def test_rendered_conf_has_ports_and_the_required_settings(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, port=16650, web_port=18080)
    broker.render_conf(cfg)
    conf = _conf(cfg.conf_file)
    assert conf["brokerServicePort"] == "16650" and conf["webServicePort"] == "18080"
    assert conf["brokerDeduplicationEnabled"] == "true"
    assert conf["brokerDeleteInactiveTopicsEnabled"] == "false"
    assert conf["loadManagerClassName"].endswith("NoopLoadManager")
    for key in ("Ensemble", "Write", "Ack"):
        assert conf[f"managedLedgerDefault{key}{'Size' if key == 'Ensemble' else 'Quorum'}"] == "1"
    assert conf["journalWriteData"] == "true"
    assert conf["metadataStoreUrl"] == ""


def test_low_latency_turns_the_journal_off(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, low_latency=True)
    broker.render_conf(cfg)
    assert _conf(cfg.conf_file)["journalWriteData"] == "false"


def test_overrides_replace_or_append(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, overrides={"managedLedgerNewEntriesCheckDelayInMillis": "10", "newKey": "x"})
    broker.render_conf(cfg)
    conf = _conf(cfg.conf_file)
    assert conf["managedLedgerNewEntriesCheckDelayInMillis"] == "10" and conf["newKey"] == "x"


def test_pid_file_of_another_process_is_not_trusted(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg.pid_file.write_text(str(os.getpid()))  # alive, but not a standalone of this run folder
    assert broker.read_pid(cfg) is None
    assert broker.stop(cfg) is False
    cfg.pid_file.write_text("not a pid")
    assert broker.read_pid(cfg) is None


def test_start_without_provisioning_says_what_to_do(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, port=1, web_port=2, bookie_port=3)  # privileged ports: nothing listens there
    try:
        broker.start(cfg)
    except broker.BrokerError as exc:
        assert "paceline broker provision" in str(exc)
    else:
        raise AssertionError("start must refuse an unprovisioned cache")


def test_java_is_17_to_23() -> None:
    java = broker.java_command()
    major = broker._java_major(java)
    assert major is not None and 17 <= major < 24
