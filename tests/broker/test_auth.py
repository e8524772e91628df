"""The broker's token authentication and per-role authorisation (``paceline.ops.broker.GRANTS``), on the
session's broker (started with ``auth=True``): each role may do its own job and nothing else."""

from __future__ import annotations

import json
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import IO

import pulsar as pulsar_client
import pytest

from models import topics
from models.common import Message
from paceline.ops import broker
from runtime import auth
from runtime.bus import Bus, BusError, free_subscription

pytestmark = pytest.mark.broker


def _token(pulsar: broker.BrokerConfig, role: str) -> str:
    path = pulsar.token_file(role)
    assert path is not None
    return path.read_text().strip()


def _publish(pulsar: broker.BrokerConfig, token: str, topic: str) -> None:
    with Bus(pulsar.service_url, token=token, operation_timeout_s=5, quiet=True) as bus:
        p = bus.raw_producer(topic)
        p.send_bytes(b"{}")
        p.close()


@pytest.mark.parametrize("topic", [topics.SAGA_LOG, topics.EXECUTIONS, topics.RISK, topics.REPORTS])
def test_a_worker_may_not_write_the_saga_log_executions_reports_or_the_kill_switch(
    pulsar: broker.BrokerConfig, topic: str
) -> None:
    with pytest.raises(BusError, match="AuthorizationError"):
        _publish(pulsar, _token(pulsar, "worker"), topic)


def test_a_worker_does_its_own_job(pulsar: broker.BrokerConfig, unique: str) -> None:
    token = _token(pulsar, "worker")
    _publish(pulsar, token, topics.job_actions(f"J{unique.upper()}"))
    _publish(pulsar, token, topics.HEARTBEATS)
    with Bus(pulsar.service_url, token=token, operation_timeout_s=5, quiet=True) as bus:
        assert bus.read_all(topics.job_executions(f"J{unique.upper()}"), Message) == []
        with pytest.raises(BusError, match="AuthorizationError"):  # another client's reports
            bus.read_all(topics.REPORTS, Message)


def test_only_the_operator_sets_the_kill_switch_and_the_viewer_only_reads(
    pulsar: broker.BrokerConfig,
) -> None:
    _publish(pulsar, _token(pulsar, "operator"), topics.RISK)
    for role in ("viewer", "endpoint", "receiver"):
        with pytest.raises(BusError, match="AuthorizationError"):
            _publish(pulsar, _token(pulsar, role), topics.RISK)
    with Bus(pulsar.service_url, token=_token(pulsar, "viewer"), operation_timeout_s=5, quiet=True) as bus:
        bus.read_all(topics.SAGA_LOG, Message)  # the live page reads everything


def test_the_receiver_writes_ticks_and_the_endpoint_executions(pulsar: broker.BrokerConfig) -> None:
    _publish(pulsar, _token(pulsar, "receiver"), topics.ticks("AAPL"))
    _publish(pulsar, _token(pulsar, "receiver"), topics.live_ticks("AAPL"))  # the namespace's grant covers it
    for topic in (topics.ticks("AAPL"), topics.live_ticks("AAPL")):  # a worker reads them (non-durable)
        _read(pulsar, "worker", topic, True)
    _publish(pulsar, _token(pulsar, "endpoint"), topics.EXECUTIONS)
    with Bus(pulsar.service_url, token=_token(pulsar, "endpoint"), operation_timeout_s=5, quiet=True) as bus:
        bus.read_all(topics.JOB_REQUESTS, Message)  # its own requests, read back on a restart
    with pytest.raises(BusError, match="AuthorizationError"):
        _publish(pulsar, _token(pulsar, "receiver"), topics.EXECUTIONS)


def test_the_endpoint_writes_new_orders_on_the_requests_twin_and_the_health_checker_reads_it(
    pulsar: broker.BrokerConfig,
) -> None:
    # A twin is a topic of its own: the control namespace is granted topic by topic.
    _publish(pulsar, _token(pulsar, "endpoint"), topics.LIVE_JOB_REQUESTS)
    for role in ("worker", "receiver", "health-checker"):
        with pytest.raises(BusError, match="AuthorizationError"):
            _publish(pulsar, _token(pulsar, role), topics.LIVE_JOB_REQUESTS)
    for role, allowed in (("health-checker", True), ("worker", False)):
        _read(pulsar, role, topics.LIVE_JOB_REQUESTS, allowed)


def _read(pulsar: broker.BrokerConfig, role: str, topic: str, allowed: bool) -> None:
    """Follow ``topic`` as ``role``: refused unless ``allowed``."""
    with Bus(pulsar.service_url, token=_token(pulsar, role), operation_timeout_s=5, quiet=True) as bus:
        if allowed:
            bus.tail(topic, Message, lambda _d: None).close()
        else:
            with pytest.raises(BusError, match="AuthorizationError"):
                bus.tail(topic, Message, lambda _d: None)


def test_the_leader_writes_news_on_the_reports_twin_and_the_endpoint_reads_them(
    pulsar: broker.BrokerConfig,
) -> None:
    _publish(pulsar, _token(pulsar, "health-checker"), topics.LIVE_REPORTS)
    for role in ("worker", "endpoint"):
        with pytest.raises(BusError, match="AuthorizationError"):
            _publish(pulsar, _token(pulsar, role), topics.LIVE_REPORTS)
    for role, allowed in (("endpoint", True), ("worker", False), ("receiver", False)):
        _read(pulsar, role, topics.LIVE_REPORTS, allowed)


def test_a_token_signed_with_another_key_or_none_is_refused(
    pulsar: broker.BrokerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = auth.mint(secrets.token_bytes(32), auth.SUPERUSER)
    with pytest.raises(BusError):
        _publish(pulsar, forged, topics.HEARTBEATS)
    monkeypatch.delenv("PACELINE_PULSAR_TOKEN_FILE", raising=False)
    monkeypatch.delenv("PACELINE_PULSAR_TOKEN", raising=False)
    assert auth.token_from_env() is None
    with pytest.raises(BusError):  # no credentials at all
        _publish(pulsar, "", topics.HEARTBEATS)


def test_the_health_checker_is_no_tenant_admin_and_refused_outside_its_topics(
    pulsar: broker.BrokerConfig, unique: str
) -> None:
    token = _token(pulsar, "health-checker")
    for topic in (topics.ticks("AAPL"), topics.live_ticks("AAPL"), topics.RISK, topics.EXECUTIONS,
                  topics.job_actions(f"J{unique.upper()}")):  # fmt: skip
        with pytest.raises(BusError, match="AuthorizationError"):
            _publish(pulsar, token, topic)
    _publish(pulsar, token, topics.SAGA_LOG)  # its own
    path = topics.JOB_REQUESTS.replace("://", "/", 1)
    req = urllib.request.Request(f"{pulsar.admin_url}/admin/v2/{path}/unload", method="PUT",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:  # what only a tenant admin may do
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code in (401, 403)


def _consumers(pulsar: broker.BrokerConfig, topic: str, sub: str) -> int:
    path = topic.replace("://", "/", 1)
    req = urllib.request.Request(f"{pulsar.admin_url}/admin/v2/{path}/stats", headers=auth.admin_headers())
    with urllib.request.urlopen(req, timeout=10) as r:
        return len(json.loads(r.read())["subscriptions"][sub]["consumers"])


_HOLDER = """
import os, sys, threading, time, pulsar
watchdog = threading.Timer(60, os._exit, (3,))  # the C++ client's subscribe has been seen to hang for good
watchdog.start()
client = pulsar.Client(sys.argv[1], authentication=pulsar.AuthenticationToken(sys.argv[2]))
consumer = client.subscribe(sys.argv[3], sys.argv[4], consumer_type=pulsar.ConsumerType.Exclusive)
watchdog.cancel()
print("subscribed", flush=True)
time.sleep(600)
"""


def _drain(out: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in out:
        lines.put(line)
    lines.put(None)  # the holder has exited


def _hold(args: list[str], tries: int = 3) -> subprocess.Popen[str]:
    """A holder process that has subscribed; a holder whose subscribe hangs or fails is replaced, since the
    test is about freeing a held subscription, not about subscribing. Its output (the client's log lines)
    is drained on a thread so the pipe never fills, and shown if no try succeeds."""
    seen: list[str] = []
    for _ in range(tries):
        holder = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        out = holder.stdout
        assert out is not None
        threading.Thread(target=_drain, args=(out, lines), daemon=True).start()
        deadline = time.monotonic() + 90
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if line.strip() == "subscribed":
                return holder
            seen.append(line)
        holder.kill()
        holder.wait()
        seen.append(f"-- holder gave up (exit {holder.returncode})\n")
    pytest.fail("no holder subscribed:\n" + "".join(seen[-40:]))


def test_the_health_checker_frees_a_hung_holders_subscription_and_nothing_is_lost(
    pulsar: broker.BrokerConfig, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How a standby takes over a hung leader's inputs with consume permission only: the holder, SIGSTOPped
    with messages in its queue unacknowledged, loses the subscription, and they come to the new holder."""
    token, sub = _token(pulsar, "health-checker"), f"hc-free-{unique}"
    args = [sys.executable, "-c", _HOLDER, pulsar.service_url, token, topics.JOB_REQUESTS, sub]
    holder = _hold(args)
    try:
        sent = [f"{unique}-{i}".encode() for i in range(3)]
        with Bus(pulsar.service_url, token=_token(pulsar, "endpoint"), quiet=True) as bus:
            p = bus.raw_producer(topics.JOB_REQUESTS)
            for body in sent:
                p.send_bytes(body)
            p.close()
        client = pulsar_client.Client(
            pulsar.service_url, authentication=pulsar_client.AuthenticationToken(token)
        )
        try:
            with pytest.raises(Exception, match="ConsumerBusy"):  # held
                client.subscribe(topics.JOB_REQUESTS, sub, consumer_type=pulsar_client.ConsumerType.Exclusive)
            holder.send_signal(signal.SIGSTOP)
            monkeypatch.setenv("PACELINE_PULSAR_TOKEN", token)
            free_subscription(pulsar.admin_url, topics.JOB_REQUESTS, sub)
            # Disconnected at once (not after the broker's liveness check of a later subscriber's rival).
            assert _consumers(pulsar, topics.JOB_REQUESTS, sub) == 0
            c = client.subscribe(topics.JOB_REQUESTS, sub, consumer_type=pulsar_client.ConsumerType.Exclusive)
            got: list[bytes] = []
            while len(got) < len(sent):  # the session's other tests publish requests here too
                if (body := c.receive(timeout_millis=10_000).data()).startswith(unique.encode()):
                    got.append(body)
            assert got == sent  # what the holder had received and not acknowledged
        finally:
            client.close()
    finally:
        holder.kill()
        holder.wait()
