"""``paceline bench restore``: what a restarted endpoint's read-back of one symbol's history costs against
the history's length, on a standalone of its own.

A restart reads, per symbol it trades, the executions since its earliest open job's request (and the ticks
since its earliest working parent began): ``Bus.read_all(..., published_from_ms=...)``. The history here is
fills on a ``jobs/executions.<SYMBOL>`` topic, each its own entry as the endpoint publishes them, of which
only the last ``WANTED`` were published after the time read from. Timed, same topic, interleaved: the read
as the endpoint makes it (past ``SEEK_AFTER`` earlier entries the reader seeks by publish time) and the read
that passes over every earlier entry (``seek_after=None``: how every restart read before the seek).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from models import Fill, Liquidity, Message, Side, codec, topics
from paceline.bench.stats import percentile
from paceline.ops import broker
from paceline.ops.stack import start_scratch_broker
from runtime.bus import SEEK_AFTER, Bus
from runtime.settings import Settings

WANTED = 1_000  # fills published after the time the read starts from
S = 1_000_000_000


def _fill(symbol: str, i: int) -> bytes:
    ns = 1_767_000_000 * S + i * 1_000_000
    job = f"J{i % 50}"
    return codec.encode(Fill(fill_id=f"F{i}", child_id=f"{job}.1.{i}", job_id=job, parent_id=f"P{i % 50}",
                             symbol=symbol, side=Side.BUY, qty=100, px=187.25, liquidity=Liquidity.MAKER,
                             ts_event=ns, ts_init=ns))  # fmt: skip


def _publish(bus: Bus, topic: str, symbol: str, start: int, count: int) -> None:
    """``count`` fills, unbatched (each its own entry, as the endpoint's executions are)."""
    raw = bus._client.create_producer(topic, batching_enabled=False, block_if_queue_full=True)
    try:
        for i in range(start, start + count):
            raw.send_async(_fill(symbol, i), None)
        raw.flush()
    finally:
        raw.close()


def run(settings: Settings, *, lengths: Sequence[int], rounds: int = 3) -> int:
    print(f"one symbol's executions: the last {WANTED:,} wanted; seek after {SEEK_AFTER:,} passed over")
    head = ("entries", "as the endpoint reads (s)", "passing over each (s)", "kept")
    print(f"{head[0]:>9s} {head[1]:>27s} {head[2]:>23s} {head[3]:>6s}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-restore-")))
        cfg = start_scratch_broker(tmp / "broker", settings.cache_dir)
        stack.callback(broker.stop, cfg)
        bus = stack.enter_context(Bus(cfg.service_url, quiet=True))
        for length in sorted(lengths):
            symbol = f"R{uuid.uuid4().hex[:5].upper()}"
            topic = topics.job_executions(symbol)
            _publish(bus, topic, symbol, 0, max(0, length - WANTED))
            time.sleep(0.05)  # the wanted ones are published from a later millisecond on
            since = int(time.time() * 1000)
            _publish(bus, topic, symbol, length - WANTED, min(WANTED, length))
            seeking: list[float] = []
            passing: list[float] = []
            kept = 0
            for _ in range(rounds):
                for times, seek_after in ((seeking, SEEK_AFTER), (passing, None)):
                    t = time.perf_counter()
                    got = bus.read_all(topic, Message, published_from_ms=since, seek_after=seek_after)
                    times.append(time.perf_counter() - t)
                    if kept and len(got) != kept:
                        print(f"the two reads disagree: {len(got)} against {kept}")
                        return 1
                    kept = len(got)
            print(f"{length:9,d} {_cell(seeking):>27s} {_cell(passing):>23s} {kept:6,d}")
    print("(each cell: the median and the range of the rounds, interleaved on the same topic)")
    return 0


def _cell(times: list[float]) -> str:
    return f"{percentile(times, 0.5):.2f} ({min(times):.2f}-{max(times):.2f})"
