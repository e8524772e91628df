"""The parent-order saga: accept -> open at the venue -> assign to a worker, each step with its
compensation registered first; fills counted once; failures handled by unwinding the stack.

Stack (bottom to top) while a job is worked: ``close_parent`` (undo accept: the client's final report),
``fence_venue`` (undo the venue job: FENCE or CLOSE it and wait for the venue's confirmation, which
cancels every open child order of the fenced epochs), ``revoke_worker`` (undo the assignment: a revoked
assignment under epoch + 1).

- worker lost: revoke, fence (confirmed), re-register the fence, assign the remainder under the new epoch;
- amend (quantity, limit, end): the same, applying the change once the fence has fixed the filled quantity;
- client cancel, end of the window, no worker in time, or filled: revoke, close at the venue (confirmed),
  close the parent with its final report (none when it is already FILLED: terminal states are final).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from health_checker import saga_events as ev
from market.costs import vwap
from market.session import DAY_NS
from models import (
    AckTrace,
    AmendRequest,
    CancelRequest,
    ExecType,
    ExecutionReport,
    Fill,
    JobAssignment,
    JobRequest,
    OrdStatus,
    ParentOrder,
    RequestKind,
    RequestReject,
    VenueCommand,
    VenueCommandAck,
    VenueOp,
    new_report,
    now_ns,
    policy_name,
    topics,
)
from saga import WALL, Context, Saga, SagaCompleted, SagaPayload, Timer, effect

REVOKE, FENCE, CLOSE_PARENT = "revoke_worker", "fence_venue", "close_parent"
WORKER_LOST, AMEND = "worker_lost", "amend"
INTERRUPTIONS = (WORKER_LOST, AMEND)  # fence, then resume under a new epoch
# Reasons that end the parent; the first one wins. A lost worker only interrupts it.
FINAL: dict[str, tuple[ExecType, OrdStatus, str]] = {
    "cancel": (ExecType.CANCELED, OrdStatus.CANCELED, "canceled by the client"),
    "window_end": (ExecType.DONE_FOR_DAY, OrdStatus.DONE_FOR_DAY, "end of the order's window"),
    "no_worker": (ExecType.EXPIRED, OrdStatus.EXPIRED, "no worker could take the job in time"),
    "filled": (ExecType.TRADE, OrdStatus.FILLED, "filled"),
    "stale_market": (ExecType.EXPIRED, OrdStatus.EXPIRED,
                     "no market data: the symbol's data stopped, expired on the wall clock after the window"),
}  # fmt: skip


@dataclass(frozen=True)
class Placing:
    """Where a job goes: ``worker(policy)``, a worker that can run the policy now (None: none can), and
    ``grid(job_id)``, where in the decision interval the job decides, among every live job's grid
    (``JobAssignment.grid``; asked once per job, kept through reassignments)."""

    worker: Callable[[str], str | None]
    grid: Callable[[str], float]


Ctx = Context["ParentSaga"]


@dataclass(frozen=True)
class Timing:
    """Bounds in nanoseconds (wall clock except ``close_grace``, which is market event time)."""

    assign_wait: int = 30_000_000_000
    venue_retry: int = 2_000_000_000
    close_grace: int = 5_000_000_000
    # The window's end is a market-clock timer: if the symbol's data stops, that clock stops too. A wall
    # clock timer this long after the window's span, measured from the saga's start, ends the parent.
    stale_grace: int = 120_000_000_000


def _trace(req: JobRequest, received_ns: int | None) -> AckTrace | None:
    if received_ns is None:
        return None
    return AckTrace(request_recv_ns=req.recv_ns, request_sent_ns=req.sent_ns, saga_recv_ns=received_ns,
                    built_ns=now_ns())  # fmt: skip


def policy_of(p: ParentOrder) -> str:
    """The policy name a worker must advertise to take this parent."""
    return policy_name(p.strategy, p.policy)


class Phase(StrEnum):
    NEW = "new"  # accepted (or resumed), not assigned yet
    WAITING = "waiting"  # for a worker that can run its policy
    WORKING = "working"
    UNWINDING = "unwinding"
    DONE = "done"


@dataclass
class ParentSaga(Saga):
    EVENTS: ClassVar[dict[str, type[SagaPayload]]] = ev.EVENTS

    parent: ParentOrder | None = None
    job_id: str = ""
    phase: Phase = Phase.NEW
    epoch: int = 1
    worker_id: str | None = None
    grid: float | None = None  # where in the decision interval the job decides, once placed (``Placing``)
    filled: int = 0
    notional: float = 0.0
    fills: set[str] = field(default_factory=set)
    reason: str | None = None
    command: VenueCommand | None = None  # the venue command awaiting its ack
    over_executed: int = 0
    amend: AmendRequest | None = None  # an amend request waiting for its fence
    cancel_cl_ord_id: str | None = None  # the cancel request's ClOrdID, for the final report

    # --- state ----------------------------------------------------------------------------------------
    def on_event(self, event: SagaPayload) -> None:
        match event:
            case ev.Accepted(parent=parent, job_id=job_id):
                self.parent, self.job_id, self.phase = parent, job_id, Phase.NEW
            case ev.Rejected(parent=parent, job_id=job_id):
                self.parent, self.job_id, self.phase = parent, job_id, Phase.DONE
            case ev.WaitingForWorker():
                self.phase = Phase.WAITING
            case ev.Assigned(worker_id=worker, grid=grid):
                self.worker_id, self.phase = worker, Phase.WORKING
                self.grid = grid if grid is not None else self.grid
            case ev.Filled(fill_id=fill_id, qty=qty, px=px, over=over):
                self.fills.add(fill_id)
                self.filled += qty
                self.notional += qty * px
                if over:
                    self.over_executed += qty
            case ev.UnwindStarted(reason=reason):
                self.reason, self.phase = reason, Phase.UNWINDING
            case ev.Resumed():
                self.reason, self.phase = None, Phase.NEW
            case ev.AmendRequested(amend=amend):
                self.amend = amend
            case ev.Amended(parent=parent):
                self.parent, self.amend = parent, None
            case ev.AmendRefusedAfterFence():
                self.amend = None
            case ev.CancelRequested(cl_ord_id=cl):
                self.cancel_cl_ord_id = cl or None
            case ev.ParentCompensationStarted(name=name, command=command):
                if name == REVOKE:
                    self.epoch += 1  # the fence epoch: nothing older may trade from here on
                    self.worker_id = None
                elif name == FENCE:
                    self.command = command
            case ev.ParentCompensationCompleted(name=name) if name == FENCE:
                self.command = None
            case SagaCompleted():
                self.phase = Phase.DONE

    @property
    def final_status(self) -> OrdStatus:
        """The client's status once ended."""
        if self.status == "filled":
            return OrdStatus.FILLED
        if self.status == "rejected":
            return OrdStatus.REJECTED
        return FINAL.get(self.status, FINAL["cancel"])[1]

    def ended_facts(self) -> dict[str, str]:
        """What answers a cancel or amend that comes after the parent left memory (``Coordinator``)."""
        if self.parent is None:
            return {}
        return {"client_id": self.parent.client_id, "cl_ord_id": self.parent.cl_ord_id,
                "ord_status": self.final_status.value}  # fmt: skip

    @property
    def remaining(self) -> int:
        assert self.parent is not None
        return self.parent.quantity - self.filled

    @property
    def avg_px(self) -> float:
        return vwap(self.notional, self.filled) or 0.0

    # --- client reports -------------------------------------------------------------------------------
    def _report(
        self,
        exec_type: ExecType,
        status: OrdStatus,
        now: int,
        *,
        last_qty: int = 0,
        last_px: float | None = None,
        text: str | None = None,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        trace: AckTrace | None = None,
    ) -> ExecutionReport:
        p = self.parent
        assert p is not None
        cum = min(self.filled, p.quantity)
        return ExecutionReport(
            report_id=f"{self.saga_id}.{self.seq}", parent_id=p.parent_id, client_id=p.client_id,
            cl_ord_id=cl_ord_id or p.cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, exec_type=exec_type,
            ord_status=status, symbol=p.symbol, side=p.side,
            order_qty=p.quantity, last_qty=last_qty, last_px=last_px, cum_qty=cum,
            leaves_qty=0 if status.terminal else p.quantity - cum, avg_px=round(self.avg_px, 6), text=text,
            trace=trace, ts_event=now, ts_init=now,
        )  # fmt: skip

    def _fx(self, report: ExecutionReport) -> tuple[Any, ...]:
        return (effect(topics.REPORTS, report, key=report.client_id),)

    def _venue(self, op: VenueOp, now: int) -> VenueCommand:
        p = self.parent
        assert p is not None
        return VenueCommand(
            command_id=f"{self.saga_id}.{self.seq}", op=op, job_id=self.job_id, parent_id=p.parent_id,
            symbol=p.symbol, side=p.side, quantity=p.quantity, epoch=self.epoch, client_id=p.client_id,
            ts_init=now,
        )  # fmt: skip

    # --- handlers -------------------------------------------------------------------------------------
    def start(
        self, ctx: Ctx, req: JobRequest, refusal: str | None, place: Placing, *, now: int, t: Timing,
        received_ns: int | None = None,
    ) -> None:  # fmt: skip
        """``received_ns``: the wall clock when the request was taken (the first report's ``AckTrace``)."""
        if refusal is not None:
            ctx.emit(ev.Rejected(parent=req.parent, job_id=req.job_id, reason=refusal))
            rep = self._report(ExecType.REJECTED, OrdStatus.REJECTED, now, text=refusal,
                               trace=_trace(req, received_ns))  # fmt: skip
            ctx.complete("rejected", self._fx(rep))
            return
        ctx.register(CLOSE_PARENT)
        ctx.emit(ev.Accepted(parent=req.parent, job_id=req.job_id))
        new = new_report(req.parent, now, trace=_trace(req, received_ns))
        ctx.emit(ev.Reported(), self._fx(new))
        ctx.register(FENCE)
        cmd = self._venue(VenueOp.OPEN, now)
        ctx.emit(ev.VenueOpened(epoch=self.epoch), (effect(topics.VENUE_COMMANDS, cmd, key=self.job_id),))
        assert self.parent is not None
        self._set_window_end(ctx, self.parent, now, t)
        self.try_assign(ctx, place, now, t)

    @staticmethod
    def _set_window_end(ctx: Ctx, p: ParentOrder, now: int, t: Timing) -> None:
        """The end of the window on the symbol's market clock, and the wall-clock backstop for a market
        that stops: from now, the window's span as the order was sent (from the market time it was sent
        at, or its start) plus ``stale_grace``. Never earlier than the market would end it at real time."""
        span = p.end_ns - min(p.start_ns, p.ts_init)
        if not 0 < span <= 2 * DAY_NS:  # ts_init on another clock: the window itself
            span = max(0, p.end_ns - p.start_ns)
        ctx.set_timer("window_end", f"market:{p.symbol}", p.end_ns + t.close_grace)
        ctx.set_timer("window_end_wall", WALL, now + span + t.close_grace + t.stale_grace)

    def try_assign(self, ctx: Ctx, place: Placing, now: int, t: Timing) -> None:
        p = self.parent
        assert p is not None
        if self.phase not in (Phase.NEW, Phase.WAITING):
            return
        worker = place.worker(policy_of(p))
        if worker is None:
            if self.phase != Phase.WAITING:
                text = f"waiting for a worker that can run {policy_of(p)!r}"
                status = OrdStatus.PARTIALLY_FILLED if self.filled else OrdStatus.NEW
                ctx.emit(ev.WaitingForWorker(policy=policy_of(p)),
                         self._fx(self._report(ExecType.ORDER_STATUS, status, now, text=text)))  # fmt: skip
                ctx.set_timer("assign_wait", WALL, now + t.assign_wait)
            return
        ctx.clear_timer("assign_wait")
        ctx.register(REVOKE)
        grid = place.grid(self.job_id) if self.grid is None else self.grid
        a = JobAssignment(
            job_id=self.job_id,
            worker_id=worker,
            epoch=self.epoch,
            parent=p,
            quantity=self.remaining,
            ts_init=now,
            grid=grid,
        )
        ctx.emit(ev.Assigned(worker_id=worker, epoch=self.epoch, quantity=self.remaining, grid=grid),
                 (effect(topics.ASSIGNMENTS, a, key=worker),))  # fmt: skip

    def on_fill(self, ctx: Ctx, f: Fill, now: int, t: Timing) -> bool:
        """Count a fill once; False if it was seen before or arrived after the end."""
        if f.fill_id in self.fills or self.terminal or self.parent is None:
            return False
        over = self.filled + f.qty > self.parent.quantity
        fill = ev.Filled(fill_id=f.fill_id, child_id=f.child_id, qty=f.qty, px=f.px, over=over)
        if over:  # cannot happen while the venue enforces the cap; recorded, never reported as normal
            ctx.emit(fill)
            return True
        filled = self.filled + f.qty
        status = OrdStatus.FILLED if filled == self.parent.quantity else OrdStatus.PARTIALLY_FILLED
        ctx.emit(fill)
        rep = self._report(ExecType.TRADE, status, now, last_qty=f.qty, last_px=f.px)
        ctx.emit(ev.Reported(), self._fx(rep))
        if self.filled == self.parent.quantity:
            self.unwind(ctx, "filled", now, t)
        return True

    def unwind(self, ctx: Ctx, reason: str, now: int, t: Timing) -> None:
        if self.terminal or self.reason == reason or self.reason in FINAL:
            return  # already ending: the first final reason wins
        ctx.emit(ev.UnwindStarted(reason=reason))
        self.step(ctx, now, t)

    def step(self, ctx: Ctx, now: int, t: Timing) -> None:
        """Run compensations from the top of the stack until one must wait for a confirmation."""
        p = self.parent
        assert p is not None
        while self.running is None and self.stack:
            top = self.stack[-1]
            if top == REVOKE:
                revoke = JobAssignment(
                    job_id=self.job_id, worker_id=self.worker_id or "none", epoch=self.epoch + 1, parent=p,
                    quantity=p.quantity, revoked=True, ts_init=now,
                )  # fmt: skip
                ctx.start_compensation((effect(topics.ASSIGNMENTS, revoke, key=revoke.worker_id),))
                ctx.complete_compensation()
            elif top == FENCE:
                cmd = self._venue(VenueOp.FENCE if self.reason in INTERRUPTIONS else VenueOp.CLOSE, now)
                ctx.start_compensation((effect(topics.VENUE_COMMANDS, cmd, key=self.job_id),),
                                       ev.ParentCompensationStarted(name=FENCE, command=cmd))  # fmt: skip
                ctx.set_timer("venue_retry", WALL, now + t.venue_retry)
                return  # until the venue confirms
            else:  # CLOSE_PARENT
                fx: tuple[Any, ...] = ()
                final = FINAL.get(self.reason or "", FINAL["cancel"])
                if self.filled < p.quantity:
                    canceled_by = self.cancel_cl_ord_id if self.reason == "cancel" else None
                    rep = self._report(final[0], final[1], now, text=final[2], cl_ord_id=canceled_by,
                                       orig_cl_ord_id=p.cl_ord_id if canceled_by else None)  # fmt: skip
                    fx = self._fx(rep)
                ctx.start_compensation(fx)
                ctx.complete_compensation()
                ctx.complete(self.reason or "closed")
                return

    def on_venue_ack(self, ctx: Ctx, ack: VenueCommandAck, place: Placing, now: int, t: Timing) -> bool:
        if self.running != FENCE or self.command is None or ack.command_id != self.command.command_id:
            return False  # a repeat of an ack already taken into account
        ctx.clear_timer("venue_retry")
        ctx.complete_compensation(
            event=ev.ParentCompensationCompleted(name=FENCE, filled=ack.filled, canceled=tuple(ack.canceled))
        )
        if self.reason in INTERRUPTIONS:
            ctx.register(FENCE)  # the venue job stays open under the new epoch
            if self.reason == AMEND and self.amend is not None:
                self._apply_amend(ctx, now, t)
            if self.parent is not None and self.filled >= self.parent.quantity:
                ctx.emit(ev.Resumed(epoch=self.epoch, remaining=0))
                self.unwind(ctx, "filled", now, t)
                return True
            ctx.emit(ev.Resumed(epoch=self.epoch, remaining=self.remaining))
            self.try_assign(ctx, place, now, t)
            return True
        if ack.op is VenueOp.FENCE:
            ctx.register(FENCE)  # the reason became final while fencing: close the venue job too
        self.step(ctx, now, t)
        return True

    def on_timer(self, ctx: Ctx, timer: Timer, now: int, t: Timing) -> None:
        ctx.clear_timer(timer.name)
        if timer.name == "window_end":
            self.unwind(ctx, "window_end", now, t)
        elif timer.name == "window_end_wall":
            self.unwind(ctx, "stale_market", now, t)
        elif timer.name == "assign_wait" and self.phase == Phase.WAITING:
            self.unwind(ctx, "no_worker", now, t)
        elif timer.name == "venue_retry" and self.running == FENCE and self.command is not None:
            cmd = self.command  # the same id: the venue does it once
            ctx.emit(ev.VenueCommandResent(command_id=cmd.command_id),
                     (effect(topics.VENUE_COMMANDS, cmd, key=self.job_id),))  # fmt: skip
            ctx.set_timer("venue_retry", WALL, now + t.venue_retry)

    # --- client requests ------------------------------------------------------------------------------
    def _refuse(
        self, kind: RequestKind, cl_ord_id: str, reason: str, now: int, *, too_late: bool = False
    ) -> Any:
        p = self.parent
        assert p is not None
        status = OrdStatus.PARTIALLY_FILLED if self.filled else OrdStatus.NEW
        rej = RequestReject(
            parent_id=p.parent_id, client_id=p.client_id, cl_ord_id=cl_ord_id, orig_cl_ord_id=p.cl_ord_id,
            request=kind, ord_status=status, reason=reason, too_late=too_late, ts_init=now,
        )  # fmt: skip
        return (effect(topics.REPORTS, rej, key=p.client_id),)

    def on_cancel(self, ctx: Ctx, req: CancelRequest, now: int, t: Timing) -> None:
        cl = req.cl_ord_id or req.request_id
        if self.reason in FINAL:
            fx = self._refuse(RequestKind.CANCEL, cl, "the order is already closing", now, too_late=True)
            ctx.emit(ev.CancelRefused(cl_ord_id=cl), fx)
            return
        ctx.emit(ev.CancelRequested(cl_ord_id=req.cl_ord_id))
        self.unwind(ctx, "cancel", now, t)

    def on_amend(self, ctx: Ctx, req: AmendRequest, now: int, t: Timing) -> None:
        reason = None
        if self.reason in FINAL:
            reason = "the order is already closing"
        elif self.amend is not None:
            reason = "a cancel/replace is already pending"
        elif req.quantity < self.filled:
            reason = f"quantity {req.quantity} is below the {self.filled} already filled"
        else:
            try:
                self._amended(req)
            except ValueError as exc:
                reason = f"invalid amendment: {exc}".replace("\n", " ")[:200]
        if reason is not None:
            ctx.emit(ev.AmendRefused(cl_ord_id=req.cl_ord_id, reason=reason),
                     self._refuse(RequestKind.AMEND, req.cl_ord_id, reason, now))  # fmt: skip
            return
        ctx.emit(ev.AmendRequested(amend=req))
        self.unwind(ctx, AMEND, now, t)

    def _amended(self, req: AmendRequest) -> ParentOrder:
        p = self.parent
        assert p is not None
        data = p.model_dump()
        data.update(cl_ord_id=req.cl_ord_id, quantity=req.quantity)
        if req.limit_px is not None:
            data.update(limit_px=req.limit_px, ord_type="LIMIT")
        if req.end_ns is not None:
            data.update(end_ns=req.end_ns)
        return ParentOrder.model_validate(data)

    def _apply_amend(self, ctx: Ctx, now: int, t: Timing) -> None:
        """With the job fenced (filled is final for now), apply the pending amendment or refuse it."""
        assert self.amend is not None and self.parent is not None
        req = self.amend
        new = self._amended(req)
        if self.filled > new.quantity:
            reason = f"{self.filled} filled meanwhile, above the new quantity {new.quantity}"
            ctx.emit(ev.AmendRefusedAfterFence(reason=reason),
                     self._refuse(RequestKind.AMEND, req.cl_ord_id, reason, now))  # fmt: skip
            return
        old = self.parent.cl_ord_id
        ctx.emit(ev.Amended(parent=new))
        # From here the report and the venue command describe the amended order.
        status = OrdStatus.FILLED if self.filled == new.quantity else (
            OrdStatus.PARTIALLY_FILLED if self.filled else OrdStatus.NEW)  # fmt: skip
        rep = self._report(ExecType.REPLACED, status, now, orig_cl_ord_id=old)
        cmd = self._venue(VenueOp.OPEN, now)
        ctx.emit(ev.Reported(), (*self._fx(rep), effect(topics.VENUE_COMMANDS, cmd, key=self.job_id)))
        self._set_window_end(ctx, new, now, t)
