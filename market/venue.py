"""The simulated exchange: child orders matched against the live book with the shared fill model.

Pure logic, no I/O: the endpoint service feeds it ticks, child-order actions and the saga's commands, and
publishes what it returns; the RL environment and the backtest (``worker.sim``) drive the same class, so
a policy is trained and measured against the venue it trades on. Guarantees the brief's promises at
the last point before a trade:

- idempotent per child order id: a NEW seen before is ignored, so a re-sent order never trades twice;
- epoch fencing: after FENCE(e) an action of an epoch below ``e`` is refused, and every open order of an
  older epoch is cancelled, so a worker that was only cut off (a zombie) cannot trade;
- a job never over-executes: a NEW whose quantity exceeds the parent's quantity less what is filled and
  what is still open is refused;
- fill ids are ``<child id>.<n>``: unique and stable, so every consumer can count a fill exactly once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from market.fills import Execution, FillModel, FillParams
from market.prices import to_float, to_units
from models import (
    AckStatus,
    ChildAction,
    ChildOrderAck,
    ChildOrderAction,
    Fill,
    Liquidity,
    Message,
    OrdType,
    Tick,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    now_ns,
)


@dataclass
class VenueJob:
    job_id: str
    parent_id: str
    symbol: str
    quantity: int
    min_epoch: int
    client_id: str | None = None
    filled: int = 0
    closed: bool = False
    open: set[str] = field(default_factory=set)  # child ids with leaves


@dataclass
class VenueOrder:
    action: ChildOrderAction
    leaves: int
    filled: int = 0
    fills: int = 0

    @property
    def epoch(self) -> int:
        return self.action.epoch


class Venue:
    def __init__(self, params: FillParams | None = None, books: dict[str, FillModel] | None = None) -> None:
        """``books`` overrides the fill model per symbol (a recorded book's queue-aware one)."""
        self.params = params
        self.jobs: dict[str, VenueJob] = {}
        self.orders: dict[str, VenueOrder] = {}
        self.books: dict[str, FillModel] = dict(books or {})
        self.last: dict[str, Tick] = {}
        self.refused: Counter[str] = Counter()
        self.duplicates = 0
        self.known: set[str] = set()  # child ids from before a restart: never traded again

    # --- the saga's commands ----------------------------------------------------------------------------
    def command(self, cmd: VenueCommand) -> list[Message]:
        job = self.jobs.get(cmd.job_id)
        if job is None:
            job = self.jobs[cmd.job_id] = VenueJob(
                cmd.job_id,
                cmd.parent_id,
                cmd.symbol,
                cmd.quantity,
                min_epoch=cmd.epoch,
                client_id=cmd.client_id,
            )
        if cmd.op is VenueOp.OPEN:
            job.quantity = cmd.quantity  # an amendment changes it (the saga never sets it below filled)
        out: list[Message] = []
        canceled: list[str] = []
        if cmd.op is not VenueOp.OPEN:
            job.min_epoch = max(job.min_epoch, cmd.epoch)
            job.closed = job.closed or cmd.op is VenueOp.CLOSE
            for child_id in sorted(job.open):
                order = self.orders[child_id]
                if job.closed or order.epoch < job.min_epoch:
                    out += self._cancel(job, order, "fenced" if not job.closed else "job closed")
                    canceled.append(child_id)
        self._forget(job)
        out.append(
            VenueCommandAck(
                command_id=cmd.command_id,
                op=cmd.op,
                job_id=job.job_id,
                parent_id=job.parent_id,
                epoch=job.min_epoch,
                filled=job.filled,
                canceled=tuple(canceled),
                ts_init=now_ns(),
            )
        )
        return out

    def _forget(self, job: VenueJob) -> None:
        """A closed job with nothing open never trades again (its actions are refused before its orders
        are looked up): its orders leave memory."""
        if job.closed and not job.open:
            for child_id in [c for c, o in self.orders.items() if o.action.job_id == job.job_id]:
                del self.orders[child_id]

    # --- child orders -----------------------------------------------------------------------------------
    def action(self, a: ChildOrderAction) -> list[Message]:
        job = self.jobs.get(a.job_id)
        if job is None:
            return [self._reject(a, "unknown_job", f"job {a.job_id} is not open at this venue")]
        if a.epoch < job.min_epoch:
            return [self._reject(a, "stale_epoch", f"epoch {a.epoch} < current {job.min_epoch}")]
        if job.closed:
            return [self._reject(a, "job_closed", f"job {a.job_id} is closed")]
        if a.action is ChildAction.NEW:
            return self._new(job, a)
        order = self.orders.get(a.child_id)
        if order is None or a.child_id not in job.open:
            # Already filled or cancelled: nothing to do (the ack says so; FIX would answer 35=9).
            return [self._reject(a, "not_open", f"child {a.child_id} is not open")]
        if a.action is ChildAction.CANCEL:
            return self._cancel(job, order, None)
        return self._replace(job, order, a)

    def _new(self, job: VenueJob, a: ChildOrderAction) -> list[Message]:
        if a.child_id in self.orders or a.child_id in self.known:
            self.duplicates += 1
            return []  # the same child order again: it already traded (or rests) once
        if a.symbol != job.symbol:
            return [self._reject(a, "wrong_symbol", f"{a.symbol} is not the job's {job.symbol}")]
        room = job.quantity - job.filled - sum(self.orders[c].leaves for c in job.open)
        if a.quantity > room:
            return [self._reject(a, "over_execution", f"{a.quantity} > room {room} of {job.quantity}")]
        tick = self.last.get(a.symbol)
        if tick is None:
            return [self._reject(a, "no_market", f"no market data for {a.symbol} yet")]
        order = self.orders[a.child_id] = VenueOrder(a, leaves=a.quantity)
        job.open.add(a.child_id)
        return self._place(job, order, tick)

    def _place(self, job: VenueJob, order: VenueOrder, tick: Tick) -> list[Message]:
        a = order.action
        fm = self._book(a.symbol)
        if a.ord_type is OrdType.MARKET:
            execs = fm.market(a.child_id, a.side, order.leaves, tick)
        else:
            execs = fm.limit(a.child_id, a.side, order.leaves, to_units(a.limit_px or 0.0), tick)
        out: list[Message] = [self._fill(job, order, e, tick.ts_event) for e in execs]
        if order.leaves and a.ord_type is OrdType.MARKET:
            # The book ran out within the walk limit: the remainder expires like an IOC's.
            order.leaves = 0
            job.open.discard(a.child_id)
            out.append(self._ack(order, AckStatus.DONE, tick.ts_event, "market remainder expired"))
        elif order.leaves:
            out.append(self._ack(order, AckStatus.ACCEPTED, tick.ts_event))
        return out

    def _replace(self, job: VenueJob, order: VenueOrder, a: ChildOrderAction) -> list[Message]:
        new_leaves = a.quantity - order.filled
        others = sum(self.orders[c].leaves for c in job.open if c != a.child_id)
        if new_leaves <= 0 or new_leaves > job.quantity - job.filled - others:
            return [self._reject(a, "bad_replace", f"new quantity {a.quantity} with {order.filled} filled")]
        tick = self.last[a.symbol]
        self._book(a.symbol).cancel(a.child_id)
        order.action = a.model_copy(update={"action": ChildAction.NEW})
        order.leaves = new_leaves
        out = self._place(job, order, tick)
        return [self._ack(order, AckStatus.REPLACED, tick.ts_event), *out]

    def _cancel(self, job: VenueJob, order: VenueOrder, reason: str | None) -> list[Message]:
        self._book(order.action.symbol).cancel(order.action.child_id)
        order.leaves = 0
        job.open.discard(order.action.child_id)
        tick = self.last.get(order.action.symbol)
        return [
            self._ack(order, AckStatus.CANCELED, tick.ts_event if tick else order.action.ts_event, reason)
        ]

    # --- restart ---------------------------------------------------------------------------------------
    def restore(self, job_id: str, history: list[Message]) -> list[Message]:
        """Rebuild a job after a restart from what this venue published on the job's executions topic.

        Every child id seen becomes known (a redelivered NEW never trades twice), the job's filled quantity
        is the sum of its fills, and orders that were resting are cancelled (this venue does not keep its
        book across a restart, like an exchange's cancel-on-disconnect): the returned acks tell the worker.
        """
        job = self.jobs[job_id]
        leaves: dict[str, int] = {}
        epochs: dict[str, int] = {}
        fills: set[str] = set()
        filled = 0
        for m in history:
            if isinstance(m, Fill) and m.fill_id not in fills:
                fills.add(m.fill_id)
                filled += m.qty
                self.known.add(m.child_id)
                leaves[m.child_id] = max(0, leaves.get(m.child_id, 0) - m.qty)
            elif isinstance(m, ChildOrderAck):
                self.known.add(m.child_id)
                epochs[m.child_id] = m.epoch
                resting = m.status in (AckStatus.ACCEPTED, AckStatus.REPLACED)
                leaves[m.child_id] = m.leaves_qty if resting else 0
        job.filled = max(job.filled, filled)
        out: list[Message] = []
        for child_id, left in sorted(leaves.items()):
            if left > 0:
                out.append(ChildOrderAck(
                    child_id=child_id, job_id=job_id, epoch=epochs.get(child_id, job.min_epoch),
                    status=AckStatus.CANCELED, reason="venue restarted: resting order cancelled",
                    leaves_qty=0,
                    ts_event=self.last[job.symbol].ts_event if job.symbol in self.last else now_ns(),
                    ts_init=now_ns(),
                ))  # fmt: skip
        return out

    # --- market data ------------------------------------------------------------------------------------
    def on_tick(self, tick: Tick) -> list[Message]:
        self.last[tick.symbol] = tick
        fm = self._book(tick.symbol)
        fm.observe(tick)
        out: list[Message] = []  # asked even with nothing resting: a recorded book's fills come from its feed
        for e in fm.on_tick(tick):
            order = self.orders[e.order_id]
            job = self.jobs[order.action.job_id]
            out.append(self._fill(job, order, e, tick.ts_event))
            if not order.leaves:
                out.append(self._ack(order, AckStatus.DONE, tick.ts_event))
        return out

    # --- building messages ------------------------------------------------------------------------------
    def _book(self, symbol: str) -> FillModel:
        fm = self.books.get(symbol)
        if fm is None:
            fm = self.books[symbol] = FillModel(self.params)
        return fm

    def _fill(self, job: VenueJob, order: VenueOrder, e: Execution, ts_event: int) -> Fill:
        a = order.action
        order.fills += 1
        order.filled += e.qty
        order.leaves -= e.qty
        job.filled += e.qty
        if order.leaves == 0:
            job.open.discard(a.child_id)
        return Fill(
            fill_id=f"{a.child_id}.{order.fills}", child_id=a.child_id, job_id=a.job_id,
            parent_id=a.parent_id, symbol=a.symbol, side=a.side, qty=e.qty, px=to_float(e.price),
            liquidity=Liquidity.TAKER if e.aggressive else Liquidity.MAKER, ts_event=ts_event,
            ts_init=now_ns(),
        )  # fmt: skip

    def _ack(
        self, order: VenueOrder, status: AckStatus, ts_event: int, reason: str | None = None
    ) -> ChildOrderAck:
        a = order.action
        return ChildOrderAck(
            child_id=a.child_id, job_id=a.job_id, epoch=a.epoch, status=status, reason=reason,
            leaves_qty=order.leaves, ts_event=ts_event, ts_init=now_ns(),
        )  # fmt: skip

    def _reject(self, a: ChildOrderAction, reason: str, text: str) -> ChildOrderAck:
        self.refused[reason] += 1
        return ChildOrderAck(
            child_id=a.child_id, job_id=a.job_id, epoch=a.epoch, status=AckStatus.REJECTED,
            reason=f"{reason}: {text}", leaves_qty=0, ts_event=a.ts_event, ts_init=now_ns(),
        )  # fmt: skip
