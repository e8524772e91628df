"""The bus contract, on both transports (the in-memory broker and a real Apache Pulsar standalone)."""

from __future__ import annotations

import gc
import time
import weakref

import pulsar
import pytest

from models import ParentOrder, Tick, encode, topics
from runtime import metrics
from runtime.bus import Bus, Profile, stream_of
from tests.factories import parent, tick


def _drain(consumer, n: int, timeout_ms: int = 10_000):  # type: ignore[no-untyped-def]
    out = []
    while len(out) < n:
        d = consumer.receive(timeout_ms=timeout_ms)
        if d is None:
            break
        out.append(d)
        consumer.ack(d)
    return out


def test_typed_round_trip_on_a_per_equity_topic(bus: Bus, unique: str) -> None:
    symbol = f"T{unique[:6].upper()}"
    topic = topics.ticks(symbol)
    consumer = bus.subscribe(topic, f"rt-{unique}", Tick)
    producer = bus.producer(topic, name=f"rt-{unique}")
    sent = tick(symbol=symbol, seq=42, trade_px=100.01, trade_sz=200)
    producer.send(sent, key=symbol, sequence_id=42, event_time_ns=sent.ts_event)
    [got] = _drain(consumer, 1)
    assert got.message == sent
    assert got.key == symbol
    assert got.event_time_ms == sent.ts_event // 1_000_000
    assert got.topic == topic


def test_order_is_kept_per_symbol(bus: Bus, unique: str) -> None:
    syms = [f"A{unique[:5].upper()}", f"B{unique[:5].upper()}"]
    consumers = {s: bus.subscribe(topics.ticks(s), f"ord-{unique}", Tick) for s in syms}
    producers = {
        s: bus.producer(topics.ticks(s), name=f"ord-{unique}-{s}", profile=Profile.BULK) for s in syms
    }
    n = 500
    for i in range(n):
        for s in syms:  # interleaved, asynchronous, batched: the worst case for ordering
            producers[s].send_async(tick(symbol=s, seq=i), key=s, sequence_id=i)
    for p in producers.values():
        p.flush()
    for s in syms:
        seqs = [d.message.seq for d in _drain(consumers[s], n)]
        assert seqs == list(range(n)), f"{s} out of order or incomplete"
        assert all(d == s for d in {s})


def test_resend_with_same_producer_and_sequence_is_stored_once(bus: Bus, unique: str) -> None:
    symbol = f"D{unique[:6].upper()}"
    topic = topics.ticks(symbol)
    name = f"dedup-{unique}"
    consumer = bus.subscribe(topic, f"dd-{unique}", Tick)
    p = bus.producer(topic, name=name)
    for seq in range(3):
        p.send(tick(symbol=symbol, seq=seq), sequence_id=seq)
    p.send(tick(symbol=symbol, seq=1), sequence_id=1)  # a retry after a lost ack
    p.close()
    # A restarted process re-creates the producer under the same name and re-sends from its checkpoint.
    p2 = bus.producer(topic, name=name)
    assert p2.last_sequence_id == 2
    for seq in (2, 3):
        p2.send(tick(symbol=symbol, seq=seq), sequence_id=seq)
    got = [d.message.seq for d in _drain(consumer, 10, timeout_ms=3000)]
    assert got == [0, 1, 2, 3]


def test_garbage_is_rejected_counted_quarantined_and_the_consumer_goes_on(bus: Bus, unique: str) -> None:
    symbol = f"G{unique[:6].upper()}"
    topic = topics.ticks(symbol)
    sub = f"g-{unique}"
    consumer = bus.subscribe(topic, sub, Tick)
    dlq = bus.subscribe(topics.dead_letter(topic, sub), f"dlq-{unique}", Tick)  # typed: would reject too
    raw = bus.raw_producer(topic, name=f"g-{unique}")
    before = {
        r: metrics.BUS_REJECTED.labels(stream_of(topic), r)._value.get()
        for r in ("malformed", "invalid", "wrong_type")
    }
    raw.send_bytes(b"\x00\x01garbage\xff")
    raw.send_bytes(encode(tick(symbol=symbol)).replace(b'"bid_px":100.0', b'"bid_px":-3'))
    raw.send_bytes(encode(parent()))
    bus.producer(topic, name=f"ok-{unique}").send(tick(symbol=symbol, seq=9))
    got = _drain(consumer, 1)
    assert [d.message.seq for d in got] == [9]
    after = {r: metrics.BUS_REJECTED.labels(stream_of(topic), r)._value.get() for r in before}
    assert after["malformed"] - before["malformed"] == 1
    assert (after["invalid"] + after["wrong_type"]) - (before["invalid"] + before["wrong_type"]) == 2
    # The raw payloads are kept, with their reasons, on the dead-letter topic.
    reader = bus._client.subscribe(
        topics.dead_letter(topic, sub), f"dlq-raw-{unique}", initial_position=pulsar.InitialPosition.Earliest
    )
    quarantined = [reader.receive(5000) for _ in range(3)]
    assert quarantined[0].data() == b"\x00\x01garbage\xff"
    assert quarantined[0].properties()["reason"] == "malformed"
    assert {m.properties()["origin_topic"] for m in quarantined} == {topic}
    dlq.close()


def test_wrong_type_on_a_topic_is_rejected(bus: Bus, unique: str) -> None:
    topic = topics.job_actions(f"J{unique.upper()}")
    consumer = bus.subscribe(topic, f"w-{unique}", ParentOrder)
    bus.producer(topic).send(tick())
    bus.producer(topic).send(parent(parent_id=f"P{unique}"))
    [d] = _drain(consumer, 1)
    assert d.message.parent_id == f"P{unique}"


def test_read_all_passes_over_what_was_published_before_a_time(bus: Bus, unique: str) -> None:
    """What a restarted endpoint reads back of a symbol's ticks: from a publish time on, in order."""
    topic = topics.ticks(f"P{unique[:6].upper()}")
    producer = bus.producer(topic, name=f"pf-{unique}")
    for i in range(3):
        producer.send(tick(symbol=f"P{unique[:6].upper()}", seq=i + 1))
        time.sleep(0.02)
    every = bus.read_all(topic, Tick)
    assert [d.message.seq for d in every] == [1, 2, 3]
    since = every[1].publish_time_ms
    assert [d.message.seq for d in bus.read_all(topic, Tick, published_from_ms=since)] == [2, 3]
    assert bus.read_all(topic, Tick, published_from_ms=every[2].publish_time_ms + 10_000) == []


def test_read_all_from_a_time_seeks_past_a_long_history(
    bus: Bus, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeks_past_a_long_history(bus, f"S{unique[:6].upper()}", monkeypatch)


def seeks_past_a_long_history(bus: Bus, sym: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``seek_after`` messages published too early, the reader seeks by time (a week of a busy
    symbol's executions is not read at a restart), and reads what follows once each, to the topic's end.
    On the in-memory broker too (tests/unit/test_bus_read.py)."""
    topic = topics.ticks(sym)
    producer = bus.producer(topic, name=f"sk-{sym}")
    for i in range(30):
        producer.send(tick(symbol=sym, seq=i + 1))
    time.sleep(0.05)
    since = int(time.time() * 1000)
    for i in range(30, 40):
        producer.send(tick(symbol=sym, seq=i + 1))
    seeks: list[int] = []
    seek_rest = Bus._seek_rest

    def counted(self: Bus, *args: object) -> object:
        seeks.append(1)
        return seek_rest(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Bus, "_seek_rest", counted)
    got = bus.read_all(topic, Tick, published_from_ms=since, seek_after=5)
    assert [d.message.seq for d in got] == list(range(31, 41)) and seeks == [1]
    assert bus.read_all(topic, Tick, published_from_ms=since + 60_000, seek_after=5) == [] and len(seeks) == 2
    every = bus.read_all(topic, Tick, published_from_ms=0, seek_after=5)
    assert [d.message.seq for d in every] == list(range(1, 41)) and len(seeks) == 2  # nothing passed over
    assert bus.read_all(topic, Tick, published_from_ms=since, seek_after=None) == got and len(seeks) == 2


def test_a_closed_consumer_with_a_handler_is_freed(bus: Bus, unique: str) -> None:
    """Its native consumer holds the listener, the listener the wrapper, the wrapper the native consumer: a
    cycle through C++ the collector cannot see unless ``close`` cuts it (a service that opens and closes a
    subscription per job would keep every one: the endpoint grew 31 % over a desk's day)."""
    topic = topics.ticks(f"G{unique[:6].upper()}")
    got: list[int] = []
    consumer = bus.subscribe(topic, f"gc-{unique}", Tick, handler=lambda d: got.append(d.message.seq))
    producer = bus.producer(topic)
    producer.send(tick(symbol=topic.rsplit(".", 1)[-1], seq=7))
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == [7]  # the listener ran, so it has reached the wrapper
    producer.close()
    consumer.unsubscribe()
    ref = weakref.ref(consumer)
    del consumer
    gc.collect()
    assert ref() is None
