"""A job's child-order actions from two copies, handed on once each and in the worker's order.

With ``PACELINE_LIVE_ACTIONS=non-persistent`` a worker sends each action to the job's actions topic (the
record) and then to its non-persistent twin, both stamped with the action's number in its (job, epoch)
stream (the record producer's sequence id, property ``topics.ACTION_SEQ``). The twin's copy usually
arrives first (no storage write before dispatch), but the broker may drop one (a slow reader, a broker
restart), and a stored copy may be dispatched after a later twin one. The venue must see a job's actions
in order (a cancel before the order it cancels would be refused, and the order then left resting), so a
copy is handed on only when it is the next one; a twin copy from further ahead waits for the gap to be
filled from either stream. The record is complete and in order, so every gap is filled, and it alone sets
where a stream stands when nothing is known of it yet (after a restart, the cursor's redeliveries).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

from models import ChildOrderAction, topics

HOLD_MAX: Final = 256  # twin copies held per stream; past it, the newest are let go (the record has them)

COPIES = Counter(
    "paceline_endpoint_action_copies_total",
    "Child-order action copies by stream (record, twin) and fate (handled, duplicate, held, let go; a "
    "held twin copy handed on once the gap before it is filled: released)",
    ["copy", "fate"],
)


def seq_of(properties: dict[str, str] | None) -> int | None:
    """The action's number from its message properties; None where the worker stamped none (no twin)."""
    raw = None if properties is None else properties.get(topics.ACTION_SEQ)
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


class ActionOrder:
    """``offer`` returns the actions to hand on now, in order: none, this one, or this one and the held
    ones it unblocks. Not thread-safe: the caller offers and hands on under one lock."""

    def __init__(self, hold_max: int = HOLD_MAX) -> None:
        self._next: dict[tuple[str, int], int] = {}
        self._held: dict[tuple[str, int], dict[int, ChildOrderAction]] = {}
        self.hold_max = hold_max

    def offer(self, a: ChildOrderAction, seq: int, *, record: bool) -> list[ChildOrderAction]:
        copy = "record" if record else "twin"
        key = (a.job_id, a.epoch)
        nxt = self._next.get(key)
        if nxt is None and (record or seq == 1):
            nxt = seq  # the record starts where its cursor stands; a twin only at a stream's first action
        if nxt is not None and seq < nxt:
            COPIES.labels(copy, "duplicate").inc()
            return []
        if nxt is None or seq > nxt:
            if not record:
                held = self._held.setdefault(key, {})
                fate = "held" if len(held) < self.hold_max else "let_go"
                if fate == "held":
                    held[seq] = a
                COPIES.labels(copy, fate).inc()
                return []
            nxt = seq  # the record skips nothing the broker stored: a gap is re-sends it dropped
        out = [a]
        nxt = seq + 1
        waiting = self._held.get(key)
        if waiting:
            while nxt in waiting:
                out.append(waiting.pop(nxt))
                nxt += 1
            COPIES.labels("twin", "released").inc(len(out) - 1)
            for s in [s for s in waiting if s < nxt]:
                del waiting[s]
            if not waiting:
                del self._held[key]
        self._next[key] = nxt
        COPIES.labels(copy, "handled").inc()
        return out

    def forget(self, job_id: str) -> None:
        """A closed job's streams: nothing more comes for them."""
        for key in [k for k in self._next if k[0] == job_id]:
            del self._next[key]
        for key in [k for k in self._held if k[0] == job_id]:
            del self._held[key]
