from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from market import lobster as lob
from models import encode
from receiver import metrics
from receiver.sources import FeedMerger, Malformed, Record, lobster, synthetic, tick_file
from tests.factories import tick

SHORT = 9 * 3600 + 32 * 60  # two minutes of session


def _feed(seqs: list[int], symbol: str = "AAPL") -> Iterator[Record]:
    return iter([tick(symbol=symbol, seq=s, ts_event=1_000 + s) for s in seqs])


def test_merger_drops_duplicates_and_fills_gaps_from_the_other_feed() -> None:
    m = FeedMerger()
    before = metrics.DUPLICATES._value.get()
    a = _feed([1, 2, 3, 5, 6, 8])  # lost 4 and 7
    b = _feed([1, 2, 4, 5, 6, 7, 8])  # lost 3
    out = [r.seq for r in m.merge(a, b) if not isinstance(r, Malformed)]
    assert out == [1, 2, 3, 4, 5, 6, 7, 8]
    assert m.duplicates == 13 - 8
    assert metrics.DUPLICATES._value.get() - before == 5


def test_one_feed_dying_loses_nothing() -> None:
    m = FeedMerger()
    a = _feed(list(range(1, 40)))  # dies after 39
    b = _feed(list(range(1, 101)))
    assert [r.seq for r in m.merge(a, b)] == list(range(1, 101))  # type: ignore[union-attr]


def test_merger_keeps_symbols_apart() -> None:
    m = FeedMerger()
    out = list(m.merge(_feed([1, 2], "AAPL"), _feed([1, 2], "MSFT")))
    assert sorted((r.symbol, r.seq) for r in out) == [("AAPL", 1), ("AAPL", 2), ("MSFT", 1), ("MSFT", 2)]  # type: ignore[union-attr]


def test_tick_file_reports_malformed_lines_with_position(tmp_path: Path) -> None:
    path = tmp_path / "ticks.jsonl"
    lines = [encode(tick(seq=1)), b"not json", encode(tick(seq=2)).replace(b'"bid_px":100.0', b'"bid_px":-1'),
             b"", encode(tick(seq=3))]  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")
    recs = list(tick_file(path))
    assert [r.seq for r in recs if not isinstance(r, Malformed)] == [1, 3]  # type: ignore[union-attr]
    bad = [r for r in recs if isinstance(r, Malformed)]
    assert [r.position for r in bad] == ["line 2", "line 3"]
    assert "malformed" in bad[0].reason and "bid_px" in bad[1].reason


def test_lobster_source_yields_ticks_and_positions_of_bad_lines(tmp_path: Path) -> None:
    m, o = lob.write(lob.generate_messages(seed=2, n=300), tmp_path, "TEST", "2026-01-02", levels=3)
    lines = m.read_text().splitlines()
    lines[50] = "bogus,line"
    m.write_text("\n".join(lines) + "\n")
    recs = list(lobster("TEST", m, o, depth=2))
    bad = [r for r in recs if isinstance(r, Malformed)]
    assert bad and bad[0].position == "line 51"
    assert sum(1 for r in recs if not isinstance(r, Malformed)) > 200


def test_synthetic_source_is_the_synthetic_market() -> None:
    recs = list(synthetic(["AAPL", "MSFT"], seed=4, depth=0, close_s=SHORT))
    assert {r.symbol for r in recs} == {"AAPL", "MSFT"}  # type: ignore[union-attr]
    assert recs == list(synthetic(["AAPL", "MSFT"], seed=4, depth=0, close_s=SHORT))
