"""The recorded-book market: queue-aware fills from LOBSTER-format sequences written here by hand, and the
day reader's checks. Prices are LOBSTER's (dollars x 10,000); direction 1 is the bid side."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.fills import FillParams
from market.impact import ImpactParams
from market.lobster import EventType, Message, file_names, write
from market.recorded import QueueFillModel, RecordedDataError, RecordedDay, find_days, write_day
from market.venue import Venue
from models import (
    AckStatus,
    BookLevel,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    OrdType,
    Side,
    VenueCommand,
    VenueOp,
)
from tests.factories import tick

BID, ASK = 1, -1
P100, P9999, P10001, P10003 = 1_000_000, 999_900, 1_000_100, 1_000_300
NEW, CANCEL, DELETE, EXEC = EventType.NEW, EventType.CANCEL, EventType.DELETE, EventType.EXECUTE
HIDDEN, HALT = EventType.HIDDEN_EXECUTE, EventType.HALT


def msg(typ: EventType, oid: int, size: int, price: int, direction: int) -> Message:
    return Message(34_200 * 10**9, typ, oid, size, price, direction)


def book_tick(bid: float = 100.00, bid_sz: int = 500, ask: float = 100.01, ask_sz: int = 400) -> object:
    return tick(bid_px=bid, bid_sz=bid_sz, ask_px=ask, ask_sz=ask_sz,
                bids=(BookLevel(px=bid, sz=bid_sz),), asks=(BookLevel(px=ask, sz=ask_sz),))  # fmt: skip


def model(*opening: Message) -> QueueFillModel:
    fm = QueueFillModel(FillParams(impact=ImpactParams(permanent=0.0, transient=0.0)))
    for m in opening:
        fm.feed(m)
    return fm


def fills_after(fm: QueueFillModel, *events: Message) -> list[int]:
    """Feed events one by one; the quantity filled after each."""
    out = []
    for m in events:
        fm.feed(m)
        out.append(sum(e.qty for e in fm.on_tick(book_tick())))  # type: ignore[arg-type]
    return out


def opening_book() -> QueueFillModel:
    """Bids at 100.00: order 1 (300) then order 2 (200); an ask at 100.01 (order 3)."""
    return model(msg(NEW, 1, 300, P100, BID), msg(NEW, 2, 200, P100, BID), msg(NEW, 3, 400, P10001, ASK))


def test_no_fill_before_the_queue_ahead_is_gone() -> None:
    fm = opening_book()
    assert fm.limit("us", Side.BUY, 100, P100, book_tick()) == []  # type: ignore[arg-type]
    assert fm.resting["us"].queue_ahead == 500
    got = fills_after(
        fm,
        msg(EXEC, 1, 300, P100, BID),  # the front of the queue trades
        msg(EXEC, 2, 150, P100, BID),
        msg(NEW, 4, 500, P100, BID),  # joins behind us
        msg(EXEC, 2, 50, P100, BID),  # the last share ahead of us
    )
    assert got == [0, 0, 0, 0]
    assert fm.resting["us"].queue_ahead == 0
    # The next aggressor at our price reaches us before order 4, which the file says it hit.
    assert fills_after(fm, msg(EXEC, 4, 150, P100, BID)) == [100]
    assert "us" not in fm.resting


def test_partial_fills_then_the_rest() -> None:
    fm = opening_book()
    fm.limit("us", Side.BUY, 300, P100, book_tick())  # type: ignore[arg-type]
    fm.feed(msg(NEW, 4, 500, P100, BID))
    got = fills_after(fm, msg(EXEC, 1, 300, P100, BID), msg(EXEC, 2, 200, P100, BID),
                      msg(EXEC, 4, 120, P100, BID), msg(EXEC, 4, 500 - 120, P100, BID))  # fmt: skip
    assert got == [0, 0, 120, 180]
    assert "us" not in fm.resting


def test_cancels_and_deletes_ahead_move_us_up() -> None:
    fm = opening_book()
    fm.limit("us", Side.BUY, 200, P100, book_tick())  # type: ignore[arg-type]
    fm.feed(msg(NEW, 4, 300, P100, BID))  # behind us: its cancel changes nothing for us
    fm.feed(msg(DELETE, 4, 300, P100, BID))
    assert fm.resting["us"].queue_ahead == 500
    fm.feed(msg(DELETE, 1, 300, P100, BID))
    assert fm.resting["us"].queue_ahead == 200
    fm.feed(msg(CANCEL, 2, 150, P100, BID))
    assert fm.resting["us"].queue_ahead == 50
    fm.feed(msg(NEW, 5, 400, P100, BID))
    assert fills_after(fm, msg(EXEC, 2, 50, P100, BID), msg(EXEC, 5, 400, P100, BID)) == [0, 200]


def test_a_level_that_empties_leaves_us_first_and_a_trade_through_fills_us() -> None:
    fm = opening_book()
    fm.feed(msg(NEW, 6, 800, P9999, BID))  # the next level down
    fm.limit("us", Side.BUY, 300, P100, book_tick())  # type: ignore[arg-type]
    assert fills_after(fm, msg(DELETE, 1, 300, P100, BID), msg(DELETE, 2, 200, P100, BID)) == [0, 0]
    assert fm.resting["us"].queue_ahead == 0
    # The file's best bid is now 99.99: a sell that executes there went through our 100.00 first.
    assert fills_after(fm, msg(EXEC, 6, 250, P9999, BID)) == [250]
    assert fm.resting["us"].qty == 50


def test_our_order_at_a_new_price_level_has_nobody_ahead() -> None:
    fm = opening_book()
    wide = tick(bid_px=100.00, bid_sz=500, ask_px=100.03, ask_sz=400)
    assert fm.limit("us", Side.BUY, 200, P10001, wide) == []
    assert fm.resting["us"].queue_ahead == 0
    # A sell limit posted at our price would have traded with us (the file rests it: it cannot know).
    assert fills_after(fm, msg(NEW, 7, 150, P10001, ASK)) == [150]
    # A sell posted above our price does not.
    assert fills_after(fm, msg(NEW, 8, 150, P10003, ASK)) == [0]


def test_hidden_executions_and_the_other_side_never_fill_us() -> None:
    fm = opening_book()
    fm.limit("us", Side.BUY, 100, P100, book_tick())  # type: ignore[arg-type]
    fm.feed(msg(DELETE, 1, 300, P100, BID))
    fm.feed(msg(DELETE, 2, 200, P100, BID))
    got = fills_after(fm, msg(HIDDEN, 0, 500, P100, BID), msg(EXEC, 3, 400, P10001, ASK))
    assert got == [0, 0]
    assert fm.resting["us"].qty == 100


def test_orders_from_before_we_followed_the_file_are_an_anonymous_block_ahead() -> None:
    fm = model()  # nothing followed: the 500 displayed at 100.00 belong to unknown orders
    fm.limit("us", Side.BUY, 100, P100, book_tick(bid_sz=500))  # type: ignore[arg-type]
    assert fm.queues["us"].ahead_anon == 500
    fm.feed(msg(NEW, 10, 100, P100, BID))  # behind us
    got = fills_after(fm, msg(EXEC, 77, 300, P100, BID), msg(CANCEL, 78, 200, P100, BID),
                      msg(EXEC, 10, 100, P100, BID))  # fmt: skip
    assert got == [0, 0, 100]


def test_nothing_fills_during_a_halt() -> None:
    fm = opening_book()
    fm.limit("us", Side.BUY, 100, P100, book_tick())  # type: ignore[arg-type]
    fm.feed(msg(DELETE, 1, 300, P100, BID))
    fm.feed(msg(DELETE, 2, 200, P100, BID))
    fm.feed(Message(34_200 * 10**9, HALT, 0, 0, -1, -1))
    fm.feed(msg(NEW, 4, 300, P100, BID))
    assert fills_after(fm, msg(EXEC, 4, 100, P100, BID)) == [0]
    fm.feed(Message(34_200 * 10**9, HALT, 0, 0, 1, -1))
    assert fills_after(fm, msg(EXEC, 4, 100, P100, BID)) == [100]


def test_a_marketable_limit_takes_the_shown_book_first() -> None:
    fm = opening_book()
    fills = fm.limit("us", Side.BUY, 600, P10001, book_tick(ask_sz=400))  # type: ignore[arg-type]
    assert [(e.price, e.qty, e.aggressive) for e in fills] == [(P10001, 400, True)]
    assert fm.resting["us"].qty == 200  # the rest joins the bid side at 100.01, nobody ahead
    assert fm.resting["us"].queue_ahead == 0


# --- the day reader -------------------------------------------------------------------------------------
def _hand_day(folder: Path) -> tuple[Path, Path]:
    t = 36_000 * 10**9
    ms = [
        Message(t, NEW, 1, 300, P100, BID), Message(t + 1, NEW, 2, 400, P10001, ASK),
        Message(t + 2, NEW, 3, 200, P100, BID), Message(t + 3, EXEC, 1, 300, P100, BID),
        Message(t + 4, HIDDEN, 0, 100, P100, BID), Message(t + 5, DELETE, 3, 200, P100, BID),
        Message(t + 6, NEW, 4, 100, P9999, BID),
    ]  # fmt: skip
    return write(ms, folder, "TEST", "2026-01-05", 2)


def test_a_day_replays_as_ticks_and_feeds_the_fill_model(tmp_path: Path) -> None:
    m, _ = _hand_day(tmp_path)
    day = RecordedDay.read(m)
    assert (day.symbol, day.date, day.levels, day.day_volume) == ("TEST", "2026-01-05", 2, 400)
    fm = QueueFillModel()
    ticks = list(day.ticks(fm, day.first_ns, day.last_ns))
    # The first message leaves a one-sided book, and so does the delete of the last bid (message 5).
    assert [t.seq for t in ticks] == [1, 2, 3, 4, 6]
    assert ticks[2].trade_sz == 300 and ticks[2].trade_side is Side.SELL
    assert ticks[-1].bid_px == 99.99 and ticks[-1].volume == 400
    assert len(fm.live) == 2  # orders 2 and 4 are still resting


def test_day_files_with_problems_get_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordedDataError, match="no such folder"):
        find_days(tmp_path / "nope")
    with pytest.raises(RecordedDataError, match="no LOBSTER message files"):
        find_days(tmp_path)
    m, o = _hand_day(tmp_path)
    o.unlink()
    with pytest.raises(RecordedDataError, match=r"orderbook file .* is missing"):
        find_days(tmp_path)
    with pytest.raises(RecordedDataError, match=r"orderbook file .* is missing"):
        RecordedDay.read(m)
    m, o = _hand_day(tmp_path)
    m.write_text(m.read_text() + "36000.1,1,9,100\n")
    o.write_text(o.read_text() + o.read_text().splitlines()[-1] + "\n")
    with pytest.raises(
        RecordedDataError, match=r"1 malformed line\(s\): line 8: malformed: expected 6 fields"
    ):
        RecordedDay.read(m)
    with pytest.raises(RecordedDataError, match="not a LOBSTER message file name"):
        RecordedDay.read(tmp_path / "prices.csv")


def test_a_generated_day_is_consistent_and_shaped_like_a_session(tmp_path: Path) -> None:
    m, o = write_day(tmp_path, 3, "GEN", "2026-01-06", levels=5, end_s=34_200 + 1800)
    assert (m.name, o.name) == file_names("GEN", "2026-01-06", 5, 34_200_000, 36_000_000)
    day = RecordedDay.read(m)
    assert not day.problems  # every message applies to the rebuilt book and matches its orderbook row
    assert day.day_volume > 0 and day.tradable.mean() > 0.99
    types = set(day.messages[:, 1].tolist())
    assert {1, 2, 3, 4, 5} <= types
    t = (day.messages[:, 0] - 34_200 * 10**9) / 1e9
    assert (t[t < 300].size / 300) > (t[(t > 900) & (t < 1200)].size / 300)  # busier at the open


def test_a_passive_order_filled_whole_by_the_file_reaches_the_venue_and_its_client() -> None:
    fm = opening_book()
    venue = Venue(books={"AAPL": fm})
    venue.command(VenueCommand(command_id="o", op=VenueOp.OPEN, job_id="J", parent_id="P", symbol="AAPL",
                               side=Side.BUY, quantity=1000, epoch=1, ts_init=1))  # fmt: skip
    venue.on_tick(book_tick())  # type: ignore[arg-type]
    child = ChildOrderAction(
        action=ChildAction.NEW, child_id="J.1.0", job_id="J", parent_id="P", worker_id="w", epoch=1,
        symbol="AAPL", side=Side.BUY, quantity=100, ord_type=OrdType.LIMIT, limit_px=100.00, ts_event=1,
        ts_init=1,
    )  # fmt: skip
    out = venue.action(child)
    assert [type(m) for m in out] == [ChildOrderAck]
    for m in (msg(DELETE, 1, 300, P100, BID), msg(DELETE, 2, 200, P100, BID), msg(NEW, 9, 400, P100, BID),
              msg(EXEC, 9, 400, P100, BID)):  # fmt: skip
        fm.feed(m)
    out = venue.on_tick(book_tick())  # type: ignore[arg-type]
    fills = [m for m in out if isinstance(m, Fill)]
    assert [(f.qty, f.px, f.liquidity.value) for f in fills] == [(100, 100.00, "MAKER")]
    assert any(isinstance(m, ChildOrderAck) and m.status is AckStatus.DONE for m in out)
    assert not venue.jobs["J"].open and venue.jobs["J"].filled == 100
