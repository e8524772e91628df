"""The session calendar (``market.session``)."""

from __future__ import annotations

from market.session import (
    DAY_NS,
    SESSION_CLOSE_S,
    SESSION_OPEN_S,
    at,
    day_frac,
    midnight_ns,
    session_close_ns,
)
from market.synthetic import DEFAULT_DAY_NS


def test_day_arithmetic() -> None:
    t = DEFAULT_DAY_NS + 10 * 3600 * 1_000_000_000 + 5
    assert (
        midnight_ns(t) == DEFAULT_DAY_NS and midnight_ns(DEFAULT_DAY_NS + DAY_NS) == DEFAULT_DAY_NS + DAY_NS
    )
    assert session_close_ns(t) == at(t, SESSION_CLOSE_S) == DEFAULT_DAY_NS + SESSION_CLOSE_S * 1_000_000_000
    assert day_frac(at(t, SESSION_OPEN_S)) == 0.0 and day_frac(at(t, SESSION_CLOSE_S)) == 1.0
    assert day_frac(at(t, 8 * 3600)) == 0.0 and day_frac(at(t, 17 * 3600)) == 1.0
    assert abs(day_frac(at(t, (SESSION_OPEN_S + SESSION_CLOSE_S) / 2)) - 0.5) < 1e-12
