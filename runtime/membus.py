"""An in-memory broker behind the same ``Bus``: the raw client API that ``runtime.bus`` uses of
``pulsar.Client`` (producers, subscriptions, readers), implemented in process, so every typed layer above it
(codec, quarantine, handlers, metrics) is the one that runs against Pulsar.

What it keeps of Pulsar's contract, because the services rely on it:

- per topic, one order: every subscription and reader sees messages in publish order;
- keys, event times and properties travel with a message;
- de-duplication by producer name and sequence id (a re-send at or below the last stored is dropped) and
  ``last_sequence_id`` for a producer that comes back under the same name;
- exclusive producers (a second one is refused) and fencing (``ExclusiveWithFencing`` takes the topic and
  the old holder's next send fails): the saga log's lease;
- subscriptions that outlive their consumers (a durable cursor), initial position earliest or latest,
  exclusive / failover (one consumer takes all), shared (round robin) and key-shared (by key);
- acknowledgement, cumulative acknowledgement, negative acknowledgement and redelivery, unacknowledged
  messages redelivered when their consumer closes; seek by publish time or message id (a redelivery
  count is kept, but nothing may rely on it: Pulsar's client reports 0 on an exclusive subscription);
- one listener thread per client: handlers of one client never run concurrently.

Not modelled: partitions, batching, backpressure, retention limits, authentication.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulsar

REDELIVERY_DELAY_S = 0.05  # after a negative acknowledgement (Pulsar's is configurable; ours is 1 s)


class ProducerBusy(Exception):  # noqa: N818 - the name Bus recognises, as Pulsar's
    """An exclusive producer holds the topic."""


class ProducerFenced(Exception):  # noqa: N818
    """This exclusive producer was fenced out by another."""


class ConsumerBusy(Exception):  # noqa: N818
    """An exclusive subscription already has its consumer."""


@dataclass(frozen=True, order=True)
class MemoryMessageId:
    topic: str
    index: int

    def __str__(self) -> str:
        return f"({self.topic.rsplit('/', 1)[-1]},{self.index})"


@dataclass
class _Stored:
    index: int
    topic: str
    payload: bytes
    key: str
    properties: dict[str, str]
    event_ms: int
    publish_ms: int


class MemoryMessage:
    """What a consumer or reader gets: the stored message and how often it was delivered before."""

    def __init__(self, stored: _Stored, redelivery_count: int = 0) -> None:
        self._s = stored
        self._redelivery = redelivery_count

    def data(self) -> bytes:
        return self._s.payload

    def message_id(self) -> MemoryMessageId:
        return MemoryMessageId(self._s.topic, self._s.index)

    def topic_name(self) -> str:
        return self._s.topic

    def partition_key(self) -> str:
        return self._s.key

    def publish_timestamp(self) -> int:
        return self._s.publish_ms

    def event_timestamp(self) -> int:
        return self._s.event_ms

    def redelivery_count(self) -> int:
        return self._redelivery

    def properties(self) -> dict[str, str]:
        return dict(self._s.properties)


@dataclass
class _Topic:
    name: str
    messages: list[_Stored] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)  # producer name -> last sequence id stored
    exclusive: MemoryProducer | None = None
    shared_producers: int = 0
    subs: dict[str, _Subscription] = field(default_factory=dict)
    readers: list[MemoryReader] = field(default_factory=list)


@dataclass
class _Subscription:
    name: str
    kind: Any
    cursor: int  # the next index never dispatched
    consumers: list[MemoryConsumer] = field(default_factory=list)
    unacked: dict[int, int] = field(default_factory=dict)  # index -> deliveries so far
    waiting: deque[int] = field(default_factory=deque)  # redeliveries with no consumer to take them
    rr: itertools.count[int] = field(default_factory=itertools.count)


class MemoryBroker:
    """One broker shared by every ``MemoryClient`` made on it (as processes share one Pulsar)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.topics: dict[str, _Topic] = {}
        self._names = itertools.count(1)

    def topic(self, name: str) -> _Topic:
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = _Topic(name)
        return t

    def next_name(self) -> str:
        return f"memory-{next(self._names)}"

    # --- publishing and dispatch (callers hold the lock) ---------------------------------------------
    def store(
        self, t: _Topic, name: str, payload: bytes, *, key: str | None, seq: int | None, event_ms: int | None,
        properties: dict[str, str] | None,
    ) -> MemoryMessageId:  # fmt: skip
        last = t.last_seq.get(name, -1)
        seq = last + 1 if seq is None else seq
        if seq <= last:  # the broker's de-duplication: a re-send is acknowledged and dropped
            return MemoryMessageId(t.name, len(t.messages) - 1)
        t.last_seq[name] = seq
        now = time.time_ns() // 1_000_000
        s = _Stored(len(t.messages), t.name, payload, key or "", dict(properties or {}), event_ms or 0, now)
        t.messages.append(s)
        for sub in t.subs.values():
            self.dispatch(t, sub)
        for r in list(t.readers):
            r.notify()
        return MemoryMessageId(t.name, s.index)

    def dispatch(self, t: _Topic, sub: _Subscription) -> None:
        """Hand what was never dispatched (and waiting redeliveries) to the subscription's consumers."""
        if not sub.consumers:
            return
        while sub.waiting:
            self._deliver(t, sub, sub.waiting.popleft())
        while sub.cursor < len(t.messages):
            self._deliver(t, sub, sub.cursor)
            sub.cursor += 1

    def _deliver(self, t: _Topic, sub: _Subscription, index: int) -> None:
        s = t.messages[index]
        n = len(sub.consumers)
        if sub.kind == pulsar.ConsumerType.Shared:
            c = sub.consumers[next(sub.rr) % n]
        elif sub.kind == pulsar.ConsumerType.KeyShared:
            c = sub.consumers[hash(s.key) % n]
        else:  # exclusive, failover: the first consumer takes everything
            c = sub.consumers[0]
        count = sub.unacked.get(index)
        sub.unacked[index] = 0 if count is None else count + 1
        c.push(MemoryMessage(s, sub.unacked[index]))


class _Listener:
    """A client's one listener thread: callbacks run here, one at a time, in the order they were queued."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="memory-listener", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], None]) -> None:
        self._q.put(fn)

    def _run(self) -> None:
        while (fn := self._q.get()) is not None:
            try:
                fn()
            except Exception:  # a handler's error is the typed layer's to count; keep listening
                continue

    def stop(self) -> None:
        if threading.current_thread() is not self._thread:
            self._q.put(None)
            self._thread.join(timeout=5)


class MemoryProducer:
    def __init__(self, client: MemoryClient, topic: str, name: str | None, access_mode: Any) -> None:
        self._client, self._broker = client, client.broker
        self.topic = topic
        self._name = name or self._broker.next_name()
        self.closed = self.fenced = False
        self.exclusive = access_mode in (pulsar.ProducerAccessMode.Exclusive,
                                         pulsar.ProducerAccessMode.ExclusiveWithFencing)  # fmt: skip
        with self._broker.lock:
            t = self._broker.topic(topic)
            holder = t.exclusive
            if holder is not None and not holder.closed and not holder.fenced:
                if access_mode != pulsar.ProducerAccessMode.ExclusiveWithFencing:
                    raise ProducerBusy(f"{topic} has an exclusive producer")
                holder.fenced = True
            if self.exclusive:
                if t.shared_producers and access_mode == pulsar.ProducerAccessMode.Exclusive:
                    raise ProducerBusy(f"{topic} has producers: no exclusive one")
                t.exclusive = self
            else:
                t.shared_producers += 1

    def producer_name(self) -> str:
        return self._name

    def last_sequence_id(self) -> int:
        with self._broker.lock:
            return self._broker.topic(self.topic).last_seq.get(self._name, -1)

    def send(
        self, payload: bytes, partition_key: str | None = None, sequence_id: int | None = None,
        event_timestamp: int | None = None, properties: dict[str, str] | None = None, **_: Any,
    ) -> MemoryMessageId:  # fmt: skip
        with self._broker.lock:
            if self.fenced:
                raise ProducerFenced(f"{self.topic}: fenced out by another exclusive producer")
            if self.closed:
                raise pulsar.AlreadyClosed(f"{self.topic}: producer closed")
            t = self._broker.topic(self.topic)
            return self._broker.store(t, self._name, payload, key=partition_key, seq=sequence_id,
                                      event_ms=event_timestamp, properties=properties)  # fmt: skip

    def send_async(
        self, payload: bytes, callback: Callable[[Any, Any], None], *,
        properties: dict[str, str] | None = None, partition_key: str | None = None,
        sequence_id: int | None = None, event_timestamp: int | None = None,
    ) -> None:  # fmt: skip
        try:
            msg_id = self.send(payload, partition_key, sequence_id, event_timestamp, properties)
        except Exception:
            callback(pulsar.Result.ProducerFenced if self.fenced else pulsar.Result.AlreadyClosed, None)
            return
        callback(pulsar.Result.Ok, msg_id)

    def flush(self) -> None:
        """Every send is stored when it returns."""

    def close(self) -> None:
        with self._broker.lock:
            if self.closed:
                return
            self.closed = True
            t = self._broker.topic(self.topic)
            if t.exclusive is self:
                t.exclusive = None
            elif not self.exclusive:
                t.shared_producers -= 1


class MemoryConsumer:
    def __init__(
        self, client: MemoryClient, topic: str, subscription: str, *, consumer_type: Any,
        initial_position: Any, message_listener: Callable[[Any, Any], None] | None,
    ) -> None:  # fmt: skip
        self._client, self._broker = client, client.broker
        self.topic, self.subscription = topic, subscription
        self._listener = message_listener
        self._queue: deque[MemoryMessage] = deque()
        self._cond = threading.Condition()
        self.closed = False
        with self._broker.lock:
            t = self._broker.topic(topic)
            sub = t.subs.get(subscription)
            if sub is None:
                start = 0 if initial_position == pulsar.InitialPosition.Earliest else len(t.messages)
                sub = t.subs[subscription] = _Subscription(subscription, consumer_type, start)
            exclusive = (pulsar.ConsumerType.Exclusive,)
            if sub.consumers and (consumer_type in exclusive or sub.kind in exclusive):
                raise ConsumerBusy(f"{topic}: subscription {subscription!r} has its exclusive consumer")
            sub.kind = consumer_type
            sub.consumers.append(self)
            # What the subscription holds undelivered (or delivered to a consumer gone) is for us now.
            if len(sub.consumers) == 1:
                sub.waiting.extend(sorted(i for i in sub.unacked if i not in sub.waiting))
            self._broker.dispatch(t, sub)

    def push(self, m: MemoryMessage) -> None:
        if self._listener is not None:
            listener = self._listener
            self._client.listener.call(lambda: None if self.closed else listener(self, m))
            return
        with self._cond:
            self._queue.append(m)
            self._cond.notify()

    def receive(self, timeout_millis: int | None = None) -> MemoryMessage:
        deadline = None if timeout_millis is None else time.monotonic() + timeout_millis / 1000
        with self._cond:
            while not self._queue:
                if self.closed:
                    raise pulsar.AlreadyClosed("consumer closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise pulsar.Timeout("no message")
                self._cond.wait(left)
            return self._queue.popleft()

    def _sub(self) -> _Subscription | None:
        return self._broker.topic(self.topic).subs.get(self.subscription)

    @staticmethod
    def _index(m: Any) -> int:
        mid = m.message_id() if isinstance(m, MemoryMessage) else m
        return int(mid.index)

    def acknowledge(self, m: Any) -> None:
        with self._broker.lock:
            sub = self._sub()
            if sub is not None:
                sub.unacked.pop(self._index(m), None)

    def acknowledge_cumulative(self, m: Any) -> None:
        upto = self._index(m)
        with self._broker.lock:
            sub = self._sub()
            if sub is not None:
                for i in [i for i in sub.unacked if i <= upto]:
                    del sub.unacked[i]

    def negative_acknowledge(self, m: Any) -> None:
        index = self._index(m)

        def redeliver() -> None:
            with self._broker.lock:
                sub = self._sub()
                if sub is None or index not in sub.unacked:
                    return
                t = self._broker.topic(self.topic)
                if sub.consumers:
                    self._broker._deliver(t, sub, index)
                else:
                    sub.waiting.append(index)

        timer = threading.Timer(REDELIVERY_DELAY_S, redeliver)
        timer.daemon = True
        timer.start()

    def seek(self, position: Any) -> None:
        """To a message id, or to the first message published at or after ``position`` ms."""
        with self._broker.lock:
            t = self._broker.topic(self.topic)
            sub = self._sub()
            if sub is None:
                return
            if isinstance(position, MemoryMessageId):
                start = position.index
            else:
                start = next((s.index for s in t.messages if s.publish_ms >= int(position)), len(t.messages))
            with self._cond:
                self._queue.clear()
            sub.unacked.clear()
            sub.waiting.clear()
            sub.cursor = start
            self._broker.dispatch(t, sub)

    def _detach(self) -> None:
        sub = self._sub()
        if sub is None or self not in sub.consumers:
            return
        sub.consumers.remove(self)
        # What this consumer had unacknowledged goes to the others (or waits for the next consumer).
        if sub.consumers:
            t = self._broker.topic(self.topic)
            for i in sorted(sub.unacked):
                self._broker._deliver(t, sub, i)

    def close(self) -> None:
        with self._broker.lock:
            if self.closed:
                return
            self.closed = True
            self._detach()
        with self._cond:
            self._cond.notify_all()

    def unsubscribe(self) -> None:
        with self._broker.lock:
            self.closed = True
            self._broker.topic(self.topic).subs.pop(self.subscription, None)


class MemoryReader:
    def __init__(
        self, client: MemoryClient, topic: str, start: Any, listener: Callable[[Any, Any], None] | None,
        inclusive: bool = False,
    ) -> None:  # fmt: skip
        self._client, self._broker = client, client.broker
        self.topic = topic
        self._listener = listener
        self._cond = threading.Condition()
        self.closed = False
        with self._broker.lock:
            t = self._broker.topic(topic)
            if isinstance(start, MemoryMessageId):
                self.pos = start.index + (0 if inclusive else 1)
            elif str(start) == str(pulsar.MessageId.earliest):
                self.pos = 0
            else:  # latest: the last message itself when inclusive, as Pulsar's reader
                self.pos = max(0, len(t.messages) - 1) if inclusive else len(t.messages)
            t.readers.append(self)

    def notify(self) -> None:
        """Called under the broker's lock when a message is stored."""
        listener = self._listener
        if listener is not None:
            t = self._broker.topic(self.topic)
            while self.pos < len(t.messages):
                m = MemoryMessage(t.messages[self.pos])
                self.pos += 1
                self._client.listener.call(self._call(listener, m))
            return
        with self._cond:
            self._cond.notify_all()

    def _call(self, listener: Callable[[Any, Any], None], m: MemoryMessage) -> Callable[[], None]:
        def call() -> None:
            if not self.closed:
                listener(self, m)

        return call

    def has_message_available(self) -> bool:
        with self._broker.lock:
            return self.pos < len(self._broker.topic(self.topic).messages)

    def seek(self, position: Any) -> None:
        """To a message id, or to the first message published at or after ``position`` ms."""
        with self._broker.lock:
            msgs = self._broker.topic(self.topic).messages
            if isinstance(position, MemoryMessageId):
                self.pos = position.index
            else:
                self.pos = next((m.index for m in msgs if m.publish_ms >= int(position)), len(msgs))

    def read_next(self, timeout_millis: int | None = None) -> MemoryMessage:
        deadline = None if timeout_millis is None else time.monotonic() + timeout_millis / 1000
        while True:
            with self._broker.lock:
                msgs = self._broker.topic(self.topic).messages
                if self.pos < len(msgs):
                    self.pos += 1
                    return MemoryMessage(msgs[self.pos - 1])
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise pulsar.Timeout("no message")
            with self._cond:
                self._cond.wait(0.05 if left is None else min(left, 0.05))

    def close(self) -> None:
        with self._broker.lock:
            self.closed = True
            t = self._broker.topic(self.topic)
            if self in t.readers:
                t.readers.remove(self)


class MemoryClient:
    """The ``pulsar.Client`` surface ``runtime.bus.Bus`` uses, on a ``MemoryBroker``."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.listener = _Listener()
        self._open: list[MemoryProducer | MemoryConsumer | MemoryReader] = []

    def create_producer(
        self, topic: str, producer_name: str | None = None,
        access_mode: Any = pulsar.ProducerAccessMode.Shared, **_: Any,
    ) -> MemoryProducer:  # fmt: skip
        p = MemoryProducer(self, topic, producer_name, access_mode)
        self._open.append(p)
        return p

    def subscribe(
        self, topic: str, subscription_name: str, consumer_type: Any = pulsar.ConsumerType.Exclusive,
        initial_position: Any = pulsar.InitialPosition.Latest,
        message_listener: Callable[[Any, Any], None] | None = None, **_: Any,
    ) -> MemoryConsumer:  # fmt: skip
        c = MemoryConsumer(self, topic, subscription_name, consumer_type=consumer_type,
                           initial_position=initial_position, message_listener=message_listener)  # fmt: skip
        self._open.append(c)
        return c

    def create_reader(
        self, topic: str, start_message_id: Any, reader_listener: Callable[[Any, Any], None] | None = None,
        start_message_id_inclusive: bool = False, **_: Any,
    ) -> MemoryReader:  # fmt: skip
        r = MemoryReader(self, topic, start_message_id, reader_listener, start_message_id_inclusive)
        self._open.append(r)
        return r

    def close(self) -> None:
        for x in self._open:
            x.close()
        self._open.clear()
        self.listener.stop()
