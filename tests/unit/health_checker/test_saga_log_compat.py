"""Old logs still replay: a saga log written by the code of 2026-12-01 (every kind of event the flow tests
produce: accept, wait, assign, fills, a lost worker, fences, an amendment, a cancel, rejections, ends),
replayed by today's ``ParentSaga``, rebuilds the states that code had. A takeover after an upgrade
depends on it."""

from __future__ import annotations

import json
from pathlib import Path

from health_checker.parent_saga import ParentSaga
from models import SagaEvent

DATA = Path(__file__).parent / "data"


def test_a_log_written_by_the_code_of_2026_12_01_replays_to_the_same_states() -> None:
    lines = [json.loads(x) for x in (DATA / "saga_log_2026-12-01.jsonl").read_text().splitlines()]
    expected = json.loads((DATA / "saga_log_2026-12-01.expected.json").read_text())
    sagas: dict[str, ParentSaga] = {}
    for doc in lines:
        log = doc.pop("log")
        ev = SagaEvent.model_validate(doc)
        key = f"{log}/{ev.saga_id}"
        s = sagas.setdefault(key, ParentSaga(ev.saga_id))
        assert s.apply(ev), key
    assert set(sagas) == set(expected)
    for key, s in sagas.items():
        got = {"seq": s.seq, "phase": str(s.phase), "status": s.status, "terminal": s.terminal,
               "filled": s.filled, "epoch": s.epoch, "worker_id": s.worker_id, "stack": list(s.stack),
               "timers": sorted(s.timers), "reason": s.reason, "over_executed": s.over_executed,
               "quantity": s.parent.quantity if s.parent else None}  # fmt: skip
        assert got == expected[key], key
    assert {s.status for s in sagas.values()} >= {"filled", "cancel", "window_end", "rejected"}
