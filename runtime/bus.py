"""A thin typed layer over ``pulsar-client``.

- Producers send pydantic messages through the shared codec. A fixed ``producer_name`` plus an explicit
  ``sequence_id`` makes a re-send (after a crash or a timeout) a no-op at the broker's de-duplication.
- Consumers hand back decoded messages. A payload that does not decode is never fatal: it is counted
  (``paceline_bus_rejected_total``), copied with its reason to ``<topic>-<subscription>-DLQ`` and only then
  acknowledged, so bad input neither blocks the subscription nor disappears.
- Three profiles: LATENCY (no batching: every send is its own frame) for the tick -> decision -> order path,
  BULK (batching, 1 ms window) for logs and reports, GROUP (``Producer.send_together``: a group of messages
  stored as one entry, one write at the bookie, for the saga log's transactions).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, NamedTuple, TypeVar

import pulsar

from models import codec, topics
from models.common import Message
from runtime import auth, metrics

M = TypeVar("M", bound=Message)

_log = logging.getLogger("paceline.bus")


class Profile(Enum):
    LATENCY = "latency"
    BULK = "bulk"
    GROUP = "group"


# A GROUP producer's batch is closed by ``send_together``'s flush; the client's own timer only backs it up.
# Far above the microseconds between a group's sends, so the timer never splits a group in two.
GROUP_BACKSTOP_MS = 50
# A batch larger than this goes as more than one entry (still pipelined, one round trip). The client's
# default, 128 KB, split a group commit of 60 new orders; the broker refuses entries over 5 MB.
GROUP_MAX_BYTES = 1 << 20


def _event_ms(event_time_ns: int | None) -> int | None:
    """A message's event time as the client takes it (ms), or None for none."""
    return None if event_time_ns is None else event_time_ns // 1_000_000


class Outgoing(NamedTuple):
    """One message of ``Producer.send_together``'s group."""

    message: Message
    key: str | None = None
    sequence_id: int | None = None
    event_time_ns: int | None = None


class SubscriptionKind(Enum):
    EXCLUSIVE = pulsar.ConsumerType.Exclusive
    SHARED = pulsar.ConsumerType.Shared
    FAILOVER = pulsar.ConsumerType.Failover
    KEY_SHARED = pulsar.ConsumerType.KeyShared


def stream_of(topic: str) -> str:
    """A low-cardinality metric label for a topic: ``.../ticks.AAPL`` -> ``ticks``; a non-persistent topic's
    gets ``-np`` (``ticks-np``: the live twin's latencies are not the record's)."""
    stream = topic.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"{stream}-np" if topic.startswith("non-persistent://") else stream


class BusError(RuntimeError):
    """The broker could not be reached or refused an operation."""


class ProducerBusyError(BusError):
    """An exclusive producer is held by someone else (or we were fenced out of it)."""


@dataclass(frozen=True, slots=True)
class Delivery(Generic[M]):
    """One decoded message with the broker metadata a handler may need."""

    message: M
    message_id: Any  # the transport's id (pulsar.MessageId), handed back to ack / nack / seek
    topic: str
    key: str | None
    publish_time_ms: int
    event_time_ms: int
    redelivery_count: int

    @classmethod
    def of(cls, msg: Any, message: M, redelivery_count: int = 0) -> Delivery[M]:
        """A received message's delivery, ``message`` its decoded payload (a reader's: never redelivered)."""
        return cls(message=message, message_id=msg.message_id(), topic=msg.topic_name(),
                   key=msg.partition_key() or None, publish_time_ms=msg.publish_timestamp(),
                   event_time_ms=msg.event_timestamp(), redelivery_count=redelivery_count)  # fmt: skip


def _decode_as(data: bytes, model: type[M]) -> M:
    """``data`` as ``model``; ``Message`` itself as the model means any kind (topics that carry acks and
    fills together). Raises ``codec.DecodeError``."""
    message: Any = codec.decode_any(data) if model is Message else codec.decode(data, model)
    return message  # type: ignore[no-any-return]


READ_WAIT_MS = 10_000  # a reader's wait for a message the broker holds
# How many messages published before a read's start time a reader passes over before it seeks instead: ~0.1 s
# of reading here, against ~0.3 s for the seek and for finding the end (``Bus._seek_rest``).
SEEK_AFTER = 2_000


def _delivery(msg: Any, model: type[M] | None, stream: str) -> Delivery[M] | None:
    """A read message as a ``Delivery`` (``model`` None: not decoded, ``message`` None); None if it does
    not decode, counted (``paceline_bus_rejected_total``) and logged."""
    message: Any = None
    if model is not None:
        try:
            message = _decode_as(msg.data(), model)
        except codec.DecodeError as exc:
            metrics.BUS_REJECTED.labels(stream, exc.reason).inc()
            _log.error(
                "skipped an undecodable entry of %s at %s: %s", msg.topic_name(), msg.message_id(), exc
            )
            return None
    return Delivery.of(msg, message)


class Producer:
    """Typed producer. Not thread-safe for ``sequence_id`` bookkeeping: one owner thread per producer."""

    def __init__(self, raw: Any, topic: str) -> None:
        self._raw = raw
        self.topic = topic
        self._stream = stream_of(topic)
        self._published = metrics.BUS_PUBLISHED.labels(self._stream)
        self._failed = metrics.BUS_PUBLISH_FAILED.labels(self._stream)
        self._latency = metrics.BUS_PUBLISH_LATENCY.labels(self._stream)

    @property
    def name(self) -> str:
        return str(self._raw.producer_name())

    @property
    def last_sequence_id(self) -> int:
        """The highest sequence id the broker has stored for this producer name (-1: none)."""
        return int(self._raw.last_sequence_id())

    def _kwargs(
        self,
        key: str | None,
        sequence_id: int | None,
        event_time_ns: int | None,
        props: dict[str, str] | None,
    ) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if key is not None:
            kw["partition_key"] = key
        if sequence_id is not None:
            kw["sequence_id"] = sequence_id
        if event_time_ns is not None:
            kw["event_timestamp"] = _event_ms(event_time_ns)
        if props:
            kw["properties"] = props
        return kw

    def send(
        self,
        message: Message,
        *,
        key: str | None = None,
        sequence_id: int | None = None,
        event_time_ns: int | None = None,
        properties: dict[str, str] | None = None,
    ) -> pulsar.MessageId:
        """Send and wait for the broker's ack. A de-duplicated re-send returns without error."""
        payload = codec.encode(message)
        t0 = time.perf_counter()
        try:
            msg_id = self._raw.send(payload, **self._kwargs(key, sequence_id, event_time_ns, properties))
        except Exception as exc:
            self._failed.inc()
            raise BusError(f"send to {self.topic} failed: {exc}") from exc
        self._latency.observe(time.perf_counter() - t0)
        self._published.inc()
        return msg_id

    def send_async(
        self,
        message: Message | bytes,
        *,
        key: str | None = None,
        sequence_id: int | None = None,
        event_time_ns: int | None = None,
        properties: dict[str, str] | None = None,
        on_done: Callable[[Exception | None, float], None] | None = None,
    ) -> None:
        """Send without waiting. ``on_done(error or None, seconds until the ack)`` runs on the client's I/O
        thread; keep it short, it is on the publish path. ``message`` may be encoded already (bytes: the
        worker writes a tick's child orders in one pass, ``codec.ChildActionEncoder``)."""
        payload = message if isinstance(message, bytes) else codec.encode(message)
        t0 = time.perf_counter()

        def _cb(res: pulsar.Result, _msg_id: Any) -> None:
            lat = time.perf_counter() - t0
            err: Exception | None = None
            if res == pulsar.Result.Ok:
                self._latency.observe(lat)
                self._published.inc()
            else:
                self._failed.inc()
                err = BusError(f"send to {self.topic} failed: {res}")
            if on_done is not None:
                on_done(err, lat)

        # Keywords passed straight through (None is the client's default): no per-message dict.
        self._raw.send_async(
            payload,
            _cb,
            properties=properties,
            partition_key=key,
            sequence_id=sequence_id,
            event_timestamp=_event_ms(event_time_ns),
        )

    def send_together(self, group: Sequence[Outgoing], timeout_s: float = 30.0) -> Any:
        """Send ``group`` in order as one batch and wait for the broker's receipt: one entry, one storage
        write and one round trip for all of them (a ``Profile.GROUP`` producer; on another, each message
        is its own entry and this is a pipelined send). Readers still see one message each. Returns the
        last message's id (None for an empty group); raises BusError if any of them failed."""
        if not group:
            return None
        payloads = [codec.encode(o.message) for o in group]  # before the first send: the batch goes out whole
        done = threading.Event()
        failed: list[Any] = []
        last_id: list[Any] = [None]
        left = [len(group)]
        t0 = time.perf_counter()

        def _cb(res: pulsar.Result, msg_id: Any) -> None:
            if res != pulsar.Result.Ok:
                failed.append(res)
            left[0] -= 1
            if left[0] == 0:
                last_id[0] = msg_id  # receipts come in send order: this is the last message's
                done.set()

        try:
            for o, payload in zip(group, payloads, strict=True):
                self._raw.send_async(
                    payload, _cb, partition_key=o.key, sequence_id=o.sequence_id,
                    event_timestamp=_event_ms(o.event_time_ns),
                )  # fmt: skip
            self._raw.flush()  # the batch goes out now; returns once it is stored
        except Exception as exc:
            self._failed.inc(len(group))
            raise BusError(f"send to {self.topic} failed: {exc}") from exc
        if not done.wait(timeout_s) or failed:
            self._failed.inc(len(group))
            raise BusError(f"send to {self.topic} failed: {failed[0] if failed else 'no receipt'}")
        self._latency.observe(time.perf_counter() - t0)
        self._published.inc(len(group))
        return last_id[0]

    def send_bytes(self, payload: bytes, *, properties: dict[str, str] | None = None) -> pulsar.MessageId:
        """Send an opaque payload (quarantine and fault-injection paths only)."""
        return self._raw.send(payload, **self._kwargs(None, None, None, properties))

    def flush(self) -> None:
        """Wait until everything sent so far is acknowledged; BusError when the broker does not answer within
        the send timeout (a restart under load): nothing sent is dropped, its callbacks say how it ended."""
        try:
            self._raw.flush()
        except pulsar.PulsarException as exc:
            raise BusError(f"flush of {self.topic} failed: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(pulsar.AlreadyClosed):
            self._raw.close()


class Consumer(Generic[M]):
    """Typed consumer: ``receive`` returns decoded deliveries and quarantines what does not decode."""

    def __init__(
        self, bus: Bus, raw: Any, topic: str, subscription: str, model: type[M], *,
        listener_ref: list[Consumer[M]] | None = None,
    ) -> None:  # fmt: skip
        """``listener_ref``: the list through which the message listener reaches this wrapper, emptied on
        close (see ``close``)."""
        self._bus = bus
        self._listener_ref = listener_ref
        self._raw = raw
        self.topic = topic
        self.subscription = subscription
        self.model = model
        self._stream = stream_of(topic)
        self._consumed = metrics.BUS_CONSUMED.labels(self._stream)
        self._lag = metrics.BUS_CONSUME_LAG.labels(self._stream)
        self._dlq: Producer | None = None
        self._dlq_lock = threading.Lock()
        self._skip_before_ns: int | None = None

    def _decode(self, msg: Any) -> Delivery[M] | None:
        """The delivery, or None after quarantining an undecodable payload."""
        try:
            message = _decode_as(msg.data(), self.model)
        except codec.DecodeError as exc:
            self._reject(msg, exc)
            return None
        self._consumed.inc()
        self._lag.observe(max(0.0, time.time() - msg.publish_timestamp() / 1e3))
        return Delivery.of(msg, message, msg.redelivery_count())

    def _reject(self, msg: Any, exc: codec.DecodeError) -> None:
        metrics.BUS_REJECTED.labels(self._stream, exc.reason).inc()
        _log.warning(
            "rejected undecodable payload on %s (%s): %s [%s]",
            msg.topic_name(), self.subscription, exc, msg.message_id(),
        )  # fmt: skip
        try:
            with self._dlq_lock:
                if self._dlq is None:
                    self._dlq = self._bus.raw_producer(
                        topics.dead_letter(self.topic, self.subscription), profile=Profile.BULK
                    )
            self._dlq.send_bytes(
                msg.data(),
                properties={
                    "reason": exc.reason,
                    "detail": exc.detail[:500],
                    "origin_topic": msg.topic_name(),
                    "origin_message_id": str(msg.message_id()),
                },
            )
        except Exception:
            # Keep the payload rather than lose it: leave it unacked for redelivery.
            _log.exception("could not quarantine a rejected payload; it will be redelivered")
            self._raw.negative_acknowledge(msg)
            return
        self._raw.acknowledge(msg)

    def receive(self, timeout_ms: int | None = None) -> Delivery[M] | None:
        """The next decodable message, or None when ``timeout_ms`` passes without one."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            remaining: int | None = None
            if deadline is not None:
                remaining = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                msg = self._raw.receive(remaining) if remaining is not None else self._raw.receive()
            except pulsar.Timeout:
                return None
            skip = self._skip_before_ns
            if skip is not None and msg.event_timestamp() < skip // 1_000_000:
                self._raw.acknowledge(msg)  # before the seek point (coarse: event time in ms)
                continue
            delivery = self._decode(msg)
            if delivery is not None and skip is not None:
                if getattr(delivery.message, "ts_event", skip) < skip:
                    self._raw.acknowledge(msg)  # same millisecond, earlier nanosecond
                    continue
                self._skip_before_ns = None
            if delivery is not None:
                return delivery
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def ack(self, delivery: Delivery[M]) -> None:
        self._raw.acknowledge(delivery.message_id)

    def ack_cumulative(self, delivery: Delivery[M]) -> None:
        self._raw.acknowledge_cumulative(delivery.message_id)

    def nack(self, delivery: Delivery[M]) -> None:
        self._raw.negative_acknowledge(delivery.message_id)

    def seek(self, position: Any) -> None:
        """Seek to a publish time in ms since the epoch, or to a message id."""
        self._skip_before_ns = None
        self._raw.seek(position)

    def seek_event_time(self, ts_ns: int) -> None:
        """Position at the first message whose event time is at or after ``ts_ns``.

        Pulsar seeks by publish time; a message is always published at or after its event time, so seeking
        to publish time ``ts`` passes over no message with event time >= ``ts``. The messages after that
        point with an earlier event time (published late, or a replay of an earlier day) are acknowledged
        and skipped by ``receive``.
        """
        self._raw.seek(ts_ns // 1_000_000)
        self._skip_before_ns = ts_ns

    def close(self) -> None:
        if self._dlq is not None:
            self._dlq.close()
        with contextlib.suppress(pulsar.AlreadyClosed):
            self._raw.close()
        # pulsar-client forgets a consumer only when its own close() succeeds: one that unsubscribe() closed
        # stays in its client's list, with its native consumer and receive queue, for the client's life
        # (measured: ~33 KB per job's subscription, +36 MB over a day of 1,000 parents at the endpoint).
        with contextlib.suppress(AttributeError, ValueError):
            self._raw._client._consumers.remove(self._raw)
        # The native consumer holds its listener, the listener this wrapper, the wrapper the native consumer:
        # a cycle through C++ that Python's collector cannot see, so every closed consumer with a handler
        # stayed alive (~20 KB each: a day of 1,000 parents grew the endpoint 31 %). Cut it here.
        if self._listener_ref is not None:
            self._listener_ref.clear()

    def unsubscribe(self) -> None:
        """Delete the subscription (its backlog goes with it) and close."""
        with contextlib.suppress(Exception):
            self._raw.unsubscribe()
        self.close()


class Bus:
    """One Pulsar client per process, and the typed producers and consumers made from it. ``memory()``:
    the same on an in-process broker (``runtime.membus``), for tests of the service shells."""

    def __init__(
        self, service_url: str, *, operation_timeout_s: int = 30, io_threads: int = 1, quiet: bool = False,
        token: str | None = None, client: Any = None,
    ) -> None:  # fmt: skip
        """``token``: the role's token (default: this process's, ``runtime.auth.token_from_env``).
        ``client``: a client of another transport with ``pulsar.Client``'s surface (``runtime.membus``)."""
        self.service_url = service_url
        if client is not None:
            self._client = client
            return
        token = token or auth.token_from_env()
        try:
            self._client = pulsar.Client(
                service_url,
                authentication=pulsar.AuthenticationToken(token) if token else None,
                operation_timeout_seconds=operation_timeout_s,
                io_threads=io_threads,
                message_listener_threads=1,
                connection_timeout_ms=5_000,
                # Not a Python logger: with one the client aborts at exit now and then
                # (apache/pulsar-client-python#256). Its own logger writes warnings to stderr.
                # quiet: errors only (a standby's lease polling is refused ten times a second, by design).
                logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error if quiet else pulsar.LoggerLevel.Warn),
            )
        except Exception as exc:
            raise BusError(f"cannot create a Pulsar client for {service_url}: {exc}") from exc

    def raw_producer(
        self,
        topic: str,
        *,
        name: str | None = None,
        profile: Profile = Profile.LATENCY,
        exclusive: bool = False,
        fence: bool = False,
    ) -> Producer:
        """``exclusive``: the one producer the broker allows on the topic (else ProducerBusyError);
        ``fence`` as well: take it from a holder that went silent, whose next send is then refused."""
        kw: dict[str, Any] = {
            "block_if_queue_full": True,
            "send_timeout_millis": 30_000,
        }
        if name is not None:
            kw["producer_name"] = name
        if exclusive:
            # The broker grants one exclusive producer per topic and fails the others at once: a lease
            # that is released when the holder's connection closes (a killed process releases it at once).
            kw["access_mode"] = pulsar.ProducerAccessMode.Exclusive
        if fence:
            kw["access_mode"] = pulsar.ProducerAccessMode.ExclusiveWithFencing
        if profile is Profile.LATENCY:
            kw.update(batching_enabled=False, max_pending_messages=1_000)
        elif profile is Profile.GROUP:
            kw.update(
                batching_enabled=True,
                batching_max_publish_delay_ms=GROUP_BACKSTOP_MS,
                batching_max_messages=10_000,
                batching_max_allowed_size_in_bytes=GROUP_MAX_BYTES,
                max_pending_messages=10_000,
            )
        else:
            kw.update(
                batching_enabled=True,
                batching_max_publish_delay_ms=1,
                batching_max_messages=1_000,
                max_pending_messages=10_000,
            )
        try:
            raw = self._client.create_producer(topic, **kw)
        except Exception as exc:
            if "Fenced" in type(exc).__name__ or "Busy" in type(exc).__name__:
                raise ProducerBusyError(f"{topic}: {exc}") from exc
            raise BusError(f"cannot create a producer on {topic}: {exc}") from exc
        return Producer(raw, topic)

    def producer(
        self,
        topic: str,
        *,
        name: str | None = None,
        profile: Profile = Profile.LATENCY,
        exclusive: bool = False,
        fence: bool = False,
    ) -> Producer:
        """A typed producer. Give a stable ``name`` wherever re-sends must be de-duplicated."""
        return self.raw_producer(topic, name=name, profile=profile, exclusive=exclusive, fence=fence)

    # --- message ids as text (a snapshot names the log entry it follows) -------------------------------
    def id_token(self, message_id: Any) -> str:
        """A message id as text that ``read_all(after=...)`` and ``read_at`` take back."""
        if hasattr(message_id, "serialize"):  # the client's own (its wrapper or the binding's)
            return "p:" + base64.b64encode(message_id.serialize()).decode()
        return f"m:{message_id.index}"  # runtime.membus

    def _message_id(self, token: str) -> Any:
        kind, _, raw = token.partition(":")
        if kind == "p":
            return pulsar.MessageId.deserialize(base64.b64decode(raw))
        if kind == "m":
            from runtime.membus import MemoryMessageId

            return MemoryMessageId("", int(raw))
        raise BusError(f"not a message id token: {token!r}")

    def read_all(
        self, topic: str, model: type[M], *, after: str | None = None, limit: int | None = None,
        published_from_ms: int | None = None, seek_after: int | None = SEEK_AFTER,
    ) -> list[Delivery[M]]:  # fmt: skip
        """Every message on ``topic`` from the start (or from the one after the id token ``after``) to now,
        in order (a non-durable reader); at most ``limit`` of them. ``published_from_ms``: only those
        published from then on (a message is published at or after its event time, so none with a later
        event time is lost). Past ``seek_after`` earlier ones the reader seeks (``_seek_rest``; None: it
        never does): a restart's read of a busy symbol's week no longer reads the week.

        Undecodable entries are counted and skipped (``paceline_bus_rejected_total``), not fatal.
        """
        start = pulsar.MessageId.earliest if after is None else self._message_id(after)
        return self._read(topic, model, start, inclusive=False, limit=limit, since_ms=published_from_ms,
                          seek_after=seek_after)  # fmt: skip

    def read_at(self, topic: str, model: type[M], token: str | None = None) -> Delivery[M] | None:
        """The one message with the id token ``token`` (None: the last message on the topic), or None if
        there is none (an empty topic) or it does not decode."""
        start = pulsar.MessageId.latest if token is None else self._message_id(token)
        got = self._read(topic, model, start, inclusive=True, limit=1)
        return got[0] if got else None

    def _read(
        self, topic: str, model: type[M] | None, start: Any, *, inclusive: bool, limit: int | None,
        since_ms: int | None = None, seek_after: int | None = None,
    ) -> list[Delivery[M]]:  # fmt: skip
        """``model`` None: the messages undecoded (``Delivery.message`` None), for their ids and times."""
        try:
            reader = self._client.create_reader(topic, start, start_message_id_inclusive=inclusive)
        except Exception as exc:
            raise BusError(f"cannot read {topic}: {exc}") from exc
        out: list[Delivery[M]] = []
        stream, passed = stream_of(topic), 0
        try:
            while (limit is None or len(out) < limit) and reader.has_message_available():
                msg = reader.read_next(READ_WAIT_MS)
                if since_ms is not None and msg.publish_timestamp() < since_ms:
                    passed += 1
                    if passed == seek_after and not out:
                        rest = self._seek_rest(reader, topic, model, since_ms, msg.message_id())
                        if rest is not None:
                            return rest
                        _log.warning("%s: the seek to %d ms did not reach the topic's end: read on from %s",
                                     topic, since_ms, msg.message_id())  # fmt: skip
                        return self._read(topic, model, msg.message_id(), inclusive=False, limit=limit,
                                          since_ms=since_ms, seek_after=None)  # fmt: skip
                    continue
                if (d := _delivery(msg, model, stream)) is not None:
                    out.append(d)
        except Exception as exc:
            raise BusError(f"reading {topic} failed: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                reader.close()
        return out

    def _seek_rest(
        self, reader: Any, topic: str, model: type[M] | None, since_ms: int, prev: Any
    ) -> list[Delivery[M]] | None:
        """The rest of ``_read`` by a seek by time (~0.3 s here: the reader reconnects): the broker finds
        the first entry published at ``since_ms``, assuming publish times in order (the callers leave a
        minute for clocks that differ). The reader's end-of-topic check is unreliable after such a seek in
        the clients we use, so the end is the topic's last message, found first, and each message is
        awaited at most ``READ_WAIT_MS``. Ids only go forward from ``prev`` (the last one read): a message
        read again is passed over. None: the seek did not lead to that last message."""
        last: list[Delivery[Any]] = self._read(topic, None, pulsar.MessageId.latest, inclusive=True, limit=1)
        if not last or last[0].publish_time_ms < since_ms:
            return []  # nothing published since: the seek would land past the end
        end, out, stream = last[0].message_id, [], stream_of(topic)
        reader.seek(since_ms)
        while True:
            try:
                msg = reader.read_next(READ_WAIT_MS)
            except pulsar.Timeout:
                return None
            mid = msg.message_id()
            if not prev < mid:
                continue
            prev = mid
            if msg.publish_timestamp() >= since_ms and (d := _delivery(msg, model, stream)) is not None:
                out.append(d)
            if not mid < end:
                return out

    def tail(
        self, topic: str, model: type[M], handler: Callable[[Delivery[M]], None], *,
        wanted: Callable[[bytes], bool] | None = None, wanted_key: Callable[[str], bool] | None = None,
    ) -> Any:  # fmt: skip
        """Follow ``topic`` from now on with a non-durable reader: no backlog ever builds up for it, and
        one opened again starts at the present, not where the last left off (liveness signals, a worker's
        ticks: only the present matters). Undecodable payloads are counted and skipped;
        ``handler`` runs on the listener thread. Payloads ``wanted`` turns down, or whose key ``wanted_key``
        turns down, are passed over undecoded. Close the returned handle."""
        stream = stream_of(topic)
        consumed, lag = metrics.BUS_CONSUMED.labels(stream), metrics.BUS_CONSUME_LAG.labels(stream)

        def _listener(_reader: Any, msg: Any) -> None:
            if wanted_key is not None and not wanted_key(msg.partition_key()):
                return
            data = msg.data()
            if wanted is not None and not wanted(data):
                return
            try:
                message = _decode_as(data, model)
            except codec.DecodeError as exc:
                metrics.BUS_REJECTED.labels(stream, exc.reason).inc()
                return
            consumed.inc()
            lag.observe(max(0.0, time.time() - msg.publish_timestamp() / 1e3))
            try:
                handler(Delivery.of(msg, message))
            except Exception:
                metrics.BUS_HANDLER_ERRORS.labels(stream).inc()
                _log.exception("tail handler failed on %s", topic)

        try:
            return self._client.create_reader(topic, pulsar.MessageId.latest, reader_listener=_listener)
        except Exception as exc:
            raise BusError(f"cannot follow {topic}: {exc}") from exc

    def tail_event_times(self, topic: str, on_time: Callable[[int], None]) -> Any:
        """Follow ``topic`` from now on without decoding payloads: ``on_time(event time in ns)`` per message
        (a non-durable reader; close the returned handle). Used to follow a market's clock cheaply."""

        def _listener(_reader: Any, msg: Any) -> None:
            on_time(msg.event_timestamp() * 1_000_000)

        try:
            return self._client.create_reader(topic, pulsar.MessageId.latest, reader_listener=_listener)
        except Exception as exc:
            raise BusError(f"cannot follow {topic}: {exc}") from exc

    def subscribe(
        self,
        topic: str,
        subscription: str,
        model: type[M],
        *,
        kind: SubscriptionKind = SubscriptionKind.EXCLUSIVE,
        from_earliest: bool = True,
        receiver_queue_size: int = 1_000,
        consumer_name: str | None = None,
        handler: Callable[[Delivery[M]], None] | None = None,
        auto_ack: bool = True,
    ) -> Consumer[M]:
        """Subscribe. With ``handler``, messages are pushed to it on the client's single listener thread
        (so handlers never run concurrently): acknowledged when it returns, negatively acknowledged (and
        counted) when it raises. ``auto_ack=False``: not acknowledged when it returns; the handler has
        taken the delivery, to ``ack`` or ``nack`` once it is dealt with (a group commit). Without a
        handler, pull them with ``receive``."""
        holder: list[Consumer[M]] = []

        def _listener(_raw: Any, msg: Any) -> None:
            if not holder:  # closed
                return
            consumer = holder[0]
            delivery = consumer._decode(msg)
            if delivery is None or handler is None:
                return
            try:
                handler(delivery)
            except Exception:
                metrics.BUS_HANDLER_ERRORS.labels(consumer._stream).inc()
                _log.exception("handler failed on %s; message will be redelivered", consumer.topic)
                consumer._raw.negative_acknowledge(msg)
                return
            if auto_ack:
                consumer._raw.acknowledge(msg)

        kw: dict[str, Any] = {
            "consumer_type": kind.value,
            "initial_position": (
                pulsar.InitialPosition.Earliest if from_earliest else pulsar.InitialPosition.Latest
            ),
            "receiver_queue_size": receiver_queue_size,
            "negative_ack_redelivery_delay_ms": 1_000,
        }
        if consumer_name is not None:
            kw["consumer_name"] = consumer_name
        # The listener may fire before subscribe() returns: it waits until the Consumer wrapper exists.
        ready = threading.Event()
        if handler is not None:

            def _wait_then(raw: Any, msg: Any) -> None:
                ready.wait()
                _listener(raw, msg)

            kw["message_listener"] = _wait_then
        try:
            raw = self._client.subscribe(topic, subscription, **kw)
        except Exception as exc:
            raise BusError(f"cannot subscribe {subscription!r} to {topic}: {exc}") from exc
        consumer = Consumer(self, raw, topic, subscription, model, listener_ref=holder)
        holder.append(consumer)
        ready.set()
        return consumer

    @classmethod
    def memory(cls, broker: Any) -> Bus:
        """A bus on ``broker`` (a ``runtime.membus.MemoryBroker``): each call is another client of it."""
        from runtime.membus import MemoryClient

        return cls("memory://", client=MemoryClient(broker))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def free_subscription(admin_url: str, topic: str, subscription: str, timeout_s: float = 10.0) -> None:
    """Disconnect whoever holds ``subscription`` on ``topic`` without losing its place: the broker's admin
    API resets the subscription's cursor to where it stands (just past its acknowledged messages), which
    disconnects its consumers; live clients reconnect at once, a hung one does not, so its exclusive
    subscription is free. Needs only consume permission on the topic (unloading the topic needs a tenant
    admin, who may produce anywhere). What the holder had received but not acknowledged is delivered
    again, as after any failover. Raises BusError when the broker refuses."""
    path = topic.replace("://", "/", 1)  # persistent://t/ns/name -> persistent/t/ns/name
    base = f"{admin_url.rstrip('/')}/admin/v2/{path}"
    stats = json.loads(_admin("GET", f"{base}/internalStats", None, timeout_s, topic) or "{}")
    cursor = stats.get("cursors", {}).get(subscription)
    if cursor is None:
        return  # no such subscription: nobody holds it
    ledger, entry = (int(x) for x in cursor["markDeletePosition"].split(":"))
    where = {"ledgerId": ledger, "entryId": entry, "isExcluded": True, "partitionIndex": -1, "batchIndex": -1}
    sub = urllib.parse.quote(subscription)
    _admin("POST", f"{base}/subscription/{sub}/resetcursor", where, timeout_s, topic)


def _admin(method: str, url: str, body: object, timeout_s: float, topic: str) -> str:
    """One admin API call with this process's token; on a cluster, redirects to the topic's owner."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**auth.admin_headers(), "Content-Type": "application/json"}
    for _ in range(3):
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            if exc.code in (307, 308) and exc.headers.get("Location"):
                url = exc.headers["Location"]  # on a cluster: the broker that owns the topic
                continue
            why = exc.read().decode(errors="replace")[:200]
            raise BusError(f"{method} {url} for {topic} refused: {exc} {why}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BusError(f"{method} {url} for {topic} failed: {exc}") from exc
    raise BusError(f"{method} {url} for {topic}: redirected too often")
