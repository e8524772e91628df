"""What the services rely on beyond a message round trip, on both transports: the exclusive producer that
is the saga log's lease and its fencing, redelivery after a negative acknowledgement, and a subscription
that keeps what its closed consumer did not acknowledge."""

from __future__ import annotations

import pytest

from models import Tick, topics
from runtime.bus import Bus, BusError, ProducerBusyError
from tests.factories import tick


def test_one_exclusive_producer_and_fencing_takes_the_topic(bus: Bus, unique: str) -> None:
    topic = topics.ticks(f"X{unique[:6].upper()}")
    holder = bus.producer(topic, name=f"lease-{unique}", exclusive=True)
    holder.send(tick(seq=0))
    with pytest.raises(ProducerBusyError):
        bus.producer(topic, name=f"other-{unique}", exclusive=True)
    taker = bus.producer(topic, name=f"taker-{unique}", exclusive=True, fence=True)
    taker.send(tick(seq=1))
    with pytest.raises(BusError):  # the fenced holder's next send is refused
        holder.send(tick(seq=2))
    assert [d.message.seq for d in bus.read_all(topic, Tick)] == [0, 1]
    taker.close()
    holder.close()


def test_a_negative_acknowledgement_redelivers_and_a_closed_consumer_leaves_its_backlog(
    bus: Bus, unique: str
) -> None:
    topic = topics.ticks(f"N{unique[:6].upper()}")
    c = bus.subscribe(topic, f"s-{unique}", Tick)
    p = bus.producer(topic)
    for seq in range(3):
        p.send(tick(seq=seq))
    first = c.receive(timeout_ms=5000)
    assert first is not None and first.message.seq == 0 and first.redelivery_count == 0
    c.nack(first)
    again = [c.receive(timeout_ms=5000) for _ in range(3)]
    seqs = sorted(d.message.seq for d in again if d is not None)
    assert seqs == [0, 1, 2]
    for d in again:
        if d is not None and d.message.seq != 2:
            c.ack(d)
    c.close()  # seq 2 was received, never acknowledged: the subscription keeps it
    c2 = bus.subscribe(topic, f"s-{unique}", Tick)
    d = c2.receive(timeout_ms=5000)
    assert d is not None and d.message.seq == 2
    c2.ack(d)
    assert c2.receive(timeout_ms=500) is None
    c2.close()
    p.close()
