"""Run a real Apache Pulsar standalone on a machine without Docker.

The broker jars come from Maven Central through ``deploy/pulsar/pom.xml`` into a cache folder outside the
repository (``provision``); ``start`` launches ``org.apache.pulsar.PulsarStandaloneStarter`` in the
background with our ``deploy/pulsar/standalone.conf`` and a run folder of its own (config, data, logs, pid);
``wait`` polls the admin API and then creates the ``paceline`` tenant and its namespaces; ``stop`` ends the
process by its own pid.

With ``auth`` the broker runs Pulsar's token authentication (``AuthenticationProviderToken``, HS256) and its
authorisation: ``start`` writes a secret key and one token per role into the run folder's ``auth/``
(``runtime.auth``), and ``wait`` grants each role what ``GRANTS`` says and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import topics
from runtime import auth
from runtime.shipped import shipped

DEPLOY = shipped("deploy") / "pulsar"
MAIN_CLASS = "org.apache.pulsar.PulsarStandaloneStarter"

# Retention per namespace: (minutes, MB). -1 keeps forever: the saga log is the orchestrator's state.
RETENTION: dict[str, tuple[int, int]] = {
    "market": (24 * 60, 4096),
    "jobs": (7 * 24 * 60, 2048),
    "exec": (7 * 24 * 60, 2048),
    "control": (24 * 60, 512),
    "saga": (-1, -1),
    "dlq": (7 * 24 * 60, 512),
}

# What each role may do, and nothing else: (a namespace of per-symbol or per-job topics, or one topic) and
# its actions. The health-checker is also the tenant's admin: fencing a hung leader unloads its topics.
# The saga (health-checker) writes the client reports; the endpoint writes every execution. The endpoint
# reads back the requests it wrote (a restart rebuilds the TCA of the parents still working from them), and
# reads the saga log for the reports it holds (a client's acknowledgement one broker hop sooner), and a new
# order's New on the reports' twin (told before the commit, once the order's request is stored).
P, C = "produce", "consume"
GRANTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "receiver": (("market", (P,)),),
    "worker": (
        ("market", (C,)), ("jobs", (P, C)), ("dlq", (P,)),
        (topics.ASSIGNMENTS, (C,)), (topics.HEARTBEATS, (P,)),
    ),
    "health-checker": (
        ("market", (C,)), ("dlq", (P,)),
        (topics.JOB_REQUESTS, (C,)), (topics.LIVE_JOB_REQUESTS, (C,)), (topics.HEARTBEATS, (C,)),
        (topics.LEADER, (P, C)),
        (topics.ASSIGNMENTS, (P,)), (topics.EXECUTIONS, (C,)), (topics.REPORTS, (P,)),
        (topics.LIVE_REPORTS, (P,)), (topics.VENUE_COMMANDS, (P,)), (topics.SAGA_LOG, (P, C)),
        (topics.SAGA_SNAPSHOTS, (P, C)),
    ),
    "endpoint": (
        ("market", (C,)), ("jobs", (P, C)), ("dlq", (P,)),
        (topics.EXECUTIONS, (P,)), (topics.JOB_REQUESTS, (P, C)), (topics.LIVE_JOB_REQUESTS, (P,)),
        (topics.REPORTS, (C,)), (topics.LIVE_REPORTS, (C,)), (topics.TCA, (P,)),
        (topics.VENUE_COMMANDS, (C,)), (topics.RISK, (C,)), (topics.SAGA_LOG, (C,)),
    ),
    "operator": ((topics.RISK, (P, C)),),
    "viewer": tuple((ns, (C,)) for ns in topics.NAMESPACES),
}  # fmt: skip
# No service is a tenant admin (a tenant admin may produce anywhere in the tenant): the health-checker frees
# a hung leader's subscriptions by resetting their cursors, which consume permission allows.
TENANT_ADMINS: tuple[str, ...] = ()

# What Pulsar's own launcher passes to the JVM so the broker can reach JDK internals on Java 17+.
JVM_OPENS = [
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.util.zip=ALL-UNNAMED",
    "--add-opens=java.base/sun.net=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-opens=java.management/sun.management=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


class BrokerError(RuntimeError):
    """Provisioning, start-up or shutdown of the broker failed; the message says what to do."""


def pulsar_version() -> str:
    """The one place the version is written down: the pom's ``pulsar.version`` property."""
    match = re.search(r"<pulsar.version>([^<]+)</pulsar.version>", (DEPLOY / "pom.xml").read_text())
    if not match:
        raise BrokerError("deploy/pulsar/pom.xml has no <pulsar.version>")
    return match.group(1)


class RunFolder:
    """What a standalone's and a cluster's configurations share: the jars in the cache, and the role tokens
    in the run folder's ``auth/`` when authentication is on."""

    run_dir: Path
    cache_dir: Path
    auth: bool

    @property
    def lib_dir(self) -> Path:
        return self.cache_dir / f"pulsar-{pulsar_version()}" / "lib"

    @property
    def auth_dir(self) -> Path:
        return self.run_dir / "auth"

    def token_file(self, role: str) -> Path | None:
        """The token file of ``role`` when authentication is on (None when off)."""
        return self.auth_dir / f"{role}.token" if self.auth else None

    @property
    def admin_token(self) -> str | None:
        path = self.token_file(auth.SUPERUSER)
        return path.read_text().strip() if path is not None and path.exists() else None


@dataclass(frozen=True)
class BrokerConfig(RunFolder):
    """One standalone instance: its ports and run folder. Two instances need two of each."""

    run_dir: Path
    cache_dir: Path
    port: int = 6650
    web_port: int = 8080
    bookie_port: int = 3181
    low_latency: bool = False
    heap: str = "1g"
    auth: bool = False  # token authentication and authorisation (roles in ``auth_dir``)
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def service_url(self) -> str:
        return f"pulsar://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "broker.pid"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def conf_file(self) -> Path:
        return self.run_dir / "standalone.conf"


@dataclass(frozen=True)
class ProvisionResult:
    lib_dir: Path
    seconds: float
    jars: int
    size_mb: float
    downloaded: bool


def _dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6


def provision(cache_dir: Path, *, quiet: bool = True) -> ProvisionResult:
    """Resolve the broker jars into the cache (once; a later call reuses it without the network)."""
    lib = cache_dir / f"pulsar-{pulsar_version()}" / "lib"
    stamp = lib.parent / "complete"
    t0 = time.monotonic()
    if stamp.exists() and lib.is_dir():
        jars = len(list(lib.glob("*.jar")))
        return ProvisionResult(lib, time.monotonic() - t0, jars, _dir_size_mb(lib), downloaded=False)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not installed: `apt-get install maven`, then provision again")
    tmp = lib.parent / "lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        mvn, "-B", *(["-q"] if quiet else []),
        "-s", str(DEPLOY / "settings.xml"),
        "-f", str(DEPLOY / "pom.xml"),
        f"-Dpaceline.lib={tmp}",
        "dependency:copy-dependencies",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise BrokerError(f"Maven could not resolve Apache Pulsar {pulsar_version()}:\n{tail}")
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    stamp.write_text(json.dumps({"version": pulsar_version(), "at": time.time()}))
    jars = len(list(lib.glob("*.jar")))
    return ProvisionResult(lib, time.monotonic() - t0, jars, _dir_size_mb(lib), downloaded=True)


def java_command() -> str:
    """A Java 17-23 runtime: PACELINE_JAVA, then JAVA_HOME, then `java` on PATH."""
    candidates = [os.environ.get("PACELINE_JAVA", "")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java") or "")
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java"))
    for java in filter(None, candidates):
        major = _java_major(java)
        if major is not None and 17 <= major < 24:
            return java
    raise BrokerError("Apache Pulsar 4.0 needs Java 17 or 21 (not 24+): install openjdk-17-jre-headless")


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def render_conf(cfg: BrokerConfig) -> dict[str, str]:
    """Write the run folder's standalone.conf: our template with the keys this launcher manages."""
    managed = {
        "brokerServicePort": str(cfg.port),
        "webServicePort": str(cfg.web_port),
        "advertisedAddress": "127.0.0.1",
        "bindAddress": "127.0.0.1",
    }
    if cfg.low_latency:
        managed["journalWriteData"] = "false"
    if cfg.auth:
        managed.update(auth_conf(cfg.auth_dir))
    managed.update(cfg.overrides)
    write_conf(cfg.conf_file, managed)
    return managed


def auth_conf(auth_dir: Path) -> dict[str, str]:
    """The broker keys for token authentication and authorisation (the role tokens written in ``auth_dir``
    once, then reused: every broker of a cluster shares them)."""
    auth.write_tokens(auth_dir)
    return auth_keys(auth_dir)


def auth_keys(auth_dir: Path) -> dict[str, str]:
    """``auth_conf``'s keys for the tokens in ``auth_dir``, not written (docker-compose.yml's are in step)."""
    return {
        "authenticationEnabled": "true",
        "authenticationProviders": "org.apache.pulsar.broker.authentication.AuthenticationProviderToken",
        "tokenSecretKey": f"file://{auth_dir / auth.SECRET_FILE}",
        "authorizationEnabled": "true",
        "superUserRoles": auth.SUPERUSER,
        # The broker's own client (system topics, the standalone's set-up, other brokers) is the superuser.
        "brokerClientAuthenticationPlugin": "org.apache.pulsar.client.impl.auth.AuthenticationToken",
        "brokerClientAuthenticationParameters": f"file://{auth_dir / f'{auth.SUPERUSER}.token'}",
    }


def write_conf(path: Path, managed: dict[str, str]) -> None:
    """``deploy/pulsar/standalone.conf`` with ``managed``'s keys set (added when the template lacks them):
    the standalone and every broker of a cluster start from the same file."""
    lines = (DEPLOY / "standalone.conf").read_text().splitlines()
    out, seen = [], set()
    for line in lines:
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in managed:
            out.append(f"{key}={managed[key]}")
            seen.add(key)
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in managed.items() if k not in seen]
    path.write_text("\n".join(out) + "\n")


def read_pid(cfg: BrokerConfig) -> int | None:
    """The broker's pid if the pid file names a live PulsarStandaloneStarter of this run folder."""
    try:
        pid = int(cfg.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    # A pid can be reused after a crash; only a standalone started with our config file counts.
    if MAIN_CLASS in cmdline and str(cfg.conf_file) in cmdline:
        return pid
    return None


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (its cmdline can be empty just after spawn)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _launched_pid(cfg: BrokerConfig) -> int | None:
    try:
        return int(cfg.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(cfg: BrokerConfig) -> int:
    """Launch the standalone in the background and return its pid (not yet ready: see ``wait``)."""
    pid = read_pid(cfg)
    if pid is not None:
        return pid
    for port in (cfg.port, cfg.web_port, cfg.bookie_port):
        if _port_in_use(port):
            raise BrokerError(f"port {port} is already in use on 127.0.0.1 (another broker?)")
    if not (cfg.lib_dir.parent / "complete").exists():
        raise BrokerError(
            f"Apache Pulsar is not provisioned in {cfg.cache_dir}: run `paceline broker provision`"
        )
    for sub in ("data/metadata", "data/bookkeeper", "logs"):
        (cfg.run_dir / sub).mkdir(parents=True, exist_ok=True)
    render_conf(cfg)
    cmd = [
        java_command(),
        "-Xms256m", f"-Xmx{cfg.heap}", "-XX:MaxDirectMemorySize=1g",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=10", "-XX:+ExitOnOutOfMemoryError",
        *JVM_OPENS,
        f"-Dlog4j.configurationFile={DEPLOY / 'log4j2.xml'}",
        f"-Dpulsar.log.dir={cfg.log_dir}",
        "-Dpulsar.allocator.exit_on_oom=true",
        "-cp", f"{cfg.lib_dir}/*",
        MAIN_CLASS,
        "-c", str(cfg.conf_file),
        "-nfw", "-nss",
        "--metadata-dir", str(cfg.run_dir / "data" / "metadata"),
        "--bookkeeper-dir", str(cfg.run_dir / "data" / "bookkeeper"),
        "--bookkeeper-port", str(cfg.bookie_port),
    ]  # fmt: skip
    with open(cfg.log_dir / "console.log", "ab") as console:
        proc = subprocess.Popen(
            cmd, cwd=cfg.run_dir, stdout=console, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    cfg.pid_file.write_text(str(proc.pid))
    return proc.pid


def _http(
    method: str, url: str, body: Any = None, timeout: float = 10.0, token: str | None = None
) -> tuple[int, str]:
    """``token``: the role's (default: this process's, ``runtime.auth.token_from_env``)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    token = token or auth.token_from_env()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(3):
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location")
            if exc.code in (307, 308) and location:
                # On a cluster, a topic's admin call goes to the broker that owns it: follow (urllib does
                # not, for a PUT or a POST).
                url = location
                continue
            return exc.code, exc.read().decode(errors="replace")
    return 307, f"redirected too often ({url})"


def is_ready(admin_url: str, token: str | None = None) -> bool:
    try:
        status, _ = _http("GET", f"{admin_url}/admin/v2/namespaces/public", timeout=3, token=token)
    except (OSError, urllib.error.URLError):
        return False
    return status == 200


def wait(cfg: BrokerConfig, timeout_s: float = 300.0) -> float:
    """Block until the admin API answers and the namespaces exist; return the seconds waited."""
    t0 = time.monotonic()
    launched = _launched_pid(cfg)
    while not is_ready(cfg.admin_url, cfg.admin_token):
        if launched is not None and not _alive(launched):
            raise BrokerError(
                f"the broker exited during start-up; see {cfg.log_dir}/console.log\n{log_tail(cfg)}"
            )
        if time.monotonic() - t0 > timeout_s:
            raise BrokerError(f"the broker did not answer within {timeout_s:.0f} s; see {cfg.log_dir}")
        time.sleep(0.5)
    ensure_namespaces(cfg.admin_url, cfg.admin_token)
    stamp = cfg.auth_dir / "granted.json"
    wanted = json.dumps(GRANTS, sort_keys=True)
    # The grants live in the broker's metadata: a restart of the same run folder keeps them.
    if cfg.auth and not (stamp.exists() and stamp.read_text() == wanted):
        grant_roles(cfg.admin_url, cfg.admin_token)
        stamp.write_text(wanted)
    return time.monotonic() - t0


def ensure_namespaces(admin_url: str, token: str | None = None, cluster: str = "standalone") -> None:
    """Create the tenant and namespaces (idempotent) and set retention and de-duplication on each."""
    api = f"{admin_url}/admin/v2"
    tenant = {"allowedClusters": [cluster], "adminRoles": list(TENANT_ADMINS)}
    status, body = _http("PUT", f"{api}/tenants/{topics.TENANT}", tenant, token=token)
    if status == 409:  # it exists: keep its admins in step
        status, body = _http("POST", f"{api}/tenants/{topics.TENANT}", tenant, token=token)
    if status not in (200, 204):
        raise BrokerError(f"creating tenant {topics.TENANT} failed: {status} {body}")
    for ns, (minutes, mb) in RETENTION.items():
        base = f"{api}/namespaces/{topics.TENANT}/{ns}"
        status, body = _http("PUT", base, token=token)
        if status not in (204, 409):
            raise BrokerError(f"creating namespace {ns} failed: {status} {body}")
        for path, payload in (
            ("retention", {"retentionTimeInMinutes": minutes, "retentionSizeInMB": mb}),
            ("deduplication", True),
        ):
            status, body = _http("POST", f"{base}/{path}", payload, token=token)
            if status not in (200, 204):
                raise BrokerError(f"setting {path} on {ns} failed: {status} {body}")


def grant_roles(admin_url: str, token: str | None) -> None:
    """Give every role of ``GRANTS`` its permissions (idempotent: a grant replaces the role's actions)."""
    api = f"{admin_url}/admin/v2"
    for role, grants in GRANTS.items():
        for target, actions in grants:
            if target in topics.NAMESPACES:
                url = f"{api}/namespaces/{topics.namespace(target)}/permissions/{role}"
            else:  # a topic-level grant needs the topic: create it (non-partitioned) first
                path = f"{api}/{target.replace('://', '/', 1)}"
                status, body = _http("PUT", path, token=token)
                if status not in (204, 409):
                    raise BrokerError(f"creating topic {target} failed: {status} {body}")
                url = f"{path}/permissions/{role}"
            status, body = _http("POST", url, list(actions), token=token)
            if status not in (200, 204):
                raise BrokerError(f"granting {role} {'+'.join(actions)} on {target} failed: {status} {body}")


def stop(cfg: BrokerConfig, timeout_s: float = 60.0) -> bool:
    """Stop the broker this run folder started. Returns False if none was running."""
    pid = read_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and read_pid(cfg) is not None:
        time.sleep(0.2)
    if read_pid(cfg) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def status(cfg: BrokerConfig) -> dict[str, Any]:
    pid = read_pid(cfg)
    return {
        "pulsar_version": pulsar_version(),
        "pid": pid,
        "running": pid is not None,
        "ready": is_ready(cfg.admin_url, cfg.admin_token),
        "auth": cfg.auth,
        "service_url": cfg.service_url,
        "admin_url": cfg.admin_url,
        "run_dir": str(cfg.run_dir),
        "provisioned": (cfg.lib_dir.parent / "complete").exists(),
    }


def log_tail(cfg: BrokerConfig, lines: int = 30) -> str:
    path = cfg.log_dir / "console.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def warn_low_latency() -> None:
    print(
        "\n*** WARNING: --low-latency turns the bookie journal OFF (journalWriteData=false). ***\n"
        "*** Acknowledged messages can be LOST if the broker process dies. Benchmarks only.  ***\n",
        file=sys.stderr,
    )
