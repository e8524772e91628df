"""Shared fixtures. Broker tests get a dedicated Apache Pulsar standalone on free ports, started once per
session in a temporary run folder and stopped at the end, so they never touch a developer's demo broker."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpoint.config import EndpointConfig
from endpoint.service import EndpointService
from paceline.ops import broker
from paceline.ops.stack import start_scratch_broker
from runtime import auth
from runtime.bus import Bus
from runtime.settings import Settings

# As every paceline process does (runtime.settings.switch_interval_us): an I/O-woken thread should not wait
# CPython's default 5 ms for the GIL while another thread computes. Tests run several services in one process.
sys.setswitchinterval(Settings().switch_interval_us / 1e6)


@pytest.fixture(scope="session")
def pulsar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerConfig]:
    """A running standalone this session owns (tests may stop and restart it), with authentication and
    authorisation on. This process (and what it spawns without ``auth_dir``) is the superuser; the
    services of ``tests/broker/pipeline.py`` run under their own roles."""
    settings = Settings()
    run_dir = Path(os.environ.get("PACELINE_TEST_BROKER_DIR") or tmp_path_factory.mktemp("pulsar"))
    cfg = start_scratch_broker(run_dir, settings.cache_dir, auth=True)
    token_file = cfg.token_file(auth.SUPERUSER)
    assert token_file is not None
    os.environ.pop("PACELINE_PULSAR_TOKEN", None)
    os.environ.update(auth.env_for(token_file))
    yield cfg
    broker.stop(cfg)


@pytest.fixture
def bus(pulsar: broker.BrokerConfig) -> Iterator[Bus]:
    b = Bus(pulsar.service_url)
    yield b
    b.close()


@pytest.fixture
def venue(bus: Bus, tmp_path: Path) -> Iterator[EndpointService]:
    """The endpoint's venue router only (no FIX, no native): tests send JobRequests straight to the
    health-checker and the venue executes the workers' child orders."""
    cfg = EndpointConfig(
        name=f"ep-{uuid.uuid4().hex[:6]}", symbols=(), fix_port=0, native_port=0, state_dir=tmp_path
    )
    ep = EndpointService(bus, cfg)
    ep.start()
    yield ep
    ep.stop()


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic and subscription names, so tests never see each other's messages."""
    return uuid.uuid4().hex[:10]
