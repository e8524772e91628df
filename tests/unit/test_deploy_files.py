"""docker-compose.yml cannot run here (no Docker engine): keep it in step with the bare-machine path."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import yaml

from paceline.ops import broker

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_the_same_pulsar_version_and_config() -> None:
    pulsar = _compose()["services"]["pulsar"]
    assert pulsar["image"] == f"apachepulsar/pulsar:{broker.pulsar_version()}"
    assert "standalone -nfw -nss" in pulsar["command"]
    assert "./deploy/pulsar/standalone.conf:/paceline/standalone.conf:ro" in pulsar["volumes"]
    assert "cp /paceline/standalone.conf conf/standalone.conf" in pulsar["command"]
    assert "healthcheck" in pulsar


def _rewritten(command: str, workdir: str) -> set[str]:
    """Container paths a service's shell command writes: apply-config-from-env.py's and ``sed -i``'s
    arguments, ``cp``'s and ``mv``'s destination, and redirect targets, made absolute against ``workdir``."""
    import shlex

    out: set[str] = set()
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        if words[:1] == ["exec"]:
            words = words[1:]
        if not words:
            continue
        tool = words[0].rsplit("/", 1)[-1]
        if tool == "apply-config-from-env.py":
            out.update(w for w in words[1:] if not w.startswith("-"))
        elif (tool == "sed" and "-i" in words) or tool in ("cp", "mv"):
            out.add(words[-1])
        out.update(w.lstrip(">") for w in words if w.startswith(">") and w not in (">", ">>"))
        out.update(nxt for w, nxt in pairwise(words) if w in (">", ">>"))
    return {p if p.startswith("/") else f"{workdir.rstrip('/')}/{p}" for p in out}


def test_no_file_a_container_command_rewrites_is_mounted_read_only() -> None:
    """The broker's start-up rewrote its config in place through a read-only mount, and so never started."""
    workdirs = {"pulsar": "/pulsar"}  # the official image's working directory
    checked = 0
    for name, svc in _compose()["services"].items():
        command = svc.get("command")
        if not isinstance(command, str):
            continue
        inner = re.search(r'sh -c "(.*)"', command, re.S)
        written = _rewritten(inner.group(1) if inner else command, workdirs.get(name, "/"))
        read_only = {v.split(":")[1] for v in svc.get("volumes", []) if v.endswith(":ro")}
        for path in written:
            assert not any(path == ro or path.startswith(ro.rstrip("/") + "/") for ro in read_only), (
                name,
                path,
            )
        checked += bool(written)
    assert checked  # the broker's command was parsed


def test_the_rewrite_check_catches_the_old_mount() -> None:
    assert "/pulsar/conf/standalone.conf" in _rewritten(
        "bin/apply-config-from-env.py conf/standalone.conf && exec bin/pulsar standalone", "/pulsar"
    )


def _conf_keys() -> set[str]:
    return {
        line.split("=", 1)[0]
        for line in (ROOT / "deploy/pulsar/standalone.conf").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }


def test_compose_follows_the_compose_specification() -> None:
    """The file's grammar, checked without the engine: the Compose Specification's JSON schema
    (deploy/compose-spec/README.md says where it comes from)."""
    import json

    import jsonschema

    schema = json.loads((ROOT / "deploy/compose-spec/compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    check = validator(schema, format_checker=validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(_compose())]
    assert not errors, errors
    # And it can fail: a misspelt key, a condition Compose does not know.
    misspelt, unknown = _compose(), _compose()
    misspelt["services"]["pulsar"]["helthcheck"] = misspelt["services"]["pulsar"].pop("healthcheck")
    unknown["services"]["pulsar-setup"]["depends_on"]["pulsar"]["condition"] = "service_ready"
    assert "'helthcheck' was unexpected" in " ".join(e.message for e in check.iter_errors(misspelt))
    assert "'service_ready'" in " ".join(e.message for e in check.iter_errors(unknown))


def test_the_compose_broker_authenticates_like_broker_start_auth() -> None:
    """The broker's keys are ``paceline broker start --auth``'s, every service connects with its own
    role's token, and the set-up grants the roles as the superuser."""
    from runtime import auth

    services = _compose()["services"]
    env, conf = services["pulsar"]["environment"], _conf_keys()
    for key, value in broker.auth_keys(Path("/auth")).items():
        assert env[key if key in conf else f"PULSAR_PREFIX_{key}"] == value, key
    assert "pulsar-auth:/auth:ro" in services["pulsar"]["volumes"]
    assert services["pulsar"]["depends_on"]["pulsar-auth"]["condition"] == "service_completed_successfully"
    assert "file:///auth/admin.token" in services["pulsar"]["healthcheck"]["test"]
    assert "paceline broker tokens --run-dir /broker" in services["pulsar-auth"]["command"]
    assert "pulsar-auth:/broker/auth" in services["pulsar-auth"]["volumes"]
    roles = {"pulsar-setup": auth.SUPERUSER, "demo": auth.SUPERUSER, "receiver": "receiver",
             "health-checker": "health-checker", "health-checker-standby": "health-checker",
             "worker-1": "worker", "worker-2": "worker", "endpoint": "endpoint",
             "dashboard": "viewer"}  # fmt: skip
    ours = [n for n, s in services.items() if s.get("image") == "paceline:dev" and "cluster" not in
            s.get("profiles", []) and n != "pulsar-auth"]  # fmt: skip
    assert sorted(ours) == sorted(roles)
    for name in ours:
        svc = services[name]
        assert svc["environment"]["PACELINE_PULSAR_TOKEN_FILE"] == f"/auth/{roles[name]}.token", name
        assert "pulsar-auth:/auth:ro" in svc["volumes"], name
    assert services["pulsar-setup"]["command"][-2:] == ["setup", "--auth"]


def test_compose_overrides_only_keys_our_config_has() -> None:
    keys = _conf_keys()
    env = _compose()["services"]["pulsar"]["environment"]
    # apply-config-from-env.py only rewrites keys that exist in the file.
    assert {k for k in env if not k.startswith("PULSAR_")} <= keys


def test_every_paceline_service_waits_for_a_healthy_broker() -> None:
    services = _compose()["services"]
    ours = {n: s for n, s in services.items() if s.get("image") == "paceline:dev" and "cluster" not in
            s.get("profiles", []) and n != "pulsar-auth"}  # fmt: skip
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
    assert "COPY pyproject.toml setup.py" in docker  # setup.py ships policies/ and deploy/ in the wheel


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


def test_the_compose_cluster_is_the_bare_machine_cluster() -> None:
    """``paceline cluster`` (paceline/cluster.py) and the compose ``cluster`` profile: same image version,
    the same broker keys over the same standalone.conf, the same bookie keys, the tenant on the cluster."""
    from paceline.ops import cluster

    services = _compose()["services"]
    members = {n: s for n, s in services.items() if "cluster" in s.get("profiles", [])}
    assert {"zookeeper", "cluster-init", "bookie-1", "bookie-2", "bookie-3", "broker-1", "broker-2",
            "cluster-setup"} <= set(members)  # fmt: skip
    for name, svc in members.items():
        if svc.get("image", "").startswith("apachepulsar/"):
            assert svc["image"] == f"apachepulsar/pulsar:{broker.pulsar_version()}", name
    cfg = cluster.ClusterConfig(Path("/x"), Path("/y"), 2181, (3181, 3182, 3183), (6650, 6651), (8080, 8081))
    bare = cluster.broker_conf(cfg, 0)
    for name in ("broker-1", "broker-2"):
        env = members[name]["environment"]
        assert "cp /paceline/standalone.conf conf/broker.conf" in members[name]["command"]
        assert "./deploy/pulsar/standalone.conf:/paceline/standalone.conf:ro" in members[name]["volumes"]
        keys = {k.removeprefix("PULSAR_PREFIX_"): v for k, v in env.items() if k != "PULSAR_MEM"}
        for k in ("clusterName", "metadataStoreSessionTimeoutMillis", "managedLedgerDefaultEnsembleSize",
                  "managedLedgerDefaultWriteQuorum", "managedLedgerDefaultAckQuorum", "loadManagerClassName",
                  "loadBalancerEnabled"):  # fmt: skip
            assert keys[k] == bare[k], (name, k)
        assert keys["metadataStoreUrl"] == keys["configurationMetadataStoreUrl"] == "zk:zookeeper:2181"
        # apply-config-from-env.py rewrites only keys the file has; others need the PULSAR_PREFIX_ form.
        conf_keys = {line.split("=", 1)[0] for line in (ROOT / "deploy/pulsar/standalone.conf").read_text()
                     .splitlines() if "=" in line and not line.startswith("#")}  # fmt: skip
        assert {k for k in env if not k.startswith("PULSAR_")} <= conf_keys, name
    bookie = dict(line.split("=", 1) for line in cluster.bookie_conf(cfg, 0).splitlines() if "=" in line)
    for name in ("bookie-1", "bookie-2", "bookie-3"):
        env = members[name]["environment"]
        assert env["advertisedAddress"] == name
        for k in ("zkTimeout", "httpServerEnabled", "journalSyncData", "journalWriteData",
                  "dbStorage_writeCacheMaxSizeMb", "dbStorage_readAheadCacheMaxSizeMb"):  # fmt: skip
            assert env[k] == bookie[k], (name, k)
    assert "--cluster paceline" in members["cluster-init"]["command"] and cluster.CLUSTER == "paceline"
    assert members["cluster-setup"]["command"][-4:] == [
        "--cluster",
        "paceline",
        "--admin-url",
        "http://broker-1:8080",
    ]
