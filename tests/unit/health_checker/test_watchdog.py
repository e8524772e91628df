"""The leader's freeze detector: the whole process standing still, not one thread waiting."""

from __future__ import annotations

import time

import pytest

from health_checker import service
from health_checker.service import _Watchdog


def test_a_thread_that_waits_is_not_a_frozen_process() -> None:
    w = _Watchdog(limit_s=0.3, every_s=0.02)
    try:
        time.sleep(0.8)  # the decision loop blocked on the broker: the watchdog ran on
        assert w.frozen() is None
    finally:
        w.stop()


def test_a_gap_in_the_watchdogs_own_clock_is_a_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.monotonic
    jump = [0.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: real() + jump[0])
    w = _Watchdog(limit_s=0.3, every_s=0.02)
    try:
        time.sleep(0.1)
        jump[0] = 5.0  # as if every thread had stood still for 5 s (SIGSTOP, a paused VM)
        time.sleep(0.1)
        gap = w.frozen()
        assert gap is not None and gap > 4.9
        assert w.frozen() is None  # reported once
    finally:
        w.stop()
