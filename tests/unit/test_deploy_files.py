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
    for name, svc in services.items():
        if name == "pulsar":
            continue
        assert svc["environment"]["PACELINE_PULSAR_URL"] == "pulsar://pulsar:6650", name


def test_dockerfile_copies_every_package() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    for pkg in ("paceline", "runtime", "models", "market", "saga", "receiver", "worker", "health_checker",
                "endpoint", "deploy"):  # fmt: skip
        assert f"COPY {pkg} {pkg}" in docker
