"""``ActionOrder``: a job's actions from the record and its twin are handed on once each, in the worker's
order, whatever the interleaving of the two copies and whichever twin copies the broker drops."""

from __future__ import annotations

import random

from endpoint.action_order import ActionOrder, seq_of
from models import ChildAction, ChildOrderAction, Side, topics


def _action(seq: int, *, job: str = "J1", epoch: int = 1) -> ChildOrderAction:
    return ChildOrderAction(
        action=ChildAction.NEW, child_id=f"{job}.e{epoch}.{seq}", job_id=job, parent_id=f"P{job}",
        worker_id="w1", epoch=epoch, symbol="AAPL", side=Side.BUY, quantity=100, ts_event=seq, ts_init=seq,
    )  # fmt: skip


def _seqs(out: list[ChildOrderAction]) -> list[int]:
    return [a.ts_init for a in out]


def test_the_first_copy_is_handed_on_and_the_second_passed_over() -> None:
    order = ActionOrder()
    assert _seqs(order.offer(_action(1), 1, record=False)) == [1]
    assert order.offer(_action(1), 1, record=True) == []
    assert _seqs(order.offer(_action(2), 2, record=True)) == [2]
    assert order.offer(_action(2), 2, record=False) == []


def test_a_twin_copy_after_a_gap_waits_for_the_record_to_fill_it() -> None:
    order = ActionOrder()
    assert _seqs(order.offer(_action(1), 1, record=False)) == [1]
    # 2's twin copy was dropped; 3 and 4 come on the twin first: held, not handed on before 2
    assert order.offer(_action(3), 3, record=False) == []
    assert order.offer(_action(4), 4, record=False) == []
    assert _seqs(order.offer(_action(2), 2, record=True)) == [2, 3, 4]
    for s in (3, 4):  # their record copies come later: passed over
        assert order.offer(_action(s), s, record=True) == []
    assert _seqs(order.offer(_action(5), 5, record=False)) == [5]


def test_the_record_sets_where_an_unknown_stream_stands() -> None:
    """After a restart the record's cursor redelivers from where it stands (not 1), and a twin copy of a
    stream already under way cannot say where that is: it waits."""
    order = ActionOrder()
    assert order.offer(_action(8), 8, record=False) == []
    assert _seqs(order.offer(_action(7), 7, record=True)) == [7, 8]
    assert order.offer(_action(8), 8, record=True) == []


def test_streams_are_per_job_and_epoch_and_forgotten_with_their_job() -> None:
    order = ActionOrder()
    assert _seqs(order.offer(_action(1), 1, record=False)) == [1]
    assert _seqs(order.offer(_action(1, epoch=2), 1, record=False)) == [1]  # a new epoch starts again
    assert _seqs(order.offer(_action(1, job="J2"), 1, record=True)) == [1]
    order.forget("J1")
    assert order.offer(_action(3), 3, record=False) == []  # J1 unknown again: waits for the record
    assert _seqs(order.offer(_action(2, job="J2"), 2, record=False)) == [2]


def test_past_the_hold_limit_twin_copies_are_let_go_and_the_record_brings_them() -> None:
    order = ActionOrder(hold_max=2)
    assert _seqs(order.offer(_action(1), 1, record=True)) == [1]
    for s in (3, 4, 5):
        assert order.offer(_action(s), s, record=False) == []
    got = []
    for s in (2, 3, 4, 5):
        got += _seqs(order.offer(_action(s), s, record=True))
    assert got == [2, 3, 4, 5]


def test_any_interleaving_with_any_drops_hands_on_each_action_once_in_order() -> None:
    rng = random.Random(7)
    for trial in range(300):
        n = rng.randint(1, 40)
        # Each stream is in order by itself; the twin loses some copies; the two interleave at random.
        record = [(s, True) for s in range(1, n + 1)]
        twin = [(s, False) for s in range(1, n + 1) if rng.random() > 0.3]
        merged: list[tuple[int, bool]] = []
        while record or twin:
            src = twin if twin and (not record or rng.random() < 0.6) else record
            merged.append(src.pop(0))
        order, got = ActionOrder(hold_max=rng.choice([1, 4, 256])), []
        for s, rec in merged:
            got += _seqs(order.offer(_action(s), s, record=rec))
        assert got == list(range(1, n + 1)), (trial, merged)


def test_the_number_is_read_from_the_message_properties() -> None:
    assert seq_of({topics.ACTION_SEQ: "12"}) == 12
    assert seq_of({}) is None
    assert seq_of(None) is None
    assert seq_of({topics.ACTION_SEQ: "-1"}) is None
    assert seq_of({topics.ACTION_SEQ: "x"}) is None
