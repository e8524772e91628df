"""Tests of the bus contract and of the service shells, run on both transports: the in-memory broker
(``runtime.membus``, fast, no Java) and the real Apache Pulsar standalone of the session (marked
``broker``). The same typed ``Bus`` sits on both, so a test that passes on one and fails on the other
shows where the in-memory broker strays from Pulsar's contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from health_checker.coordinator import Config
from health_checker.service import HealthChecker
from runtime.bus import Bus
from runtime.membus import MemoryBroker


@pytest.fixture(params=["memory", pytest.param("pulsar", marks=pytest.mark.broker)])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        b = Bus.memory(MemoryBroker())
    else:
        b = Bus(request.getfixturevalue("pulsar").service_url)
    yield b
    b.close()


@pytest.fixture
def leader(bus: Bus) -> Iterator[HealthChecker]:
    """A health-checker that holds the lease."""
    hc = HealthChecker(bus, f"hc-{uuid.uuid4().hex[:6]}", Config(heartbeat_timeout_s=3))
    hc.start()
    try:
        assert hc.is_leader.wait(60), "the health-checker never took the lease"
        yield hc
    finally:
        hc.stop()
