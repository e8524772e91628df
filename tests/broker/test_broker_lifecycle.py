"""The broker process itself: readiness, namespaces, and durability across a stop and start."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from models import Tick, topics
from paceline.ops import broker
from runtime import auth
from runtime.bus import Bus
from tests.factories import tick

pytestmark = pytest.mark.broker


def _get(url: str) -> object:
    req = urllib.request.Request(url, headers=auth.admin_headers())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_namespaces_exist_with_retention_and_dedup(pulsar: broker.BrokerConfig) -> None:
    nss = _get(f"{pulsar.admin_url}/admin/v2/namespaces/{topics.TENANT}")
    assert set(nss) == {f"{topics.TENANT}/{n}" for n in topics.NAMESPACES}  # type: ignore[arg-type]
    saga = _get(f"{pulsar.admin_url}/admin/v2/namespaces/{topics.TENANT}/saga/retention")
    assert saga == {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}
    assert _get(f"{pulsar.admin_url}/admin/v2/namespaces/{topics.TENANT}/market/deduplication") is True


def test_status_reports_a_running_ready_broker(pulsar: broker.BrokerConfig) -> None:
    st = broker.status(pulsar)
    assert st["running"] and st["ready"] and st["pid"] == broker.read_pid(pulsar)


def test_ensure_namespaces_is_idempotent(pulsar: broker.BrokerConfig) -> None:
    broker.ensure_namespaces(pulsar.admin_url)
    broker.ensure_namespaces(pulsar.admin_url)


@pytest.mark.slow
def test_persisted_messages_survive_a_broker_stop_and_start(pulsar: broker.BrokerConfig, unique: str) -> None:
    symbol = f"S{unique[:6].upper()}"
    topic = topics.ticks(symbol)
    sub = f"restart-{unique}"
    with Bus(pulsar.service_url) as bus:
        bus.subscribe(topic, sub, Tick).close()  # the subscription's cursor holds the messages
        p = bus.producer(topic, name=f"restart-{unique}")
        for seq in range(20):
            p.send(tick(symbol=symbol, seq=seq), sequence_id=seq)
        p.close()
    old_pid = broker.read_pid(pulsar)
    assert broker.stop(pulsar)
    assert broker.read_pid(pulsar) is None and not broker.is_ready(pulsar.admin_url)
    t0 = time.monotonic()
    assert broker.start(pulsar) != old_pid
    broker.wait(pulsar, timeout_s=300)
    restart_s = time.monotonic() - t0
    with Bus(pulsar.service_url) as bus:
        c = bus.subscribe(topic, sub, Tick)
        seqs = []
        while (d := c.receive(timeout_ms=5000)) is not None:
            seqs.append(d.message.seq)
            c.ack(d)
        # De-duplication state also survives: a re-send of an old sequence id is still dropped.
        p = bus.producer(topic, name=f"restart-{unique}")
        assert p.last_sequence_id == 19
    assert seqs == list(range(20))
    print(f"broker restart to ready: {restart_s:.1f} s")
