"""``paceline cluster start|stop|status``: a local Apache Pulsar cluster without Docker — a ZooKeeper metadata
store, the cluster's metadata initialised, three bookies and two brokers, each its own JVM with a bounded
heap, its own data folder, log and pid, on free ports, from the jars ``paceline broker provision`` caches.

Every broker starts from the standalone's own ``deploy/pulsar/standalone.conf`` with the keys a cluster
needs set (``broker_conf``), so the two configurations cannot drift apart. Choices, and why:

- Ensemble 2, write quorum 2, ack quorum 2 over three bookies: every entry is on two bookies (a lost
  bookie loses nothing) and a third is there to replace a lost one, so writes go on. Ensemble 3 over three
  bookies would leave no spare: the first ensemble change after a bookie loss fails and the topic stops.
- The metadata session is 3 s (ZooKeeper's tick 0.5 s): a killed broker's bundles are released that long
  after its death, and the modular load manager gives them to a live broker at the clients' next lookup.
- Clients use the multi-host service URL (``pulsar://127.0.0.1:B1,127.0.0.1:B2``): whichever answers.

The run folder holds ``cluster.json`` (the ports), ``zk/``, ``bookie-N/``, ``broker-N/`` (conf, data,
``console.log``, ``pid``) and ``auth/`` when token authentication is on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paceline.ops import broker
from paceline.ops.broker import DEPLOY, JVM_OPENS, BrokerError, RunFolder, java_command, pulsar_version
from runtime import auth

CLUSTER = "paceline"
ENSEMBLE = (2, 2, 2)  # ensemble, write quorum, ack quorum
SESSION_MS = 3_000
HEAPS = {"zk": ("128m", "64m"), "bookie": ("256m", "256m"), "broker": ("640m", "512m")}  # heap, direct


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ClusterConfig(RunFolder):
    run_dir: Path
    cache_dir: Path
    zk_port: int
    bookie_ports: tuple[int, ...]
    broker_ports: tuple[int, ...]
    web_ports: tuple[int, ...]
    auth: bool = False

    @classmethod
    def new(
        cls, run_dir: Path, cache_dir: Path, *, auth: bool = False, bookies: int = 3, brokers: int = 2
    ) -> ClusterConfig:
        return cls(
            run_dir,
            cache_dir,
            _free_port(),
            tuple(_free_port() for _ in range(bookies)),
            tuple(_free_port() for _ in range(brokers)),
            tuple(_free_port() for _ in range(brokers)),
            auth,
        )

    @classmethod
    def load(cls, run_dir: Path, cache_dir: Path) -> ClusterConfig | None:
        try:
            d = json.loads((run_dir / "cluster.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            run_dir,
            cache_dir,
            d["zk_port"],
            tuple(d["bookie_ports"]),
            tuple(d["broker_ports"]),
            tuple(d["web_ports"]),
            bool(d.get("auth", False)),
        )

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        d = {k: v for k, v in asdict(self).items() if k not in ("run_dir", "cache_dir")}
        (self.run_dir / "cluster.json").write_text(json.dumps(d, indent=1))

    # --- what a client needs (the same names as ``broker.BrokerConfig``) --------------------------------
    @property
    def service_url(self) -> str:
        return "pulsar://" + ",".join(f"127.0.0.1:{p}" for p in self.broker_ports)

    @property
    def admin_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.web_ports]

    @property
    def admin_url(self) -> str:
        """A live broker's admin API (the first that accepts a connection): admin calls are cluster-wide."""
        for url, port in zip(self.admin_urls, self.web_ports, strict=True):
            if _port_open(port):
                return url
        return self.admin_urls[0]

    # --- the members -------------------------------------------------------------------------------------
    @property
    def members(self) -> list[str]:
        return [
            "zk",
            *(f"bookie-{i + 1}" for i in range(len(self.bookie_ports))),
            *(f"broker-{i + 1}" for i in range(len(self.broker_ports))),
        ]

    def dir(self, member: str) -> Path:
        return self.run_dir / member

    def port(self, member: str) -> int:
        kind, _, n = member.partition("-")
        if kind == "zk":
            return self.zk_port
        return (self.bookie_ports if kind == "bookie" else self.broker_ports)[int(n) - 1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def broker_conf(cfg: ClusterConfig, i: int) -> dict[str, str]:
    """The keys a cluster's broker ``i`` sets over the standalone's configuration."""
    zk = f"zk:127.0.0.1:{cfg.zk_port}"
    keys = {
        "clusterName": CLUSTER,
        "metadataStoreUrl": zk,
        "configurationMetadataStoreUrl": zk,
        "metadataStoreSessionTimeoutMillis": str(SESSION_MS),
        "brokerServicePort": str(cfg.broker_ports[i]),
        "webServicePort": str(cfg.web_ports[i]),
        "advertisedAddress": "127.0.0.1",
        "bindAddress": "127.0.0.1",
        "managedLedgerDefaultEnsembleSize": str(ENSEMBLE[0]),
        "managedLedgerDefaultWriteQuorum": str(ENSEMBLE[1]),
        "managedLedgerDefaultAckQuorum": str(ENSEMBLE[2]),
        "loadManagerClassName": "org.apache.pulsar.broker.loadbalance.impl.ModularLoadManagerImpl",
        "loadBalancerEnabled": "true",
    }
    if cfg.auth:
        keys.update(broker.auth_conf(cfg.auth_dir))
    return keys


def bookie_conf(cfg: ClusterConfig, i: int) -> str:
    d = cfg.dir(f"bookie-{i + 1}")
    return (
        "\n".join(
            [
                f"bookiePort={cfg.bookie_ports[i]}",
                "advertisedAddress=127.0.0.1",
                "allowLoopback=true",
                f"metadataServiceUri=zk+hierarchical://127.0.0.1:{cfg.zk_port}/ledgers",
                f"zkTimeout={SESSION_MS}",
                f"journalDirectories={d / 'journal'}",
                f"ledgerDirectories={d / 'ledgers'}",
                "httpServerEnabled=false",
                "ledgerStorageClass=org.apache.bookkeeper.bookie.storage.ldb.DbLedgerStorage",
                "dbStorage_writeCacheMaxSizeMb=32",
                "dbStorage_readAheadCacheMaxSizeMb=32",
                "dbStorage_rocksDB_blockCacheSize=16777216",
                # As the standalone's bookie (deploy/pulsar/standalone.conf): written, not fsynced.
                "journalSyncData=false",
                "journalWriteData=true",
                "journalFlushWhenQueueEmpty=true",
                "diskUsageThreshold=0.99",
                "diskUsageWarnThreshold=0.98",
                "diskCheckInterval=60000",
            ]
        )
        + "\n"
    )


def _java(cfg: ClusterConfig, member: str, main: str, *args: str) -> list[str]:
    heap, direct = HEAPS[member.partition("-")[0]]
    return [
        java_command(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        f"-XX:MaxDirectMemorySize={direct}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        *JVM_OPENS,
        f"-Dlog4j.configurationFile={DEPLOY / 'log4j2.xml'}",
        f"-Dpulsar.log.dir={cfg.dir(member)}",
        "-Dzookeeper.admin.enableServer=false",
        "-Dpulsar.allocator.exit_on_oom=true",
        "-cp",
        f"{cfg.lib_dir}/*",
        main,
        *args,
    ]


def _launch(cfg: ClusterConfig, member: str, cmd: list[str]) -> int:
    d = cfg.dir(member)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "console.log", "ab") as console:
        proc = subprocess.Popen(
            cmd,
            cwd=d,
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (d / "pid").write_text(str(proc.pid))
    _LAUNCHED[str(d)] = proc
    return proc.pid


def pid_of(cfg: ClusterConfig, member: str) -> int | None:
    """The member's pid if it runs (a reused pid does not count: its command line must name our folder)."""
    try:
        pid = int((cfg.dir(member) / "pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    if str(cfg.dir(member)) not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return pid


def _tail(cfg: ClusterConfig, member: str, lines: int = 20) -> str:
    path = cfg.dir(member) / "console.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# The members this process launched: until a child has exec'd the JVM its command line is still ours, so
# "is it alive" is asked of the process handle, not of /proc's command line.
_LAUNCHED: dict[str, subprocess.Popen[bytes]] = {}


def _exited(cfg: ClusterConfig, member: str) -> bool:
    proc = _LAUNCHED.get(str(cfg.dir(member)))
    return proc.poll() is not None if proc is not None else pid_of(cfg, member) is None


def _wait_port(cfg: ClusterConfig, member: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _port_open(cfg.port(member)):
        if _exited(cfg, member):
            raise BrokerError(f"{member} exited during start-up:\n{_tail(cfg, member)}")
        if time.monotonic() > deadline:
            raise BrokerError(f"{member} did not open port {cfg.port(member)} in {timeout_s:.0f} s")
        time.sleep(0.2)


def start_member(cfg: ClusterConfig, member: str) -> int:
    """Start one member (again, after a drill killed it) on its own folder and port."""
    pid = pid_of(cfg, member)
    if pid is not None:
        return pid
    d = cfg.dir(member)
    d.mkdir(parents=True, exist_ok=True)
    kind, _, n = member.partition("-")
    if kind == "zk":
        (d / "zoo.cfg").write_text(
            f"tickTime=500\ndataDir={d / 'data'}\nclientPort={cfg.zk_port}\n"
            "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
        )
        return _launch(
            cfg,
            member,
            _java(cfg, member, "org.apache.zookeeper.server.ZooKeeperServerMain", str(d / "zoo.cfg")),
        )
    if kind == "bookie":
        (d / "bookkeeper.conf").write_text(bookie_conf(cfg, int(n) - 1))
        return _launch(
            cfg,
            member,
            _java(cfg, member, "org.apache.bookkeeper.server.Main", "--conf", str(d / "bookkeeper.conf")),
        )
    broker.write_conf(d / "broker.conf", broker_conf(cfg, int(n) - 1))
    return _launch(
        cfg,
        member,
        _java(cfg, member, "org.apache.pulsar.PulsarBrokerStarter", "--broker-conf", str(d / "broker.conf")),
    )


def _init_metadata(cfg: ClusterConfig) -> None:
    stamp = cfg.run_dir / "metadata-initialised"
    if stamp.exists():
        return
    zk = f"zk:127.0.0.1:{cfg.zk_port}"
    cmd = _java(
        cfg,
        "zk",
        "org.apache.pulsar.PulsarClusterMetadataSetup",
        "--cluster",
        CLUSTER,
        "--metadata-store",
        zk,
        "--configuration-metadata-store",
        zk,
        "--web-service-url",
        ",".join(cfg.admin_urls),
        "--broker-service-url",
        cfg.service_url,
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if out.returncode != 0:
        raise BrokerError(f"initialising the cluster's metadata failed:\n{(out.stdout + out.stderr)[-3000:]}")
    stamp.write_text(str(time.time()))


def start(cfg: ClusterConfig, timeout_s: float = 300.0) -> dict[str, float]:
    """Bring the cluster up (members already running are kept) and return the seconds each step took."""
    if not (cfg.lib_dir.parent / "complete").exists():
        raise BrokerError(
            f"Apache Pulsar is not provisioned in {cfg.cache_dir}: run `paceline broker provision`"
        )
    cfg.save()
    if cfg.auth:
        auth.write_tokens(cfg.auth_dir)
    took: dict[str, float] = {}
    t0 = time.monotonic()
    start_member(cfg, "zk")
    _wait_port(cfg, "zk", 60)
    took["zookeeper"] = time.monotonic() - t0
    _init_metadata(cfg)
    took["metadata"] = time.monotonic() - t0
    bookies = [m for m in cfg.members if m.startswith("bookie")]
    for m in bookies:
        start_member(cfg, m)
    for m in bookies:
        _wait_port(cfg, m, 120)
    took["bookies"] = time.monotonic() - t0
    brokers = [m for m in cfg.members if m.startswith("broker")]
    for m in brokers:
        start_member(cfg, m)
    for m in brokers:
        wait_member(cfg, m, timeout_s)
    took["brokers"] = time.monotonic() - t0
    broker.ensure_namespaces(cfg.admin_url, cfg.admin_token, cluster=CLUSTER)
    if cfg.auth:
        broker.grant_roles(cfg.admin_url, cfg.admin_token)
    took["ready"] = time.monotonic() - t0
    return took


def wait_member(cfg: ClusterConfig, member: str, timeout_s: float = 300.0) -> None:
    """Until ``member`` serves: its port is open and, for a broker, its admin API answers too (clients are
    sent to it for topics from then on)."""
    kind, _, n = member.partition("-")
    _wait_port(cfg, member, timeout_s)
    if kind != "broker":
        return
    url = cfg.admin_urls[int(n) - 1]
    deadline = time.monotonic() + timeout_s
    while not broker.is_ready(url, cfg.admin_token):
        if _exited(cfg, member):
            raise BrokerError(f"{member} exited during start-up:\n{_tail(cfg, member)}")
        if time.monotonic() > deadline:
            log = cfg.dir(member) / "console.log"
            raise BrokerError(f"{member} did not answer in {timeout_s:.0f} s; see {log}")
        time.sleep(0.5)


def stop_member(cfg: ClusterConfig, member: str, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> bool:
    pid = pid_of(cfg, member)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while pid_of(cfg, member) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_of(cfg, member) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


def stop(cfg: ClusterConfig) -> list[str]:
    """Stop every member by its own pid, brokers first (they flush to the bookies), ZooKeeper last."""
    stopped = []
    for m in reversed(cfg.members):
        if stop_member(cfg, m):
            stopped.append(m)
    return stopped


def status(cfg: ClusterConfig) -> dict[str, Any]:
    members = {}
    for m in cfg.members:
        pid = pid_of(cfg, m)
        rss = None
        if pid is not None:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = round(int(line.split()[1]) / 1024)
        members[m] = {"pid": pid, "port": cfg.port(m), "rss_mb": rss}
    ready = [broker.is_ready(u, cfg.admin_token) for u in cfg.admin_urls]
    return {
        "pulsar_version": pulsar_version(),
        "cluster": CLUSTER,
        "service_url": cfg.service_url,
        "admin_urls": cfg.admin_urls,
        "brokers_ready": ready,
        "members": members,
        "auth": cfg.auth,
        "rss_mb_total": sum(v["rss_mb"] or 0 for v in members.values()),
        "run_dir": str(cfg.run_dir),
    }


def owner(cfg: ClusterConfig, topic: str) -> str | None:
    """The member (``broker-N``) that owns ``topic`` now, by the lookup API."""
    path = topic.replace("://", "/", 1)
    for url in cfg.admin_urls:
        with contextlib.suppress(OSError, ValueError):
            code, body = broker._http(
                "GET", f"{url}/lookup/v2/topic/{path}", timeout=5, token=cfg.admin_token
            )
            if code == 200:
                owner_url = json.loads(body).get("brokerUrl", "")
                for i, p in enumerate(cfg.broker_ports):
                    if owner_url.endswith(f":{p}"):
                        return f"broker-{i + 1}"
    return None


def ensemble(cfg: ClusterConfig, topic: str) -> list[str]:
    """The bookies (``bookie-N``) the topic's open ledger writes to now, from its internal stats."""
    import re

    path = topic.replace("://", "/", 1)
    url = f"{cfg.admin_url}/admin/v2/{path}/internalStats?metadata=true"
    code, body = broker._http("GET", url, timeout=10, token=cfg.admin_token)
    if code != 200:
        return []
    ledgers = json.loads(body).get("ledgers") or []
    meta = str(ledgers[-1].get("metadata", "")) if ledgers else ""
    last = re.findall(r"\d+=\[([^\]]*)\]", meta)
    ports = [int(a.rsplit(":", 1)[1]) for a in last[-1].split(",")] if last else []
    return [f"bookie-{cfg.bookie_ports.index(p) + 1}" for p in ports if p in cfg.bookie_ports]
