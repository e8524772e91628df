"""Snapshots and pruning: a takeover after a long history replays only the tail and ends up in the same
state as a full replay; an ended saga leaves memory and still answers what comes late about it."""

from __future__ import annotations

from health_checker.coordinator import Config
from models import CancelRequest, JobRequest, OrdStatus
from tests.desk import Desk, check_reports

EVERY = 40


def _desk() -> Desk:
    return Desk(config=Config(heartbeat_timeout_s=3, assign_wait_s=30, venue_retry_s=2, close_grace_s=5,
                              snapshot_every=EVERY))  # fmt: skip


def _history(d: Desk, parents: int) -> dict[str, int]:
    """``parents`` parents worked one after another (every third cancelled part-filled), a checkpoint after
    each step as the service's loop would take it; one more left half-filled."""
    qty: dict[str, int] = {}
    for i in range(parents):
        pid = f"P-{i}"
        qty[pid] = 1_000
        d.submit(pid, qty=1_000)
        w = d.saga(pid).worker_id
        assert w is not None
        d.trade(w, 400)
        d.coord.checkpoint(d.snapshots)
        if i % 3 == 2:
            d.coord.handle(CancelRequest(request_id=f"X{i}", parent_id=pid, client_id="CLIENT1",
                                         cl_ord_id=f"CX{i}", ts_init=d.now))  # fmt: skip
            d.pump()
            d.advance(1)
        else:
            d.trade(w, 600)
        assert d.coord.orch.sagas[pid].terminal
        d.coord.checkpoint(d.snapshots)
    qty["P-live"] = 1_000
    d.submit("P-live", qty=1_000)
    w = d.saga("P-live").worker_id
    assert w is not None
    d.trade(w, 250)
    return qty


def test_a_takeover_from_the_snapshot_replays_only_the_tail_and_rebuilds_the_same_state() -> None:
    d = _desk()
    d.heartbeats()
    qty = _history(d, 30)
    log_len = len(d.log.events)
    assert log_len > 10 * EVERY and len(d.snapshots.saved) >= 10
    assert len(d.coord.orch.sagas) < 10  # ended parents left memory at each snapshot

    full = d.coord.orch.__class__(d.log, d.outbox, d.coord.orch.factory)
    full.recover()  # the reference: the whole log, nothing pruned
    sent = len(d.outbox.sent)
    d.from_snapshot = True
    d.restart_orchestrator()
    d.pump()
    orch = d.coord.orch
    assert 0 < log_len - orch.snapshot_position <= 2 * EVERY  # it replayed the tail, not the history
    assert len(d.outbox.sent) == sent  # nothing re-published
    for sid, saga in full.sagas.items():
        if saga.terminal:
            assert sid in orch.sagas or orch.ended[sid].status == saga.status
        else:
            assert orch.sagas[sid] == saga  # a running saga exactly as the full replay has it
    assert orch.position == full.position == log_len
    # It goes on from there: the live parent fills to its quantity, once.
    w = d.saga("P-live").worker_id
    assert w is not None
    d.trade(w, 750)
    assert d.saga("P-live").terminal and d.saga("P-live").filled == 1_000
    check_reports(d.reports, qty)


def test_an_ended_saga_out_of_memory_still_answers_late_inputs() -> None:
    d = _desk()
    d.heartbeats()
    d.submit("P-1", qty=500)
    w = d.saga("P-1").worker_id
    assert w is not None
    d.trade(w, 500)
    first = d.saga("P-1").parent
    assert first is not None
    request = JobRequest(job_id="JP-1", parent=first, ts_init=d.now)
    assert d.coord.orch.prune(3600 * 10**9, d.now) == 1
    assert "P-1" not in d.coord.orch.sagas and d.coord.orch.ended["P-1"].status == "filled"
    sent = len(d.outbox.sent)
    d.coord.handle(request)  # redelivered: not a new parent
    d.to_hc.append(d.all_fills[0])  # a fill redelivered: counted as a duplicate, not an error
    d.pump()
    assert len(d.outbox.sent) == sent and "P-1" not in d.coord.orch.sagas
    d.coord.handle(CancelRequest(request_id="X9", parent_id="P-1", client_id="CLIENT1", cl_ord_id="C-9",
                                 ts_init=d.now))  # fmt: skip
    d.pump()
    rej = [e.message for _, e in d.outbox.sent if e.message.get("kind") == "request_reject"]
    assert len(rej) == 1 and rej[0]["too_late"] is True and rej[0]["ord_status"] == OrdStatus.FILLED.value
    assert rej[0]["orig_cl_ord_id"] == first.cl_ord_id
    # Another client's cancel for that id learns nothing about it.
    d.coord.handle(CancelRequest(request_id="X10", parent_id="P-1", client_id="OTHER", cl_ord_id="C-10",
                                 ts_init=d.now))  # fmt: skip
    d.pump()
    rej = [e.message for _, e in d.outbox.sent if e.message.get("kind") == "request_reject"]
    assert rej[-1]["reason"] == "unknown order" and rej[-1]["too_late"] is False
    # Records older than the retention are forgotten.
    d.coord.orch.prune(1, d.now + 2)
    assert "P-1" not in d.coord.orch.ended
