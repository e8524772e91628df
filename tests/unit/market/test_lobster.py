from __future__ import annotations

from pathlib import Path

import pytest

from market import lobster
from market.lobster import EMPTY_ASK, EMPTY_BID, EventType, Malformed, Replay


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    msgs = lobster.generate_messages(seed=11, n=3000, halt_at=1500)
    return lobster.write(msgs, tmp_path, "TEST", "2026-11-23", levels=5)


def test_names_follow_lobster_convention(files: tuple[Path, Path]) -> None:
    assert files[0].name == "TEST_2026-11-23_34200000_57600000_message_5.csv"
    assert files[1].name == "TEST_2026-11-23_34200000_57600000_orderbook_5.csv"


def test_replay_rebuilds_the_book_exactly(files: tuple[Path, Path]) -> None:
    rp = Replay("TEST", *files)
    events = list(rp)
    assert rp.stats.messages == len(events) > 3000
    assert rp.stats.mismatches == 0 and rp.stats.inconsistent == 0 and rp.stats.malformed == 0
    assert rp.stats.halts == 3
    assert rp.stats.trades > 0
    assert rp.book.validate() == []


def test_levels_inferred_from_any_row_width(tmp_path: Path) -> None:
    msgs = lobster.generate_messages(seed=3, n=500)
    for levels in (1, 3, 10):
        m, o = lobster.write(msgs, tmp_path / str(levels), "TEST", "2026-11-23", levels=levels)
        rp = Replay("TEST", m, o)
        list(rp)
        assert rp.stats.mismatches == 0, levels
        assert len(o.read_text().splitlines()[0].split(",")) == 4 * levels


def test_empty_level_sentinels(tmp_path: Path) -> None:
    msgs = lobster.generate_messages(seed=5, n=20)
    _, o = lobster.write(msgs[:1], tmp_path, "TEST", "2026-11-23", levels=10)
    row = [int(v) for v in o.read_text().split(",")]
    # one order in the book: every other level holds a sentinel with size 0
    assert row.count(EMPTY_ASK) + row.count(EMPTY_BID) == 19
    book = lobster.Book("TEST")
    lobster.load_row(book, row)
    assert book.levels(lobster.Side.BUY) + book.levels(lobster.Side.SELL) == 1


def test_halt_suppresses_ticks_until_trading_resumes(files: tuple[Path, Path]) -> None:
    rp = Replay("TEST", *files)
    seqs = {t.seq for t in rp.ticks()}
    lines = files[0].read_text().splitlines()
    halt_lines = [i + 1 for i, line in enumerate(lines) if line.split(",")[1] == str(int(EventType.HALT))]
    assert len(halt_lines) == 3
    assert not seqs & set(halt_lines[:2])  # halted and quoting-only: no ticks
    assert any(s > halt_lines[2] for s in seqs)


def test_hidden_execution_prints_a_trade_without_touching_the_book(tmp_path: Path) -> None:
    msgs = lobster.generate_messages(seed=11, n=400)
    hidden = next(i for i, m in enumerate(msgs) if m.type is EventType.HIDDEN_EXECUTE)
    m, o = lobster.write(msgs[: hidden + 1], tmp_path, "TEST", "2026-11-23", levels=5)
    rp = Replay("TEST", m, o)
    events = list(rp)
    assert events[-1].trade_size == msgs[hidden].size and rp.stats.mismatches == 0
    rows = o.read_text().splitlines()
    assert rows[-1] == rows[-2]


def test_ticks_carry_trades_and_cumulative_volume(files: tuple[Path, Path]) -> None:
    ticks = list(Replay("TEST", *files).ticks(day_start_ns=1_000, depth=3))
    trades = [t for t in ticks if t.trade_sz]
    assert trades and all(t.trade_px is not None for t in trades)
    vols = [t.volume for t in ticks]
    assert vols == sorted(vols)
    assert all(t.bid_px < t.ask_px for t in ticks)
    assert all(len(t.bids) <= 3 for t in ticks)
    first_line = files[0].read_text().splitlines()[ticks[0].seq - 1]
    assert ticks[0].ts_event == 1_000 + lobster.parse_time_ns(first_line.split(",")[0])


def test_a_corrupted_row_is_detected_and_resynchronised(files: tuple[Path, Path]) -> None:
    m, o = files
    rows = o.read_text().splitlines()
    vals = rows[100].split(",")
    vals[1] = str(int(vals[1]) + 100)  # best ask size off by 100
    rows[100] = ",".join(vals)
    o.write_text("\n".join(rows) + "\n")
    rp = Replay("TEST", m, o)
    list(rp)
    # The bad row differs from the rebuilt book; the next row differs from the resynced (wrong) book.
    assert 1 <= rp.stats.mismatches <= 2
    assert "line 101" in rp.stats.problems[0]


def test_malformed_lines_are_counted_with_position_and_skipped(files: tuple[Path, Path]) -> None:
    m, _ = files
    lines = m.read_text().splitlines()
    lines[10] = "garbage"
    lines[20] = "34200.1,9,1,100,1000000,1"  # unknown type
    lines[30] = "34200.1,1,1,-100,1000000,1"  # negative size
    lines[40] = "34200.1,1,1,100,1000000,0"  # bad direction
    m.write_text("\n".join(lines) + "\n")
    recs = list(lobster.read_messages(m))
    bad = [r for r in recs if isinstance(r, Malformed)]
    assert [r.line for r in bad] == [11, 21, 31, 41]
    rp = Replay("TEST", m)  # no orderbook file: no checking, no crash
    list(rp)
    assert rp.stats.malformed == 4
    assert rp.stats.problems[0].startswith("line 11")


def test_time_parse_is_exact() -> None:
    assert lobster.parse_time_ns("34200.004241176") == 34_200_004_241_176
    assert lobster.parse_time_ns("34200") == 34_200 * 10**9
    assert lobster.parse_time_ns("34200.5") == 34_200_500_000_000
    with pytest.raises(ValueError):
        lobster.parse_time_ns("-1.5")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("34200.004241176", 34_200_004_241_176),
        ("43002.632812672004", 43_002_632_812_672),  # a float's digits, as recorded files print them
        ("43002.6328126725", 43_002_632_812_673),  # half up
        ("1.9999999996", 2_000_000_000),  # the rounding carries into the seconds
        ("34200", 34_200_000_000_000),
    ],
)
def test_times_with_more_than_nine_decimals_are_rounded_to_the_nanosecond(text: str, ns: int) -> None:
    assert lobster.parse_time_ns(text) == ns
    m = lobster.parse_message(f"{text},1,7,100,1000000,1", 1)
    assert not isinstance(m, Malformed) and m.time_ns == ns


def _cut(tmp_path: Path, msgs: list[lobster.Message], levels: int, cut: int) -> tuple[Path, Path]:
    """A level-``levels`` file pair that starts after ``cut`` messages: orders placed before it are known
    only through the rows, as in a recorded file."""
    m_full, o_full = lobster.write(msgs, tmp_path / "full", "TEST", "2026-11-23", levels=levels)
    for name, path in (("m.csv", m_full), ("o.csv", o_full)):
        (tmp_path / name).write_text("".join(path.read_text().splitlines(keepends=True)[cut:]))
    return tmp_path / "m.csv", tmp_path / "o.csv"


def test_a_level_from_beyond_the_files_depth_is_not_a_mismatch(tmp_path: Path) -> None:
    """When a shown level empties, the next one appears from beyond the file's depth: the rebuilt book
    cannot know it, takes it from the row, and a consistent file reports no mismatch; a cancel of orders
    the book never saw (beyond the depth) is not an inconsistency either."""
    new, delete = EventType.NEW, EventType.DELETE
    ask, bid = -1, 1
    before = [  # the book before the file starts: four ask levels and two bid levels
        lobster.Message(1, new, 1, 100, 1_000_100, ask),
        lobster.Message(2, new, 2, 200, 1_000_200, ask),
        lobster.Message(3, new, 3, 300, 1_000_300, ask),
        lobster.Message(4, new, 4, 100, 999_900, bid),
        lobster.Message(5, new, 5, 200, 999_800, bid),
        lobster.Message(6, new, 6, 500, 1_000_500, ask),
    ]
    during = [
        lobster.Message(7, new, 7, 100, 999_900, bid),  # the file starts here: its first row is the book
        lobster.Message(8, delete, 1, 100, 1_000_100, ask),  # 100.01 empties: 100.03 appears from beyond
        lobster.Message(9, new, 8, 100, 1_000_500, ask),  # joins 500 the book never saw
        lobster.Message(10, delete, 6, 500, 1_000_500, ask),  # more than the book knows at 100.05
        lobster.Message(11, delete, 2, 200, 1_000_200, ask),  # 100.05 appears (100 left there)
    ]
    m, o = _cut(tmp_path, before + during, levels=2, cut=len(before))
    rp = Replay("TEST", m, o)
    list(rp)
    assert rp.stats.mismatches == 0 and rp.stats.inconsistent == 0, rp.stats.problems
    assert rp.stats.beyond_depth >= 2
    assert [(lv.price, lv.size) for lv in rp.book.depth(lobster.Side.SELL, 2)] == [
        (1_000_300, 300),
        (1_000_500, 100),
    ]

    # A generated day cut in the middle: consistent, so no mismatch and nothing inconsistent.
    m, o = _cut(tmp_path / "gen", lobster.generate_messages(seed=21, n=4000), levels=2, cut=1500)
    rp = Replay("TEST", m, o)
    list(rp)
    assert rp.stats.mismatches == 0 and rp.stats.inconsistent == 0 and rp.stats.beyond_depth > 0

    # A real disagreement on a level the book knows still counts.
    rows = o.read_text().splitlines()
    vals = rows[600].split(",")
    vals[1] = str(int(vals[1]) + 100)  # best ask size wrong on one row
    rows[600] = ",".join(vals)
    o.write_text("\n".join(rows) + "\n")
    rp = Replay("TEST", m, o)
    list(rp)
    assert 1 <= rp.stats.mismatches <= 2 and "line 601" in rp.stats.problems[0]
