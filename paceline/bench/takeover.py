"""``paceline bench takeover``: a standby's takeover time against the saga log's length, replaying the whole
log and starting from the latest snapshot, on a standalone of its own.

The history is real parent-order sagas: a template of parents (accepted, opened at the venue, assigned,
``--fills`` fills, closed) is worked through the real coordinator, parent saga and simulated venue in
memory, then copied under new ids, in log order, onto a Pulsar topic (each event its own entry; the
service now stores each commit as one batch, which a reader splits the same way: not measured apart here).
A desk's day is spread evenly over the history (``DAY_EVENTS`` events in 6.5 hours), so the records of
ended parents age as they do live and the snapshot keeps only those within the retention. The leader
follows the log as the service does: every ``snapshot_every`` events it prunes and snapshots (in blocks,
from its last snapshot). At each length, ``LIVE`` parents are mid-way (their state is in the snapshot) and
half a snapshot interval of events follows the last snapshot: the tail a takeover replays on average.

Timed: ``Orchestrator.recover`` of a fresh orchestrator (with an outbox whose broker holds every effect
already, so nothing is re-sent and only the checking is paid), from the whole log and from the snapshot.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from health_checker.coordinator import Config, Coordinator
from health_checker.parent_saga import ParentSaga
from market.venue import Venue
from models import (
    Fill,
    JobRequest,
    ParentOrder,
    SagaEvent,
    Side,
    VenueCommand,
    VenueCommandAck,
    WorkerHeartbeat,
    topics,
)
from paceline.ops import broker
from paceline.ops.stack import start_scratch_broker
from runtime import logs
from runtime.bus import Bus
from runtime.settings import Settings
from saga import MemoryLog, MemoryOutbox, Orchestrator, PulsarLog, PulsarSnapshots, effect_message
from saga.outbox import sequence_of

S = 1_000_000_000
T0 = 1_767_000_000 * S
LIVE = 100  # parents mid-way at each takeover
DAY_EVENTS = 1_000_000  # a desk's day of log events, spread over 6.5 hours of wall clock
DAY_NS = round(6.5 * 3600 * S)


def _template(parents: int, fills: int) -> list[list[SagaEvent]]:
    """Each parent's log events, worked through the real coordinator, saga and venue (in memory)."""
    log, out, venue = MemoryLog(), MemoryOutbox(), Venue()
    coord = Coordinator(Orchestrator(log, out, ParentSaga), Config(), wall=lambda: T0)
    coord.on_market_time("BENCH", T0)
    coord.handle(WorkerHeartbeat(worker_id="w1", incarnation="i1", seq=1, capacity=10**6,
                                 policies=("twap",), ts_init=T0))  # fmt: skip
    done = 0

    def pump() -> None:
        nonlocal done
        while done < len(out.sent):
            m = effect_message(out.sent[done][1])
            done += 1
            if isinstance(m, VenueCommand):
                for r in venue.command(m):
                    if isinstance(r, VenueCommandAck):
                        coord.handle(r)

    for i in range(parents):
        p = ParentOrder(parent_id=f"B{i}", client_id="BENCH", cl_ord_id=f"C{i}", symbol="BENCH",
                        side=Side.BUY, quantity=100 * fills, start_ns=T0, end_ns=T0 + 3600 * S,
                        ts_init=T0)  # fmt: skip
        coord.handle(JobRequest(job_id=f"J{i}", parent=p, ts_init=T0))
        pump()
        for k in range(fills):
            coord.handle(Fill(fill_id=f"F{i}.{k}", child_id=f"J{i}.1.{k}", job_id=f"J{i}",
                              parent_id=p.parent_id, symbol="BENCH", side=Side.BUY, qty=100,
                              px=100.0 + k * 0.01, ts_event=T0, ts_init=T0))  # fmt: skip
            pump()
    by_saga: dict[str, list[SagaEvent]] = {}
    for ev in log.events:
        by_saga.setdefault(ev.saga_id, []).append(ev)
    return list(by_saga.values())


class _History:
    """The log's events in order: copies of the template's parents under new ids, positions from 1."""

    def __init__(self, template: list[list[SagaEvent]]) -> None:
        self.template = template
        self.position = 0
        self.copies = 0
        self.pending: list[tuple[int, list[SagaEvent]]] = []

    def _ts(self) -> int:
        return T0 + self.position * DAY_NS // DAY_EVENTS

    def _copy(self, events: Sequence[SagaEvent]) -> Iterator[SagaEvent]:
        self.copies += 1
        for ev in events:
            self.position += 1
            sid = f"{ev.saga_id}-{self.copies}"
            yield ev.model_copy(update={"saga_id": sid, "event_id": f"{sid}.{ev.seq}",
                                        "position": self.position, "ts_init": self._ts()})  # fmt: skip

    def ended(self, n: int) -> Iterator[SagaEvent]:
        """At least ``n`` events of parents worked to the end."""
        start = self.position
        i = 0
        while self.position - start < n:
            yield from self._copy(self.template[i % len(self.template)])
            i += 1

    def halfway(self, parents: int) -> Iterator[SagaEvent]:
        """``parents`` parents stopped mid-way (their first half of events); ``finish`` ends them."""
        for i in range(parents):
            events = self.template[i % len(self.template)]
            yield from self._copy(events[: len(events) // 2])
            self.pending.append((self.copies, events[len(events) // 2 :]))

    def finish(self) -> Iterator[SagaEvent]:
        """The rest of the parents left mid-way, to their end."""
        for copy, events in self.pending:
            for ev in events:
                self.position += 1
                sid = f"{ev.saga_id}-{copy}"
                yield ev.model_copy(update={"saga_id": sid, "event_id": f"{sid}.{ev.seq}",
                                            "position": self.position, "ts_init": self._ts()})  # fmt: skip
        self.pending.clear()


class _Published(MemoryOutbox):
    """An outbox whose broker has stored every effect already: resume checks each and sends none."""

    def resume(self, events: Sequence[SagaEvent]) -> int:
        last = sys.maxsize
        return sum(1 for ev in events for i in range(len(ev.effects)) if sequence_of(ev, i) > last)


def _write(bus: Bus, topic: str, events: Iterator[SagaEvent]) -> int:
    p = bus.producer(topic, name="bench-saga-log")
    n = 0
    for ev in events:
        p.send_async(ev, key=ev.saga_id, sequence_id=ev.position, event_time_ns=ev.ts_init)
        n += 1
    p.flush()
    p.close()
    return n


def _recover(
    bus: Bus, log_topic: str, snaps: PulsarSnapshots | None
) -> tuple[float, Orchestrator[ParentSaga]]:
    orch: Orchestrator[ParentSaga] = Orchestrator(PulsarLog(bus, log_topic), _Published(), ParentSaga)
    t0 = time.perf_counter()
    orch.recover(snaps)
    return time.perf_counter() - t0, orch


def run(settings: Settings, *, lengths: Sequence[int], fills: int = 20, snapshot_every: int = 5_000) -> int:
    logs.configure("paceline-bench", level="WARNING")  # a line per parent of the template is noise here
    tag = uuid.uuid4().hex[:6]
    log_topic, snap_topic = f"{topics.SAGA_LOG}-bench-{tag}", f"{topics.SAGA_SNAPSHOTS}-bench-{tag}"
    print(f"building the template: 100 parents of {fills} fills each (real coordinator, saga, venue) ...")
    template = _template(100, fills)
    per_parent = sum(len(t) for t in template) / len(template)
    print(f"  {per_parent:.0f} log events per parent; a desk's day = {DAY_EVENTS:,} events over 6.5 h")
    config = Config(snapshot_every=snapshot_every)
    rows: list[tuple[str, ...]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-takeover-")))
        cfg = start_scratch_broker(tmp / "broker", settings.cache_dir)
        stack.callback(broker.stop, cfg)
        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        snaps = PulsarSnapshots(bus, snap_topic)
        stack.callback(snaps.close)
        history = _History(template)
        for length in sorted(lengths):
            t_build = time.perf_counter()
            # The leader's day up to here, a snapshot interval at a time, as the service's loop takes them.
            _write(bus, log_topic, history.finish())  # the last round's running parents end
            target = length - LIVE * round(per_parent / 2) - snapshot_every // 2
            while history.position < target:
                _write(bus, log_topic, history.ended(min(snapshot_every, target - history.position)))
                _follow(bus, log_topic, snaps, config, history.position)
            _write(bus, log_topic, history.halfway(LIVE))
            snap = _follow(bus, log_topic, snaps, config, history.position, force=True)
            _write(bus, log_topic, history.ended(length - history.position))
            built = time.perf_counter() - t_build
            t_snap, from_snap = _recover(bus, log_topic, snaps)
            t_full, full = _recover(bus, log_topic, None)
            live = {k: v for k, v in full.sagas.items() if not v.terminal}
            same = (live == {k: v for k, v in from_snap.sagas.items() if not v.terminal}
                    and full.position == from_snap.position == history.position)  # fmt: skip
            rows.append((f"{history.position:,}", f"{len(live)}", f"{snap[1]}", f"{snap[2]:.0f}",
                         f"{history.position - snap[0]:,}", f"{t_full:.2f}", f"{t_snap:.3f}",
                         f"{t_full / t_snap:.0f}x", "yes" if same else "NO"))  # fmt: skip
            print(
                f"  {history.position:,} events: built in {built:.0f} s; whole log {t_full:.2f} s, "
                f"from the snapshot {t_snap:.3f} s, same state: {same}",
                flush=True,
            )
            if not same:
                print("the snapshot's takeover differs from the whole log's", file=sys.stderr)
                return 1
    head = ("log events", "running", "ended kept", "snapshot KB", "tail", "whole log s", "snapshot s",
            "ratio", "same state")  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("\n" + "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return 0


def _follow(
    bus: Bus, log_topic: str, snaps: PulsarSnapshots, config: Config, position: int, *, force: bool = False
) -> tuple[int, int, float]:
    """The leader catches up (from its last snapshot) and takes the snapshot its loop would: (position,
    ended records kept, KB written)."""
    _, orch = _recover(bus, log_topic, snaps)
    wall = T0 + position * DAY_NS // DAY_EVENTS
    coord = Coordinator(orch, config if not force else Config(snapshot_every=0), wall=lambda: wall)
    coord.checkpoint(snaps)
    return orch.snapshot_position, len(orch.ended), snaps.last_bytes / 1024
