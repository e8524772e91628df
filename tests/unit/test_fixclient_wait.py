"""The FIX test client's waits: a refusal of the awaited order fails at once, with its reason."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from fixclient.client import FixClient


def _received(*messages: dict[int, str]) -> FixClient:
    """A client that has received ``messages``, without a QuickFIX session (none is registered)."""
    c: FixClient = FixClient.__new__(FixClient)
    c.received = list(messages)
    c._lock = threading.Lock()
    c._q = queue.Queue()
    return c


def test_the_awaited_report_is_returned_and_other_orders_are_ignored() -> None:
    c = _received({35: "8", 11: "OTHER", 150: "8", 58: "not this one"}, {35: "8", 11: "A", 150: "0"})
    assert c.wait_order("A", lambda f: f.get(150) == "0", what="ER New")[150] == "0"


@pytest.mark.parametrize(
    "refusal",
    [
        {35: "8", 11: "A", 150: "8", 58: "more than 20 orders per second"},
        {35: "9", 11: "A", 58: "more than 20 orders per second"},
    ],
)
def test_a_refusal_fails_at_once_with_its_reason(refusal: dict[int, str]) -> None:
    c = _received(refusal)
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="refused: 'more than 20 orders per second'"):
        c.wait_order("A", lambda f: f.get(150) == "0", timeout_s=30, what="ER New")
    assert time.monotonic() - t0 < 5  # not at the timeout


def test_a_refusal_that_is_awaited_is_returned() -> None:
    c = _received({35: "8", 11: "A", 150: "8", 58: "duplicate"})
    assert c.wait_order("A", lambda f: f.get(150) == "8", what="reject")[58] == "duplicate"
