"""The cluster's configuration without starting it: ports kept in its folder, the brokers' file is the
standalone's with the cluster's keys, a topic's ensemble read off its ledger metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paceline.ops import broker, cluster


def test_a_cluster_folder_keeps_its_ports_and_the_brokers_start_from_the_standalones_file(
    tmp_path: Path,
) -> None:
    cfg = cluster.ClusterConfig.new(tmp_path / "c", tmp_path / "cache", auth=True)
    cfg.save()
    again = cluster.ClusterConfig.load(tmp_path / "c", tmp_path / "cache")
    assert again == cfg and len(cfg.bookie_ports) == 3 and len(cfg.broker_ports) == 2
    assert cfg.service_url == f"pulsar://127.0.0.1:{cfg.broker_ports[0]},127.0.0.1:{cfg.broker_ports[1]}"
    assert cluster.ClusterConfig.load(tmp_path / "nothing", tmp_path) is None
    keys = cluster.broker_conf(cfg, 1)
    conf = tmp_path / "broker.conf"
    broker.write_conf(conf, keys)
    lines = dict(
        ln.split("=", 1) for ln in conf.read_text().splitlines() if "=" in ln and not ln.startswith("#")
    )
    assert lines["clusterName"] == "paceline" and lines["brokerServicePort"] == str(cfg.broker_ports[1])
    assert (
        lines["metadataStoreUrl"] == f"zk:127.0.0.1:{cfg.zk_port}" == lines["configurationMetadataStoreUrl"]
    )
    assert (lines["managedLedgerDefaultEnsembleSize"], lines["managedLedgerDefaultWriteQuorum"],
            lines["managedLedgerDefaultAckQuorum"]) == ("2", "2", "2")  # fmt: skip
    assert lines["authenticationEnabled"] == "true" and (cfg.auth_dir / "admin.token").exists()
    # Everything else is the standalone's: de-duplication, no inactive-topic deletion.
    assert (
        lines["brokerDeduplicationEnabled"] == "true"
        and lines["brokerDeleteInactiveTopicsEnabled"] == "false"
    )
    bookie = cluster.bookie_conf(cfg, 2)
    assert f"bookiePort={cfg.bookie_ports[2]}" in bookie and f"127.0.0.1:{cfg.zk_port}/ledgers" in bookie


def test_the_ensemble_of_a_topic_is_read_off_its_open_ledger(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = cluster.ClusterConfig(tmp_path, tmp_path, 1, (3181, 3182, 3183), (6650, 6651), (8080, 8081))
    meta = ("LedgerMetadata{formatVersion=3, ensembleSize=2, ensembles={0=[127.0.0.1:3181, 127.0.0.1:3183], "
            "40=[127.0.0.1:3182, 127.0.0.1:3183]}, customMetadata={}}")  # fmt: skip

    def fake(method: str, url: str, *_: Any, **__: Any) -> tuple[int, str]:
        import json

        assert "internalStats?metadata=true" in url
        return 200, json.dumps(
            {"ledgers": [{"ledgerId": 1, "metadata": "x"}, {"ledgerId": 2, "metadata": meta}]}
        )

    monkeypatch.setattr(broker, "_http", fake)
    assert cluster.ensemble(cfg, "persistent://paceline/market/ticks.AAPL") == ["bookie-2", "bookie-3"]
