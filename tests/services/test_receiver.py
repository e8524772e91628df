"""The Receiver on the bus (both transports)."""

from __future__ import annotations

import uuid

from models import Tick, topics
from receiver.service import Receiver
from receiver.sources import Malformed, synthetic
from runtime.bus import Bus

SHORT = 9 * 3600 + 31 * 60  # one minute of session


def _symbols() -> list[str]:
    tag = uuid.uuid4().hex[:5].upper()
    return [f"R{tag}A", f"R{tag}B"]


def _consume(bus: Bus, symbol: str, n: int, sub: str) -> list[Tick]:
    c = bus.subscribe(topics.ticks(symbol), sub, Tick)
    out = []
    while len(out) < n and (d := c.receive(timeout_ms=10_000)) is not None:
        out.append(d.message)
        c.ack(d)
    c.close()
    return out


def test_ticks_of_two_symbols_arrive_complete_and_in_order(bus: Bus) -> None:
    syms = _symbols()
    source = [t for t in synthetic(syms, seed=9, depth=2, close_s=SHORT) if not isinstance(t, Malformed)]
    rx = Receiver(bus, name="it", speed=None)
    stats = rx.run(iter(source))
    rx.close()
    assert stats.published == stats.ticks_in == len(source) and stats.failed == 0
    for s in syms:
        expected = [t for t in source if t.symbol == s]
        got = _consume(bus, s, len(expected), "check")
        assert [t.seq for t in got] == [t.seq for t in expected]
        # The content is the source's, with ts_init stamped at publication.
        assert [t.model_copy(update={"ts_init": 0}) for t in got] == [
            t.model_copy(update={"ts_init": 0}) for t in expected
        ]
        assert all(g.ts_init > g.ts_event for g in got)


def test_a_restarted_receiver_does_not_publish_twice(bus: Bus) -> None:
    syms = _symbols()
    source = list(synthetic(syms, seed=3, depth=0, close_s=SHORT))
    first = Receiver(bus, name="restart", speed=None)
    first.run(iter(source[: len(source) // 2]))
    first.close()
    again = Receiver(bus, name="restart", speed=None)  # replays from the start, as after a crash
    again.run(iter(source))
    again.close()
    for s in syms:
        expected = [t.seq for t in source if isinstance(t, Tick) and t.symbol == s]
        got = [t.seq for t in _consume(bus, s, len(expected) + 10, "once")]
        assert got == expected


def test_seek_by_event_time_lands_on_the_right_tick(bus: Bus) -> None:
    [sym, _] = _symbols()
    source = [t for t in synthetic([sym], seed=5, depth=0, close_s=SHORT) if isinstance(t, Tick)]
    rx = Receiver(bus, name="seek", speed=None)
    rx.run(iter(source))
    rx.close()
    consumer = bus.subscribe(topics.ticks(sym), "seeker", Tick)
    for target in (source[len(source) // 3], source[-5], source[0]):
        consumer.seek_event_time(target.ts_event)
        d = consumer.receive(timeout_ms=10_000)
        assert d is not None
        first_at_or_after = next(t for t in source if t.ts_event >= target.ts_event)
        assert d.message.seq == first_at_or_after.seq
    consumer.close()


def test_a_flush_that_times_out_is_logged_and_the_others_still_flush() -> None:
    """A broker too slow to acknowledge within the send timeout (a restart under load) must not end the
    feed's thread: the failed symbol is counted, the other symbols are still flushed, and ``run`` returns."""
    from receiver import metrics
    from runtime.bus import BusError
    from runtime.membus import MemoryBroker

    bus = Bus.memory(MemoryBroker())
    syms = _symbols()
    source = [t for t in synthetic(syms, seed=4, depth=0, close_s=SHORT) if not isinstance(t, Malformed)]
    rx = Receiver(bus, name="slow", speed=None)
    flushed: list[str] = []
    for s in syms:
        out = rx.prepare(s)

        def flush(s: str = s) -> None:
            if s == syms[0]:
                raise BusError("flush timed out")
            flushed.append(s)

        out.producer.flush = flush  # type: ignore[method-assign]
    before = metrics.FLUSH_FAILED._value.get()
    stats = rx.run(iter(source))
    assert stats.published == len(source)  # nothing was lost: only the wait for it failed
    assert flushed == [syms[1]]
    assert metrics.FLUSH_FAILED._value.get() == before + 1
    assert rx.flush() is False
    bus.close()


def test_the_live_twin_carries_the_records_ticks_and_only_when_asked(bus: Bus) -> None:
    syms, quiet = _symbols(), _symbols()
    # Subscribed before the first tick: a non-persistent topic keeps nothing for a later subscriber.
    twins = {s: bus.subscribe(topics.live_ticks(s), "live", Tick) for s in (*syms, *quiet)}
    source = [t for t in synthetic(syms, seed=4, depth=2, close_s=SHORT) if not isinstance(t, Malformed)]
    rx = Receiver(bus, name="live", speed=None, live=True)
    assert rx.run(iter(source)).published == len(source)
    rx.close()
    plain = Receiver(bus, name="plain", speed=None)
    plain.run(t for t in synthetic(quiet, seed=4, depth=0, close_s=SHORT) if not isinstance(t, Malformed))
    plain.close()
    for s in syms:
        n = sum(t.symbol == s for t in source)
        record = _consume(bus, s, n, "check")
        live = []
        while len(live) < n and (d := twins[s].receive(timeout_ms=10_000)) is not None:
            live.append(d.message)
        assert len(record) == n
        assert live == record  # the same ticks, in the same order, with the same ts_init stamp
    for s in quiet:  # without ``live``, nothing on the twins
        assert twins[s].receive(timeout_ms=300) is None
    for c in twins.values():
        c.close()
