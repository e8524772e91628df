"""The orchestrator: holds the live sagas, runs handlers as transactions, appends, then publishes.

One handler runs at a time (the caller serialises). A handler gets a ``Context``; whatever it emits is
applied to the saga at once, appended to the log when the handler returns, and only then published. If
the handler raises, the saga is restored as it was and nothing is appended. If the append fails the
orchestrator has lost its lease: it refuses further work and its owner must step down and, to serve
again, rebuild from the log.

Group commit (``group``): the transactions run inside one ``with orch.group():`` are appended together
when it ends, as one entry, and only then published. Inputs that queued while the last append was on its
way cost one storage round trip between them, not one each. A later transaction in the group sees what an
earlier one decided: they commit together or, if the append fails, not at all (and the lease is lost).

Memory and takeover stay bounded by what runs, not by history: ended sagas leave memory for a compact
record (``prune``; the record answers a late redelivery), and ``snapshot`` writes the running state at a
log position so that ``recover`` starts there and replays only the tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from pydantic import JsonValue, TypeAdapter

from models import SagaEvent, now_ns
from runtime.logs import get_logger
from saga.core import Context, Saga, SagaError, Timer
from saga.log import LeaseLostError, SagaLog
from saga.outbox import Outbox
from saga.snapshot import Ended, Snapshot, SnapshotStore

log = get_logger("paceline.saga")

S = TypeVar("S", bound=Saga)


class Orchestrator(Generic[S]):
    def __init__(self, log: SagaLog, outbox: Outbox, factory: type[S]) -> None:
        self.log = log
        self.outbox = outbox
        self.factory = factory
        self.sagas: dict[str, S] = {}
        self.ended: dict[str, Ended] = {}  # sagas pruned from memory once ended, by id
        self.position = 0  # the last log position appended or replayed
        self.snapshot_position = 0  # the position of the snapshot taken or restored last
        self.broken: str | None = None
        self.on_commit: Callable[[list[SagaEvent]], None] | None = None
        # Called with each event as a handler emits it, before the transaction ends and long before the
        # append: what its owner may tell ahead of the storage write, because the inputs that decided it are
        # stored and would decide it again. A handler that raises after an emit appends nothing and its input
        # is redelivered: decided again, to the same event (its id is the saga's sequence), as after a crash.
        self.on_decided: Callable[[SagaEvent], None] | None = None
        # Called with each saga a transaction changed, as it ends: its owner keeps indexes of the sagas'
        # state (a worker's load) without scanning them all for every decision.
        self.on_changed: Callable[[S], None] | None = None
        self._state: TypeAdapter[Any] = TypeAdapter(factory)
        self._pending: list[SagaEvent] | None = None  # a group's events, committed when it ends

    def recover(self, snapshots: SnapshotStore | None = None) -> tuple[int, int]:
        """Rebuild every saga (from the latest snapshot and the log's tail after it, or from the whole log)
        and publish what was decided but not sent.

        Returns (events replayed, effects re-sent)."""
        snap = snapshots.latest() if snapshots is not None else None
        events = self.log.replay(after=snap.log_id) if snap is not None else self.log.replay()
        if snap is not None and events and events[0].position > snap.position + 1:
            log.error("the log's tail does not follow the snapshot; replaying the whole log",
                      snapshot=snap.position, first=events[0].position)  # fmt: skip
            snap, events = None, self.log.replay()
        if snap is not None:
            self._restore(snap)
        for ev in events:
            if ev.position <= self.position:
                continue
            saga = self.sagas.get(ev.saga_id)
            if saga is None:
                if ev.saga_id in self.ended:
                    raise SagaError(f"{ev.saga_id}: an event after the saga ended (position {ev.position})")
                saga = self.sagas[ev.saga_id] = self.factory(ev.saga_id)
            saga.apply(ev)
            self.position = ev.position
        return len(events), self.outbox.resume(events)

    # --- memory and snapshots ---------------------------------------------------------------------------
    def known(self, saga_id: str) -> bool:
        """Whether ``saga_id`` ever started (it runs, or it ended and its record is kept)."""
        return saga_id in self.sagas or saga_id in self.ended

    def prune(self, keep_ns: int, now: int | None = None) -> int:
        """Move ended sagas out of memory, keeping their record (``Ended``), and forget records older than
        ``keep_ns`` (by then no input about them can be redelivered). Returns how many sagas left."""
        now = now_ns() if now is None else now
        gone = [s for s in self.sagas.values() if s.terminal]
        for s in gone:
            del self.sagas[s.saga_id]
            self.ended[s.saga_id] = Ended(s.status, now, s.ended_facts())
        old = [k for k, e in self.ended.items() if now - e.ended_ns > keep_ns]
        for k in old:
            del self.ended[k]
        return len(gone)

    def dump(self, saga: S) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = self._state.dump_python(saga, mode="json")
        return data

    def load(self, data: dict[str, JsonValue]) -> S:
        saga: S = self._state.validate_python(data)
        return saga

    def snapshot(self, store: SnapshotStore) -> Snapshot | None:
        """Write the state at the current position (None if it cannot be named yet: nothing appended or
        replayed, or the outbox has a failure). Waits for the outbox's receipts first: a successor replays
        from the snapshot on, and re-sends only effects from there."""
        self.check()
        self.outbox.flush()
        self.check()
        log_id = self.log.last_id
        if log_id is None:
            return None
        snap = Snapshot(position=self.position, log_id=log_id, ended=dict(self.ended), taken_ns=now_ns(),
                        sagas=[self.dump(s) for s in self.sagas.values()])  # fmt: skip
        store.save(snap)
        self.snapshot_position = self.position
        return snap

    def _restore(self, snap: Snapshot) -> None:
        self.sagas = {}
        for data in snap.sagas:
            saga = self.load(data)
            self.sagas[saga.saga_id] = saga
        self.ended = dict(snap.ended)
        self.position = self.snapshot_position = snap.position

    def check(self) -> None:
        """Raise ``LeaseLostError`` if this orchestrator may not go on: an append or a publish failed."""
        if self.broken is None and (failure := self.outbox.failure()) is not None:
            self.broken = failure
        if self.broken is not None:
            raise LeaseLostError(self.broken)

    @contextmanager
    def transaction(self, saga_id: str, *, create: bool = False) -> Iterator[Context[S] | None]:
        """A context for ``saga_id`` (None if it does not exist and ``create`` is false)."""
        self.check()
        saga = self.sagas.get(saga_id)
        new = saga is None
        if saga is None:
            if not create or saga_id in self.ended:  # an ended saga never starts again
                yield None
                return
            saga = self.factory(saga_id)
        snapshot = None if new else saga.copy()  # a new saga that raises is dropped: nothing to restore
        ctx: Context[S] = Context(saga, next_position=self.position + 1, on_emit=self.on_decided)
        try:
            yield ctx
        except BaseException:
            if snapshot is not None:
                self.sagas[saga_id] = snapshot  # nothing appended: the saga is as it was
            raise
        if not ctx.events:
            return
        if new:
            self.sagas[saga_id] = saga
        if self.on_changed is not None:
            self.on_changed(saga)
        if self._pending is not None:  # committed with the group
            self._pending += ctx.events
            self.position += len(ctx.events)
            return
        self._commit(ctx.events, advance=len(ctx.events))

    @contextmanager
    def group(self) -> Iterator[None]:
        """Transactions inside commit together when it ends: one append, then their effects. Nested, it
        joins the group already open. If the body raises past a transaction, what the group decided is in
        memory and not in the log: the orchestrator refuses further work (its owner rebuilds from the log)."""
        if self._pending is not None:
            yield
            return
        self._pending = []
        try:
            yield
        except BaseException:
            if self._pending:
                self.broken = "a group of transactions was cut short before its commit"
            raise
        finally:
            events, self._pending = self._pending, None
        if events:
            self._commit(events, advance=0)  # the group's transactions advanced the position already

    def _commit(self, events: list[SagaEvent], *, advance: int) -> None:
        try:
            self.log.append(events)
        except LeaseLostError as exc:
            self.broken = str(exc)
            raise
        self.position += advance
        if self.on_commit is not None:
            self.on_commit(events)
        try:
            self.outbox.publish(events)
        except LeaseLostError as exc:
            self.broken = str(exc)
            raise

    def due(self, clock: Callable[[str], int | None]) -> list[tuple[S, Timer]]:
        """Timers whose clock has reached their deadline (a clock that is unknown yet never fires)."""
        out: list[tuple[S, Timer]] = []
        read: dict[str, int | None] = {}  # each clock read once per call: thousands of timers share a few
        for saga in self.sagas.values():
            for t in saga.timers.values():
                if t.clock not in read:
                    read[t.clock] = clock(t.clock)
                now = read[t.clock]
                if now is not None and now >= t.deadline_ns:
                    out.append((saga, t))
        return out

    def live(self) -> list[S]:
        return [s for s in self.sagas.values() if not s.terminal]


__all__ = ["LeaseLostError", "Orchestrator", "SagaError"]
