"""docker-compose.yml cannot run here (no Docker engine): keep it in step with the bare-machine path."""

from __future__ import annotations

from pathlib import Path

import yaml

from paceline import broker

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_the_same_pulsar_version_and_config() -> None:
    pulsar = _compose()["services"]["pulsar"]
    assert pulsar["image"] == f"apachepulsar/pulsar:{broker.pulsar_version()}"
    assert "standalone -nfw -nss" in pulsar["command"]
    assert "./deploy/pulsar/standalone.conf:/pulsar/conf/standalone.conf:ro" in pulsar["volumes"]
    assert "healthcheck" in pulsar


def test_compose_overrides_only_keys_our_config_has() -> None:
    keys = {
        line.split("=", 1)[0]
        for line in (ROOT / "deploy/pulsar/standalone.conf").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    env = _compose()["services"]["pulsar"]["environment"]
    # apply-config-from-env.py only rewrites keys that exist in the file.
    assert {k for k in env if not k.startswith("PULSAR_")} <= keys


def test_every_paceline_service_waits_for_a_healthy_broker() -> None:
    services = _compose()["services"]
    ours = {n: s for n, s in services.items() if s.get("image") == "paceline:dev"}
    assert {"receiver", "health-checker", "worker-1", "worker-2", "endpoint", "dashboard", "demo"} <= set(
        ours
    )
    for name, svc in ours.items():
        assert svc["environment"]["PACELINE_PULSAR_URL"] == "pulsar://pulsar:6650", name
        needs = svc["depends_on"]
        assert needs.get("pulsar-setup", needs.get("pulsar", {})).get("condition") in (
            "service_completed_successfully",
            "service_healthy",
        ), name


def test_dockerfile_copies_every_package() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    for pkg in ("paceline", "runtime", "models", "market", "saga", "receiver", "worker", "health_checker",
                "endpoint", "deploy"):  # fmt: skip
        assert f"COPY {pkg} {pkg}" in docker


def test_every_scraped_service_serves_metrics_where_prometheus_looks() -> None:
    services = _compose()["services"]
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] if job["job_name"] == "paceline"
               for group in job["static_configs"] for t in group["targets"]]  # fmt: skip
    assert targets
    for target in targets:
        host, port = target.split(":")
        env = services[host]["environment"]
        assert env["PACELINE_METRICS_PORT"] == port, host
        assert env["PACELINE_METRICS_ADDR"] == "0.0.0.0", host
    mounts = services["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
