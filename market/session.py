"""The trading session's calendar, one definition for the market, the worker, the endpoint and the tools:
US equities' regular hours (09:30 to 16:00 on the data's clock) and the arithmetic of a day in event time
(nanoseconds since the epoch; a day's midnight on that clock)."""

from __future__ import annotations

SESSION_OPEN_S = 9 * 3600 + 30 * 60
SESSION_CLOSE_S = 16 * 3600
SESSION_S = SESSION_CLOSE_S - SESSION_OPEN_S
S = 1_000_000_000
DAY_NS = 86_400 * S


def midnight_ns(ts_ns: int) -> int:
    """The midnight that starts ``ts_ns``'s day."""
    return ts_ns - ts_ns % DAY_NS


def second_of_day(ts_ns: int) -> float:
    return (ts_ns % DAY_NS) / S


def at(ts_ns: int, second: float) -> int:
    """``second`` after the midnight of ``ts_ns``'s day, in ns."""
    return midnight_ns(ts_ns) + round(second * S)


def session_close_ns(ts_ns: int) -> int:
    """The close (16:00) of ``ts_ns``'s day."""
    return at(ts_ns, SESSION_CLOSE_S)


def day_frac(ts_ns: int) -> float:
    """Fraction of the trading session gone at ``ts_ns``, clipped to [0, 1]."""
    return min(1.0, max(0.0, (second_of_day(ts_ns) - SESSION_OPEN_S) / SESSION_S))
