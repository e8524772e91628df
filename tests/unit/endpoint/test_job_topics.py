"""The venue's per-job topics on the in-memory broker: an answer for a job whose topics are already let go
still reaches its worker, and the producer it needed is let go too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from endpoint import service
from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from models import AckStatus, ChildOrderAck, Message, topics
from runtime.bus import Bus
from runtime.membus import MemoryBroker
from tests.factories import ack


def test_a_late_answer_reaches_the_worker_and_its_producer_is_closed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CLOSE_AFTER_S", 0.0)
    broker = MemoryBroker()
    cfg = EndpointConfig(name="ep-late", symbols=(), fix_port=0, native_port=0, state_dir=tmp_path)
    ep = EndpointService(Bus.memory(broker), cfg)
    ep.start()
    worker = Bus.memory(broker)
    try:
        seen = worker.subscribe(topics.job_executions("J9"), "worker-J9", Message)
        late = ack(job_id="J9", child_id="J9.1.0", status=AckStatus.REJECTED, reason="unknown_job: J9")
        with ep._venue_lock:
            ep._publish([late])
        assert service.JOB_TOPICS._value.get() == 1
        got = seen.receive(timeout_ms=5000)
        assert got is not None and isinstance(got.message, ChildOrderAck) and got.message.child_id == "J9.1.0"
        deadline = time.monotonic() + 5
        while service.JOB_TOPICS._value.get() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.JOB_TOPICS._value.get() == 0  # the janitor closed it (twice a second)
        assert not ep._job_out
    finally:
        ep.stop()
        worker.close()
