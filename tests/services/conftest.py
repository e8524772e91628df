"""Tests of the bus contract and of the service shells, run on both transports: the in-memory broker
(``runtime.membus``, fast, no Java) and the real Apache Pulsar standalone of the session (marked
``broker``). The same typed ``Bus`` sits on both, so a test that passes on one and fails on the other
shows where the in-memory broker strays from Pulsar's contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
