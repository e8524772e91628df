"""The worker pool as the health-checker sees it from heartbeats (soft state: rebuilt from heartbeats after
a takeover, never logged)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models import WorkerHeartbeat


@dataclass
class WorkerInfo:
    worker_id: str
    incarnation: str | None
    last_seen_ns: int
    capacity: int = 0
    policies: frozenset[str] = field(default_factory=frozenset)


class Pool:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerInfo] = {}

    def expect(self, worker_id: str, now_ns: int) -> None:
        """A worker the log says holds jobs: give it a full timeout to show up after a takeover."""
        self.workers.setdefault(worker_id, WorkerInfo(worker_id, None, now_ns))

    def heartbeat(self, hb: WorkerHeartbeat) -> bool:
        """Record a heartbeat; True if the worker restarted (a new incarnation: its old jobs are gone)."""
        w = self.workers.get(hb.worker_id)
        if w is None:
            self.workers[hb.worker_id] = WorkerInfo(
                hb.worker_id, hb.incarnation, hb.ts_init, hb.capacity, frozenset(hb.policies)
            )
            return False
        if hb.ts_init < w.last_seen_ns and hb.incarnation == w.incarnation:
            return False  # an older heartbeat delivered late
        restarted = w.incarnation is not None and hb.incarnation != w.incarnation
        w.incarnation = hb.incarnation
        w.last_seen_ns = max(w.last_seen_ns, hb.ts_init)
        w.capacity = hb.capacity
        w.policies = frozenset(hb.policies)
        return restarted

    def grace(self, now_ns: int) -> None:
        """Count every worker as heard at ``now_ns``."""
        for w in self.workers.values():
            w.last_seen_ns = max(w.last_seen_ns, now_ns)

    def expired(self, now_ns: int, timeout_ns: int) -> list[tuple[str, int]]:
        """Remove and return the workers silent for longer than ``timeout_ns``, with their silence."""
        out = [(w.worker_id, now_ns - w.last_seen_ns) for w in self.workers.values()
               if now_ns - w.last_seen_ns > timeout_ns]  # fmt: skip
        for worker_id, _ in out:
            del self.workers[worker_id]
        return out

    def pick(self, policy: str, load: dict[str, int]) -> str | None:
        """The least loaded live worker that can run ``policy`` and has room (ties: by id)."""
        best: tuple[int, str] | None = None
        for w in self.workers.values():
            if w.incarnation is None or policy not in w.policies:
                continue
            n = load.get(w.worker_id, 0)
            if n >= w.capacity:
                continue
            if best is None or (n, w.worker_id) < best:
                best = (n, w.worker_id)
        return best[1] if best else None
