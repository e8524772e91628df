"""The orchestrator: holds the live sagas, runs handlers as transactions, appends, then publishes.

One handler runs at a time (the caller serialises). A handler gets a ``Context``; whatever it emits is
applied to the saga at once, appended to the log when the handler returns, and only then published. If
the handler raises, the saga is restored as it was and nothing is appended. If the append fails the
orchestrator has lost its lease: it refuses further work and its owner must step down and, to serve
again, rebuild from the log.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from models import SagaEvent
from saga.core import Context, Saga, SagaError, Timer
from saga.log import LeaseLostError, SagaLog
from saga.outbox import Outbox

S = TypeVar("S", bound=Saga)


class Orchestrator(Generic[S]):
    def __init__(self, log: SagaLog, outbox: Outbox, factory: Callable[[str], S]) -> None:
        self.log = log
        self.outbox = outbox
        self.factory = factory
        self.sagas: dict[str, S] = {}
        self.position = 0  # the last log position appended or replayed
        self.broken: str | None = None
        self.on_commit: Callable[[list[SagaEvent]], None] | None = None

    def recover(self) -> tuple[int, int]:
        """Rebuild every saga from the log and publish what was decided but not sent.

        Returns (events replayed, effects re-sent)."""
        events = self.log.replay()
        for ev in events:
            if ev.position <= self.position:
                continue
            saga = self.sagas.get(ev.saga_id)
            if saga is None:
                saga = self.sagas[ev.saga_id] = self.factory(ev.saga_id)
            saga.apply(ev)
            self.position = ev.position
        return len(events), self.outbox.resume(events)

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
            if not create:
                yield None
                return
            saga = self.factory(saga_id)
        snapshot = copy.deepcopy(saga)
        ctx: Context[S] = Context(saga, next_position=self.position + 1)
        try:
            yield ctx
        except BaseException:
            if not new:
                self.sagas[saga_id] = snapshot  # nothing appended: the saga is as it was
            raise
        if not ctx.events:
            return
        if new:
            self.sagas[saga_id] = saga
        try:
            self.log.append(ctx.events)
        except LeaseLostError as exc:
            self.broken = str(exc)
            raise
        self.position += len(ctx.events)
        if self.on_commit is not None:
            self.on_commit(ctx.events)
        try:
            self.outbox.publish(ctx.events)
        except LeaseLostError as exc:
            self.broken = str(exc)
            raise

    def due(self, clock: Callable[[str], int | None]) -> list[tuple[S, Timer]]:
        """Timers whose clock has reached their deadline (a clock that is unknown yet never fires)."""
        out: list[tuple[S, Timer]] = []
        for saga in self.sagas.values():
            for t in saga.timers.values():
                now = clock(t.clock)
                if now is not None and now >= t.deadline_ns:
                    out.append((saga, t))
        return out

    def live(self) -> list[S]:
        return [s for s in self.sagas.values() if not s.terminal]


__all__ = ["LeaseLostError", "Orchestrator", "SagaError"]
