"""The Receiver's Prometheus metrics (base units; sub-millisecond buckets for latency)."""

from __future__ import annotations

from prometheus_client import Counter

TICKS_IN = Counter("paceline_receiver_ticks_in_total", "Ticks read from sources", ["symbol"])
TICKS_PUBLISHED = Counter(
    "paceline_receiver_ticks_published_total", "Ticks acknowledged by the broker", ["symbol"]
)
DUPLICATES = Counter("paceline_receiver_duplicates_dropped_total", "Redundant-feed duplicates dropped")
MALFORMED = Counter("paceline_receiver_malformed_total", "Malformed source records", ["source"])
PUBLISH_FAILED = Counter("paceline_receiver_publish_failed_total", "Publishes the broker did not acknowledge")
LIVE_PUBLISH_FAILED = Counter(
    "paceline_receiver_live_publish_failed_total",
    "Ticks the non-persistent twin did not take (PACELINE_LIVE_TICKS; the record still has them)",
)
FLUSH_FAILED = Counter(
    "paceline_receiver_flush_failed_total", "Flushes that timed out waiting for the broker (no tick dropped)"
)
# Publish latency (send until broker ack) is the bus's histogram for this process's tick stream:
# paceline_bus_publish_latency_seconds{stream="ticks"}, with sub-millisecond buckets.
