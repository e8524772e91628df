"""Prices inside market/ are integers in units of 1/10,000 of a currency unit (LOBSTER's convention), so
book keys compare exactly; messages on the bus carry floats rounded to the tick grid."""

from __future__ import annotations

import numpy as np

PX_SCALE = 10_000
CENT = 100  # one cent in price units: the US equity tick size above $1


def to_units(px: float) -> int:
    return round(px * PX_SCALE)


def to_units_array(px: np.ndarray) -> np.ndarray:
    """``to_units`` of each price, as float64 (the same product, rounded half to even as ``round``; exact
    integers at these sizes); NaN (no price) stays NaN."""
    out: np.ndarray = np.rint(px * PX_SCALE)
    return out


def to_float(units: int) -> float:
    return units / PX_SCALE
