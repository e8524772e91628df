from __future__ import annotations

import pytest

from market.book import Book, BookError, Level
from market.prices import to_float, to_units
from models import Side


def _book() -> Book:
    b = Book("AAPL")
    for px, sz in ((1_000_000, 300), (999_900, 500), (999_800, 200)):
        b.add(Side.BUY, px, sz)
    for px, sz in ((1_000_100, 400), (1_000_200, 100), (1_000_400, 900)):
        b.add(Side.SELL, px, sz)
    return b


def test_best_mid_spread_depth() -> None:
    b = _book()
    assert b.best_bid() == Level(1_000_000, 300)
    assert b.best_ask() == Level(1_000_100, 400)
    assert b.mid() == 1_000_050
    assert b.spread() == 100
    assert [lv.price for lv in b.depth(Side.BUY, 2)] == [1_000_000, 999_900]
    assert [lv.price for lv in b.depth(Side.SELL, 5)] == [1_000_100, 1_000_200, 1_000_400]


def test_imbalance_over_top_levels() -> None:
    b = _book()
    assert b.imbalance(1) == pytest.approx((300 - 400) / 700)
    assert b.imbalance(2) == pytest.approx((800 - 500) / 1300)
    assert Book("X").imbalance(3) == 0.0


def test_add_accumulates_and_reduce_removes_empty_levels() -> None:
    b = _book()
    b.add(Side.BUY, 1_000_000, 200)
    assert b.size_at(Side.BUY, 1_000_000) == 500
    b.reduce(Side.BUY, 1_000_000, 500)
    assert b.best_bid() == Level(999_900, 500)


def test_over_reduce_is_refused_and_leaves_the_book_unchanged() -> None:
    b = _book()
    with pytest.raises(BookError, match="exceeds"):
        b.reduce(Side.SELL, 1_000_100, 401)
    assert b.size_at(Side.SELL, 1_000_100) == 400
    with pytest.raises(BookError, match="no such level"):
        b.reduce(Side.SELL, 1_000_300, 1)
    with pytest.raises(BookError):
        b.add(Side.BUY, 1_000_000, 0)
    with pytest.raises(BookError):
        b.set_level(Side.BUY, 1_000_000, -5)


def test_crossed_and_locked_books_are_reported() -> None:
    b = _book()
    assert b.validate() == []
    b.add(Side.BUY, 1_000_100, 100)
    assert b.validate() == ["locked: bid == ask == 1000100"]
    b.add(Side.BUY, 1_000_200, 100)
    assert b.validate()[0].startswith("crossed")
    with pytest.raises(ValueError, match="crossed or locked"):
        b.to_tick(seq=1, ts_event=1, ts_init=1)


def test_to_tick_with_depth() -> None:
    t = _book().to_tick(seq=7, ts_event=5, ts_init=6, depth=2)
    assert (t.bid_px, t.ask_px, t.bid_sz, t.ask_sz) == (100.0, 100.01, 300, 400)
    assert [lv.px for lv in t.asks] == [100.01, 100.02]
    with pytest.raises(BookError, match="two-sided"):
        Book("X").to_tick(seq=1, ts_event=1, ts_init=1)


def test_price_units_round_trip() -> None:
    assert to_units(189.13) == 1_891_300
    assert to_float(1_891_300) == 189.13
