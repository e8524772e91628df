"""Log lines carry the order identity of the message being handled."""

from __future__ import annotations

import json

import structlog

from models import JobAssignment
from runtime import logs
from tests.factories import T0, fill, parent


def test_order_fields_from_the_message_and_its_parent() -> None:
    a = JobAssignment(job_id="J1", worker_id="w1", epoch=3, parent=parent(parent_id="P-9", symbol="MSFT"),
                      quantity=10, ts_init=T0)  # fmt: skip
    assert logs.order_fields(a) == {"parent_id": "P-9", "job_id": "J1", "symbol": "MSFT", "epoch": 3}
    assert logs.order_fields(fill()) == {"parent_id": "P-1", "job_id": "J1", "symbol": "AAPL"}
    assert logs.order_fields(object()) == {}


def test_bound_fields_reach_json_lines_and_leave_with_the_block(capsys: object) -> None:
    logs.configure("test", fmt="json")
    log = logs.get_logger("t")
    with logs.bind_order(fill(parent_id="P-7", job_id="J7")):
        log.info("inside")
    log.info("outside")
    err = capsys.readouterr().err.strip().splitlines()  # type: ignore[attr-defined]
    inside, outside = (json.loads(x) for x in err[-2:])
    assert (inside["parent_id"], inside["job_id"], inside["symbol"]) == ("P-7", "J7", "AAPL")
    assert inside["service"] == "test" and "timestamp" in inside
    assert "parent_id" not in outside
    structlog.contextvars.clear_contextvars()
