"""``Bus.read_all`` from a publish time on the in-memory broker (its reader seeks as Pulsar's does)."""

from __future__ import annotations

import pytest

from runtime.bus import Bus
from runtime.membus import MemoryBroker
from tests.services.test_bus import seeks_past_a_long_history


def test_read_all_from_a_time_seeks_past_a_long_history(monkeypatch: pytest.MonkeyPatch) -> None:
    seeks_past_a_long_history(Bus.memory(MemoryBroker()), "MSEEK", monkeypatch)
