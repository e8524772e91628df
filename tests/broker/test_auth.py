"""The broker's token authentication and per-role authorisation (``paceline.ops.broker.GRANTS``), on the
session's broker (started with ``auth=True``): each role may do its own job and nothing else."""

from __future__ import annotations

import secrets

import pytest

from models import topics
from models.common import Message
from paceline.ops import broker
from runtime import auth
from runtime.bus import Bus, BusError

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
    _publish(pulsar, token, topics.job_actions(f"J-{unique}"))
    _publish(pulsar, token, topics.HEARTBEATS)
    with Bus(pulsar.service_url, token=token, operation_timeout_s=5, quiet=True) as bus:
        assert bus.read_all(topics.job_executions(f"J-{unique}"), Message) == []
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
    _publish(pulsar, _token(pulsar, "endpoint"), topics.EXECUTIONS)
    with Bus(pulsar.service_url, token=_token(pulsar, "endpoint"), operation_timeout_s=5, quiet=True) as bus:
        bus.read_all(topics.JOB_REQUESTS, Message)  # its own requests, read back on a restart
    with pytest.raises(BusError, match="AuthorizationError"):
        _publish(pulsar, _token(pulsar, "receiver"), topics.EXECUTIONS)


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
