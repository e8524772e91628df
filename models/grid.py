"""Where in the decision interval a job decides: the rule the health-checker and a worker's engine share.

A job decides every interval of market time. Jobs whose decisions fall together send their child orders at
one instant, and those queue behind each other through the whole pipeline (docs/PERFORMANCE.md). So each
job is given a point of the interval in the widest gap between the other live jobs' points. The
health-checker places every live job among all of them (``JobAssignment.grid``, a fraction of the
interval, kept for the job's life); a worker's engine places a job among its own only where no grid was
given (an assignment from outside the health-checker: the backtest, the RL environment, the benches).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

GRID_SPAN = 1 << 32  # the health-checker's points: an interval in 2**32 parts (``JobAssignment.grid`` * this)


def drawn(key: str, span: int) -> int:
    """A point of ``[0, span)`` drawn from ``key`` (a 64-bit BLAKE2b scaled to the span): the same for a job
    wherever it is placed, and unrelated for two jobs. Not CRC-32: it is linear, and ids that differ in
    their last characters (``J-1``, ``J-2``) landed in clusters."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest) * max(0, span) >> 64


def widest_gap_point(points: npt.NDArray[np.int64], span: int, key: str) -> int:
    """A point of the circle ``[0, span)`` in the widest gap between ``points`` (sorted, each in
    ``[0, span)``), in the gap's middle half, drawn from ``key``: points placed one after another so stay at
    least a quarter of the widest gap apart (random points clump), and two placers that do not talk (two
    workers' engines) do not pick the same point. ``points`` empty: a point drawn from ``key``."""
    if not points.size:
        return drawn(key, span)
    gaps = np.diff(points, append=points[0] + span)
    k = int(gaps.argmax())
    width, left = int(gaps[k]), int(points[k])
    return (left + width // 4 + drawn(key, width // 2)) % span
