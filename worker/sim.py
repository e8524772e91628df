"""The live decision path run over recorded or simulated ticks: the worker's ``Engine`` against the shared
``Venue``, with no bus between them. The RL environment steps through it and the backtest runs it, so a
policy is trained and measured on exactly what the live worker would send.

Order of events on each tick: the child orders whose arrival time has come reach the venue first (they meet
the book as it stood before this event: an order arriving between two events is matched on the earlier
state and joins a queue after the later event, never ahead of it), then the venue sees the tick (resting
orders may fill, the fills reach the engine), then the engine decides on it. What the engine sends arrives
``latency_ns`` later (default ``ORDER_LATENCY_NS``, a few ms: decision to venue); with zero latency it is
matched at once, before the next tick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from market.costs import shortfall_bps, traded, vwap, vwap_slippage_bps
from market.venue import Venue
from models import (
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    JobAssignment,
    Liquidity,
    Message,
    ParentOrder,
    Strategy,
    Tick,
    VenueCommand,
    VenueOp,
)
from worker.engine import Engine, Job
from worker.policy import Agent, Policy
from worker.policy_files import LoadedPolicy

SIM_WORKER = "sim"
ORDER_LATENCY_NS = 5_000_000  # decision -> venue: a co-located path is ~0.1-1 ms, ours over Pulsar a few


def assignment(parent: ParentOrder, job_id: str | None = None) -> JobAssignment:
    """The first (epoch 1) assignment of a parent to the simulation's worker."""
    return JobAssignment(
        job_id=job_id or f"{parent.parent_id}.job",
        worker_id=SIM_WORKER,
        epoch=1,
        parent=parent,
        quantity=parent.quantity,
        ts_init=parent.ts_init,
    )


def parent_order(
    symbol: str, side: str, quantity: int, start_ns: int, end_ns: int, *, name: str = "sim",
    strategy: Strategy = Strategy.TWAP, participation_rate: float | None = None,
) -> ParentOrder:  # fmt: skip
    if strategy is Strategy.POV and participation_rate is None:
        participation_rate = 0.1
    return ParentOrder(
        parent_id=f"P-{name}",
        client_id="backtest",
        cl_ord_id=name,
        symbol=symbol,
        side=side,
        quantity=quantity,
        start_ns=start_ns,
        end_ns=end_ns,
        strategy=strategy,
        participation_rate=participation_rate,
        ts_init=start_ns,
    )


@dataclass
class Simulation:
    """One job worked from its assignment to its end over ``ticks``."""

    engine: Engine
    venue: Venue
    ticks: Iterator[Tick]
    sent: list[ChildOrderAction] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    fill_mids: list[float] = field(default_factory=list)  # the mid when each fill happened
    last: Tick | None = None
    exhausted: bool = False
    latency_ns: int = ORDER_LATENCY_NS
    _pending: Tick | None = None
    _in_flight: deque[tuple[int, ChildOrderAction]] = field(default_factory=deque)  # (arrival ns, action)

    @classmethod
    def start(
        cls,
        a: JobAssignment,
        ticks: Iterable[Tick],
        policy: Policy | LoadedPolicy | Agent | None = None,
        *,
        decision_s: int = 30,
        venue: Venue | None = None,
        latency_ns: int = ORDER_LATENCY_NS,
    ) -> Simulation:
        engine = Engine(SIM_WORKER, decision_s=decision_s)
        venue = venue or Venue()
        p = a.parent
        venue.command(VenueCommand(
            command_id=f"{a.job_id}.open", op=VenueOp.OPEN, job_id=a.job_id, parent_id=p.parent_id,
            symbol=p.symbol, side=p.side, quantity=a.quantity, epoch=a.epoch, ts_init=a.ts_init,
        ))  # fmt: skip
        if not engine.assign(a, policy):
            raise ValueError(f"assignment of {a.job_id} refused")
        return cls(engine, venue, iter(ticks), latency_ns=latency_ns)

    @property
    def job(self) -> Job:
        (job,) = self.engine.jobs.values()
        return job

    @property
    def done(self) -> bool:
        """The job has sent its end-of-window sweep and nothing of it is open, or the data ran out."""
        job = self.job
        return (job.finished and not job.open) or job.filled >= job.quantity or self.exhausted

    def advance(self) -> bool:
        """Run ticks until the agent's job is due (True) or the job is done (False)."""
        job_id = self.job.job_id
        while not self.done:
            if job_id in self.engine.awaiting:
                return True
            tick = self._next()
            if tick is None:
                break
            self.on_tick(tick)
        return False

    def run_to(self, ts_ns: int) -> None:
        """Run ticks up to and including event time ``ts_ns`` (a job that decides by itself)."""
        while not self.done:
            tick = self._next()
            if tick is None:
                return
            if tick.ts_event > ts_ns:
                self._pending = tick
                return
            self.on_tick(tick)

    def _next(self) -> Tick | None:
        tick, self._pending = self._pending, None
        if tick is None:
            tick = next(self.ticks, None)
        if tick is None:
            self.exhausted = True
        return tick

    def run(self) -> None:
        """Run a job whose policy decides by itself to its end."""
        if self.advance():
            raise RuntimeError("an agent's job is decided from outside: use advance() and Engine.act")

    def on_tick(self, tick: Tick) -> None:
        while self._in_flight and self._in_flight[0][0] <= tick.ts_event:
            self._deliver(self.venue.action(self._in_flight.popleft()[1]))
        self.last = tick
        self._deliver(self.venue.on_tick(tick))
        self.route(self.engine.on_tick(tick))

    def route(self, actions: list[ChildOrderAction]) -> None:
        """Send the engine's actions: at once with zero latency, else in flight until they arrive."""
        for a in actions:
            self.sent.append(a)
            if self.latency_ns <= 0 or self.last is None:
                self._deliver(self.venue.action(a))
            else:
                self._in_flight.append((self.last.ts_event + self.latency_ns, a))

    def _deliver(self, messages: list[Message]) -> None:
        for m in messages:
            if isinstance(m, Fill):
                self.fills.append(m)
                self.fill_mids.append(self.last.mid if self.last is not None else m.px)
                self.engine.on_fill(m)
            elif isinstance(m, ChildOrderAck):
                self.engine.on_ack(m)

    # --- the episode's figures ------------------------------------------------------------------------
    def summary(self) -> dict[str, object]:
        job = self.job
        p = job.assignment.parent
        filled, notional = traded(self.fills)
        avg = vwap(notional, filled) or 0.0
        arrival = job.features.arrival_mid
        end_mid = self.last.mid if self.last is not None else None
        market_volume = job.features.market_volume
        return {
            "symbol": p.symbol,
            "side": p.side.value,
            "quantity": job.quantity,
            "filled": filled,
            "completed": filled >= job.quantity,
            "avg_px": avg,
            "arrival_mid": arrival or 0.0,
            "end_mid": end_mid or 0.0,
            "is_bps": shortfall_bps(
                p.side, arrival, quantity=job.quantity, filled=filled, notional=notional, end_mid=end_mid
            )
            if arrival
            else 0.0,
            "vwap_slippage_bps": vwap_slippage_bps(p.side, avg, job.features.interval_vwap) or 0.0,
            "participation": filled / market_volume if market_volume else 0.0,
            "children": sum(a.action is ChildAction.NEW for a in self.sent),
            "passive_share": (
                sum(f.qty for f in self.fills if f.liquidity is Liquidity.MAKER) / filled if filled else 0.0
            ),
        }
