"""The Receiver: publishes ticks from a source to one persistent topic per equity.

- Keyed by symbol, one producer per topic: Pulsar keeps the order per symbol.
- Producer name ``receiver-<name>-<SYMBOL>`` and ``sequence_id`` = the tick's venue sequence number: a
  restarted receiver replaying the same source is de-duplicated by the broker (exactly-once publication).
- Event time goes into the message's event timestamp, so consumers can seek by it.
- Replay speed: a factor of event time (1.0 real time, 10.0 ten times faster) or None, as fast as possible.
- Malformed records are counted and logged with their position; nothing a source yields stops the service.
- ``live=True`` (``PACELINE_LIVE_TICKS=non-persistent``): each tick also goes to the topic's non-persistent
  twin, for the workers; the persistent topic stays the record that replay, seek and TCA read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from models import Tick, codec, now_ns, topics
from receiver import metrics
from receiver.sources import Malformed, Record
from runtime.bus import Bus, BusError, Producer, Profile
from runtime.logs import get_logger

log = get_logger("paceline.receiver")


@dataclass
class _SymbolOut:
    producer: Producer
    ticks_in: Any  # prometheus children, bound once per symbol
    published: Any
    on_done: Callable[[Exception | None, float], None] | None = None
    live: Producer | None = None  # the non-persistent twin
    count: int = 0


@dataclass
class ReceiverStats:
    ticks_in: int = 0
    published: int = 0
    failed: int = 0
    malformed: int = 0
    latencies_s: list[float] = field(default_factory=list)


class Receiver:
    def __init__(
        self,
        bus: Bus,
        *,
        name: str = "main",
        speed: float | None = None,
        batching: bool = False,
        keep_latencies: bool = False,
        live: bool = False,
    ) -> None:
        self.bus = bus
        self.live = live
        self.name = name
        self.speed = speed
        self.profile = Profile.BULK if batching else Profile.LATENCY
        self.keep_latencies = keep_latencies
        self.stats = ReceiverStats()
        self._out: dict[str, _SymbolOut] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def prepare(self, symbol: str) -> _SymbolOut:
        """The symbol's producer and bound metrics, created on first use (or ahead of time)."""
        out = self._out.get(symbol)
        if out is None:
            producer = self.bus.producer(
                topics.ticks(symbol), name=f"receiver-{self.name}-{symbol}", profile=self.profile
            )
            out = _SymbolOut(
                producer, metrics.TICKS_IN.labels(symbol), metrics.TICKS_PUBLISHED.labels(symbol)
            )
            out.on_done = self._on_done_for(symbol, out)
            if self.live:
                name = f"receiver-{self.name}-{symbol}-live"
                out.live = self.bus.producer(topics.live_ticks(symbol), name=name, profile=self.profile)
            self._out[symbol] = out
        return out

    def _on_done_for(self, symbol: str, out: _SymbolOut) -> Callable[[Exception | None, float], None]:
        stats = self.stats
        keep = stats.latencies_s if self.keep_latencies else None

        # Runs on the client's single I/O thread: no lock needed for the counters it alone writes.
        def done(err: Exception | None, latency_s: float) -> None:
            if err is None:
                stats.published += 1
                out.published.inc()
                if keep is not None:
                    keep.append(latency_s)
            else:
                stats.failed += 1
                metrics.PUBLISH_FAILED.inc()
                log.error("publish failed", symbol=symbol, error=str(err))

        return done

    def publish(self, tick: Tick) -> None:
        out = self.prepare(tick.symbol)
        # Stamp ts_init (when Paceline created the message) on a shallow copy: ticks are frozen and shared.
        tick = tick.__copy__()
        tick.__dict__["ts_init"] = now_ns()
        self.stats.ticks_in += 1
        out.count += 1
        out.ticks_in.inc()
        payload = codec.encode(tick)
        out.producer.send_async(
            payload, key=tick.symbol, sequence_id=tick.seq, event_time_ns=tick.ts_event, on_done=out.on_done
        )
        # The workers' copy after the record: measured no slower for them (the record's storage write starts
        # first; docs/PERFORMANCE.md), and a tick is never live before it is on its way to the record.
        if out.live is not None:
            out.live.send_async(payload, key=tick.symbol, event_time_ns=tick.ts_event, on_done=_live_done)

    def run(self, records: Iterable[Record]) -> ReceiverStats:
        """Publish every tick (paced by ``speed``), then wait for the broker's acks."""
        wall0: float | None = None
        event0 = 0
        for rec in records:
            if self._stop.is_set():
                break
            if isinstance(rec, Malformed):
                self.stats.malformed += 1
                metrics.MALFORMED.labels(rec.source).inc()
                log.warning("malformed record", source=rec.source, position=rec.position, reason=rec.reason)
                continue
            if self.speed is not None:
                if wall0 is None:
                    wall0, event0 = time.perf_counter(), rec.ts_event
                delay = wall0 + (rec.ts_event - event0) / 1e9 / self.speed - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
            try:
                self.publish(rec)
            except BusError as exc:
                # The client queue blocks rather than failing, so this is the broker refusing the producer.
                self.stats.failed += 1
                metrics.PUBLISH_FAILED.inc()
                log.error("publish refused", symbol=rec.symbol, error=str(exc))
        self.flush()
        return self.stats

    @property
    def per_symbol(self) -> dict[str, int]:
        return {s: o.count for s, o in self._out.items()}

    def flush(self) -> bool:
        """Wait for every symbol's acknowledgements. A symbol whose flush times out is logged and counted, and
        the others are still flushed: the feed's thread must outlive a slow broker. True when all flushed."""
        ok = True
        for symbol, out in self._out.items():
            try:
                out.producer.flush()
            except BusError as exc:
                ok = False
                metrics.FLUSH_FAILED.inc()
                log.error("flush failed", symbol=symbol, error=str(exc))
        return ok

    def close(self) -> None:
        self.flush()
        for out in self._out.values():
            out.producer.close()
            if out.live is not None:
                out.live.close()
        self._out.clear()


def _live_done(err: Exception | None, _latency_s: float) -> None:
    # A tick the twin lost is only late for the workers (the next one supersedes it); counted, not retried.
    if err is not None:
        metrics.LIVE_PUBLISH_FAILED.inc()
