"""Prometheus metrics shared by every process, and the per-process /metrics endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Seconds. Sub-millisecond resolution where the latency budget lives (a hop is ~1-3 ms on one broker).
LATENCY_BUCKETS = (
    50e-6, 100e-6, 250e-6, 500e-6, 750e-6,
    1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7.5e-3,
    10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0, 5.0,
)  # fmt: skip
# The tick -> child order path and its stages, where its goal is set in tenths of a millisecond (floor + 0.5
# ms at p50, docs/PERFORMANCE.md): 25 us steps to 0.5 ms, 0.1 ms steps to 5 ms, then the coarse tail. A
# quantile read from these (Grafana's histogram_quantile, ``paceline bench latency``) is within a step.
TRACE_BUCKETS = (
    *(k / 40_000 for k in range(1, 21)),
    *(k / 10_000 for k in range(6, 51)),
    7.5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0, 5.0,
)  # fmt: skip

BUS_PUBLISHED = Counter("paceline_bus_published_total", "Messages published", ["stream"])
BUS_PUBLISH_FAILED = Counter("paceline_bus_publish_failed_total", "Publishes that failed", ["stream"])
BUS_CONSUMED = Counter("paceline_bus_consumed_total", "Messages decoded and delivered", ["stream"])
BUS_REJECTED = Counter(
    "paceline_bus_rejected_total", "Payloads that failed to decode, by reason", ["stream", "reason"]
)
BUS_HANDLER_ERRORS = Counter(
    "paceline_bus_handler_errors_total", "Handler exceptions (message negatively acknowledged)", ["stream"]
)
BUS_PUBLISH_LATENCY = Histogram(
    "paceline_bus_publish_latency_seconds", "Send until broker ack", ["stream"], buckets=LATENCY_BUCKETS
)
# How far behind its producers a consumer runs (publish -> decoded here): the backlog, in time. A growing
# lag is a consumer that cannot keep up; the broker's own pulsar_msg_backlog counts it in messages.
BUS_CONSUME_LAG = Histogram(
    "paceline_bus_consume_lag_seconds", "Publish until decoded by this consumer", ["stream"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip


# Readiness, for whoever starts a service (the drills, an orchestrator's probe): 1 once it serves (a
# health-checker: once it leads or stands by for the lease), 0 again when it stops.
READY = Gauge("paceline_service_ready", "1 while the service is started and serving", ["service"])


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Expose /metrics on ``port`` (0: don't). ``addr`` 0.0.0.0 in containers, where Prometheus scrapes
    from another host."""
    if port:
        start_http_server(port, addr=addr)
